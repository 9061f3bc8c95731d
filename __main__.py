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


def _stack_class(cloud: str) -> type:
    """Imported on demand: a stack with one cloud never loads the other cloud's SDK."""
    if cloud == "gcp":
        from components.gcp.stack import GcpStack

        return GcpStack
    from components.aws.stack import AwsStack

    return AwsStack


def build(config: StackConfig) -> None:
    """One component tree per configured cloud; outputs exported per cloud, the kubeconfig
    on its own as a secret."""
    deployment = f"pangeo-binder-{config.environment}"
    for cloud in ("gcp", "aws"):
        settings = getattr(config.clouds, cloud)
        if settings is None:
            continue
        stack = _stack_class(cloud)(
            cloud, settings, deployment=deployment, environment=config.environment, hub=config.hub
        )
        pulumi.export(cloud, stack.outputs.exports())
        pulumi.export(f"{cloud}Kubeconfig", pulumi.Output.secret(stack.outputs.kubeconfig))


def main() -> None:
    try:
        config = load_config(raw_config())
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    build(config)


main()
