"""pangeo-binder: read and validate the stack config, build one stack per cloud, export outputs.

The only module that reads Pulumi config. A config mistake stops the program here, listing
every problem, before a single resource is registered.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

# The library's source root, first on the path: a plain `pulumi up` (Pulumi's pip toolchain
# installs only the hashed requirements.txt, which cannot name a local directory) finds the
# package from this checkout, and `make up` (an editable install of the same folder) agrees.
_SOURCE_ROOT = str(Path(__file__).resolve().parent / "components")
if _SOURCE_ROOT not in sys.path:
    sys.path.insert(0, _SOURCE_ROOT)

import pulumi  # noqa: E402
from pulumi.runtime import config as runtime_config  # noqa: E402

from pangeo_binder import naming  # noqa: E402
from pangeo_binder.config import NAMESPACE, ConfigError, StackConfig, load_config  # noqa: E402
from pangeo_binder.hub.hub import Hub  # noqa: E402
from pangeo_binder.hub.public_binder import PublicBinder  # noqa: E402
from pangeo_binder.outputs import KubernetesServiceAccount  # noqa: E402
from pangeo_binder.raw_config import namespace_keys  # noqa: E402


def raw_config() -> tuple[dict[str, Any], set[str]]:
    """Every `pangeo-binder:*` key of the stack, objects parsed from their JSON form, and the
    keys Pulumi marks secret (set with `pulumi config set --secret`).

    Read as a whole (not key by key) so that unknown keys are reported, not ignored.
    """
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    marked = set(runtime_config.get_config_secret_keys_env()) | {
        key for key in values if runtime_config.is_config_secret(key)
    }
    return namespace_keys(values, marked, NAMESPACE)


def hub_image_context() -> str:
    """The checkout's `images/hub`, relative to the directory Pulumi runs the program in: the
    path is kept in the image's state, so deploys from any checkout agree."""
    return os.path.relpath(Path(__file__).resolve().parent / "images" / "hub")


def _stack_class(cloud: str) -> type:
    """Imported on demand: a stack with one cloud never loads the other cloud's SDK."""
    if cloud == "gcp":
        from pangeo_binder.gcp.stack import GcpStack

        return GcpStack
    from pangeo_binder.aws.stack import AwsStack

    return AwsStack


def build(config: StackConfig) -> None:
    """One component tree per configured cloud (cluster, then the hub on it); outputs exported
    per cloud, the kubeconfig on its own as a secret."""
    # Physical names: with `resourceNames: stack` the stack's own where it is not named after
    # its environment, so two stacks of one environment can share a project or account
    # (pangeo_binder.naming); by default the environment's, which every stack deployed had.
    named = naming.names_stack(config.resource_names, pulumi.get_stack())
    deployment = naming.deployment(config.environment, named)
    for cloud in ("gcp", "aws"):
        settings = getattr(config.clouds, cloud)
        if settings is None:
            continue
        accounts = config.hub.workload_service_accounts()
        public = settings.public_binder
        if public is not None:
            accounts = dataclasses.replace(
                accounts,
                public_builder=KubernetesServiceAccount(
                    public.namespace, config.hub.builder_service_account
                ),
            )
        secrets = getattr(config.secrets, cloud)
        # Secret values leave the model only wrapped as Pulumi secrets.
        stack = _stack_class(cloud)(
            cloud,
            settings,
            deployment=deployment,
            environment=config.environment,
            qualifier=naming.qualifier(config.environment, named),
            service_accounts=accounts,
            registry_tokens={
                key: pulumi.Output.secret(token) for key, token in secrets.registry_tokens().items()
            },
        )
        client_secret = secrets.github_client_secret.get_secret_value()
        # The support stack first: its generated tokens are part of the hub's values.
        monitoring = (
            support(cloud, config, settings, stack.outputs)
            if config.monitoring is not None
            else None
        )
        hub = Hub(
            f"{cloud}-hub",
            stack.outputs,
            pools=settings.node_pools,
            settings=config.hub,
            cloud_hub=settings.hub,
            github_client_secret=pulumi.Output.secret(client_secret),
            hub_image_context=hub_image_context(),
            support_values=monitoring.hub_values if monitoring is not None else None,
        )
        if monitoring is not None:
            # Its policies in the hub's namespace, after that namespace exists.
            monitoring.fence_hub(hub.namespace)
        exports = {**stack.outputs.exports(), **hub.exports()}
        if public is not None:
            exports |= PublicBinder(
                f"{cloud}-public-binder",
                stack.outputs,
                public=public,
                pools=settings.node_pools,
                settings=config.hub,
                cloud_hub=settings.hub,
                github_client_secret=pulumi.Output.secret(client_secret),
                dask_crds=hub,  # public Dask uses the CRDs the hub's gateway installs
            ).exports()
        if monitoring is not None:
            exports.update(monitoring.exports())
        pulumi.export(cloud, exports)
        pulumi.export(f"{cloud}Kubeconfig", pulumi.Output.secret(stack.outputs.kubeconfig))


def support(cloud: str, config: StackConfig, settings: Any, outputs: Any) -> Any:
    """Prometheus, Grafana, OpenCost and the alert rules on one cluster."""
    from pangeo_binder.hub.backup import backup_alert_rules
    from pangeo_binder.support.config import CHANNEL_SECRET
    from pangeo_binder.support.support import Support

    monitoring = config.monitoring
    assert monitoring is not None
    channel_secret = None
    channel = monitoring.alerts.channel
    if channel is not None and config.secrets.monitoring is not None:
        key = CHANNEL_SECRET[channel.type]
        field = "alert_webhook_url" if key == "alertWebhookUrl" else "smtp_password"
        value = getattr(config.secrets.monitoring, field)
        channel_secret = pulumi.Output.secret(value.get_secret_value()) if value else None
    return Support(
        f"{cloud}-support",
        outputs,
        settings=monitoring,
        hub_namespace=config.hub.namespace,
        domain=settings.hub.domain,
        region=settings.region,
        pools=settings.node_pools,
        channel_secret=channel_secret,
        # The hub database backup's "backup missed" rule (docs/howto/restore.md).
        extra_rule_groups=(
            [backup_alert_rules(config.hub.namespace, config.hub.backup)]
            if config.hub.backup.enabled
            else []
        ),
    )


def main() -> None:
    try:
        raw, secret_keys = raw_config()
        config = load_config(raw, secret_keys=secret_keys, stack=pulumi.get_stack())
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    if config.monitoring is not None:
        # The support stack ships the community's dashboards, rendered here from their source:
        # without it, stop before anything is registered, naming the command (`make up` and
        # `make preview` run it).
        from pangeo_binder.support.dashboards import missing_message

        missing = missing_message()
        if missing is not None:
            raise pulumi.RunError(f"monitoring: {missing}")
    build(config)


main()
