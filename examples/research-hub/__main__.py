"""research-hub: a second hub built only from pangeo-binder's public API.

One GKE cluster (a core pool and two user pools of this hub's choosing), buckets and keyless
identities bound to this hub's own Kubernetes service accounts, and JupyterHub with its own
image menu and organization. No Dask pool, so no Dask Gateway; BinderHub is turned off in the
stack file. The only module that reads Pulumi config: a mistake stops it here, every problem
listed, before anything is registered.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import is_config_secret

import pangeo_binder as pb

# The keys this program reads, in its own namespace (`research-hub:`), in the same shape as
# pangeo-binder's stack files: the library's config model validates them.
OBJECT_KEYS = ("clouds", "hub", "secrets")


def read_config() -> tuple[dict[str, Any], set[str]]:
    """The keys as plain values, and those set with `pulumi config set --secret`."""
    config = pulumi.Config()
    raw: dict[str, Any] = {"environment": config.get("environment")}
    raw |= {key: config.get_object(key) for key in OBJECT_KEYS}
    raw = {key: value for key, value in raw.items() if value is not None}
    return raw, {key for key in raw if is_config_secret(config.full_key(key))}


def main() -> None:
    raw, secret_keys = read_config()
    try:
        config = pb.load_config(raw, secret_keys=secret_keys)
    except pb.ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    gcp = config.clouds.gcp
    if gcp is None or config.clouds.aws is not None:
        raise pulumi.RunError("research-hub runs on GCP only: configure clouds.gcp, not aws")

    stack = pb.GcpStack(
        "gcp",
        gcp,
        deployment=f"research-{config.environment}",
        environment=config.environment,
        service_accounts=config.hub.workload_service_accounts(),
    )
    hub = pb.Hub(
        "hub",
        stack.outputs,
        pools=gcp.node_pools,
        settings=config.hub,
        cloud_hub=gcp.hub,
        github_client_secret=pulumi.Output.secret(
            config.secrets.gcp.github_client_secret.get_secret_value()
        ),
    )
    pulumi.export("hubUrl", hub.url)
    pulumi.export("hubLoadBalancer", hub.address)
    pulumi.export("scratchBucket", stack.outputs.scratch_bucket_url)
    pulumi.export("persistentBucket", stack.outputs.persistent_bucket_url)
    pulumi.export("kubeconfig", pulumi.Output.secret(stack.outputs.kubeconfig))


main()
