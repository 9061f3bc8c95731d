"""pangeo-binder-ci-identities: the OIDC identities the workflows in .github/workflows assume.

The only module here that reads Pulumi config; a config mistake stops the program before any
resource is registered, listing every problem with its key path. The deploy identity trusts
the environments of the stacks `.github/stacks.yaml` lists, the file the workflows deploy from
(read from this checkout; `PANGEO_BINDER_CHECKOUT` names another one, as the tests do).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# The library's source root in this checkout, as in the main program's __main__.py.
_CHECKOUT = Path(__file__).resolve().parent.parent
_SOURCE_ROOT = str(_CHECKOUT / "components")
if _SOURCE_ROOT not in sys.path:
    sys.path.insert(0, _SOURCE_ROOT)

import pulumi  # noqa: E402
from pulumi.runtime import config as runtime_config  # noqa: E402

from pangeo_binder import ci_stacks  # noqa: E402
from pangeo_binder.ci_identities.config import (  # noqa: E402
    NAMESPACE,
    CiConfigError,
    load_ci_config,
)
from pangeo_binder.config import build_repository  # noqa: E402
from pangeo_binder.naming import names_stack  # noqa: E402
from pangeo_binder.raw_config import namespace_keys  # noqa: E402


def raw_config() -> dict[str, Any]:
    """Every `pangeo-binder-ci-identities:*` key, objects parsed from their JSON form."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw, _ = namespace_keys(values, (), NAMESPACE)
    return raw


def main() -> None:
    checkout = Path(os.environ.get("PANGEO_BINDER_CHECKOUT") or _CHECKOUT)
    try:
        stacks = ci_stacks.load(checkout)
        config = load_ci_config(raw_config(), stacks)
    except (ci_stacks.CiStacksError, CiConfigError) as error:
        raise pulumi.RunError(str(error)) from None
    # GitHub environments named after the stacks: their jobs' OIDC subjects.
    deploy_environments = [stack.name for stack in stacks]
    if config.gcp is not None:
        import pulumi_gcp as gcp

        from pangeo_binder.ci_identities.gcp import GcpCiIdentitiesStack

        provider = gcp.Provider("gcp-provider", project=config.gcp.project)
        identities = GcpCiIdentitiesStack(
            "gcp",
            config.gcp,
            repository=config.repository,
            repository_id=None if config.repository_id is None else str(config.repository_id),
            deploy_environments=deploy_environments,
            opts=pulumi.ResourceOptions(providers={"gcp": provider}),
        )
        # The names of the GitHub variables the workflows read.
        pulumi.export("GCP_WORKLOAD_IDENTITY_PROVIDER", identities.workload_identity_provider)
        pulumi.export("GCP_PREVIEW_SERVICE_ACCOUNT", identities.preview_service_account)
        pulumi.export("GCP_DEPLOY_SERVICE_ACCOUNT", identities.deploy_service_account)
    if config.aws is not None:
        import pulumi_aws as aws

        from pangeo_binder.ci_identities.aws import AwsCiIdentitiesStack

        provider = aws.Provider("aws-provider", region=config.aws.region)
        identities = AwsCiIdentitiesStack(
            "aws",
            config.aws,
            repository=config.repository,
            deploy_environments=deploy_environments,
            # Each AWS stack's region and image prefix, as its stack names them.
            image_repositories=[
                (
                    str(stack.aws_region),
                    build_repository(
                        "aws",
                        str(stack.environment),
                        names_stack(stack.resource_names, stack.name),
                    ),
                )
                for stack in stacks
                if "aws" in stack.clouds
            ],
            opts=pulumi.ResourceOptions(providers={"aws": provider}),
        )
        pulumi.export("AWS_PREVIEW_ROLE_ARN", identities.preview_role_arn)
        pulumi.export("AWS_DEPLOY_ROLE_ARN", identities.deploy_role_arn)


main()
