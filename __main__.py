"""pangeo-binder: read and validate the stack config, build one stack per cloud, export outputs.

The only module that reads Pulumi config. A config mistake stops the program here, listing
every problem, before a single resource is registered.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import NAMESPACE, ConfigError, StackConfig, load_config


def raw_config() -> dict[str, Any]:
    """Every `pangeo-binder:*` key of the stack, objects parsed from their JSON form.

    Read as a whole (not key by key) so that unknown keys are reported, not ignored.
    """
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for full_key, value in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def build(config: StackConfig) -> None:
    """One component tree per configured cloud; outputs exported per cloud."""
    deployment = f"pangeo-binder-{config.environment}"
    if config.clouds.gcp is not None:
        from components.gcp.stack import GcpStack

        gcp_stack = GcpStack(
            "gcp",
            config.clouds.gcp,
            deployment=deployment,
            environment=config.environment,
            hub=config.hub,
        )
        pulumi.export("gcp", gcp_stack.outputs.exports())
        pulumi.export("gcpKubeconfig", pulumi.Output.secret(gcp_stack.outputs.kubeconfig))
    if config.clouds.aws is not None:
        from components.aws.stack import AwsStack

        aws_stack = AwsStack(
            "aws",
            config.clouds.aws,
            deployment=deployment,
            environment=config.environment,
            hub=config.hub,
        )
        pulumi.export("aws", aws_stack.outputs.exports())
        pulumi.export("awsKubeconfig", pulumi.Output.secret(aws_stack.outputs.kubeconfig))


def main() -> None:
    try:
        config = load_config(raw_config())
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    build(config)


main()
