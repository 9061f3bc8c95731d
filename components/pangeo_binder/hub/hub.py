"""The hub on one cluster: namespace, user service account, generated secrets, and the
jupyterhub, dask-gateway and binderhub-service releases, with values from the pure builders
beside this file."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from pangeo_binder.charts import BINDERHUB_SERVICE, DASK_GATEWAY, JUPYTERHUB, ChartPin
from pangeo_binder.config_shared import CloudHub, NodePool
from pangeo_binder.hub.backup import NAME as BACKUP_NAME
from pangeo_binder.hub.backup import backup_configmap, backup_cronjob
from pangeo_binder.hub.binderhub_values import binderhub_values, build_network_policies
from pangeo_binder.hub.config import USER_SERVICE_ACCOUNT, HubSettings
from pangeo_binder.hub.context import (
    BINDER_RELEASE,
    BINDER_SERVICE,
    DASK_GATEWAY_RELEASE,
    DASK_GATEWAY_SERVICE,
    JUPYTERHUB_RELEASE,
    HubContext,
    HubTokens,
    runs_dask,
)
from pangeo_binder.hub.dask_values import dask_gateway_values, dask_network_policy
from pangeo_binder.hub.hub_image import HubImage
from pangeo_binder.hub.jupyterhub_values import jupyterhub_values
from pangeo_binder.network_policies import network_policies
from pangeo_binder.outputs import CloudOutputs
from pangeo_binder.releases import pinned_chart
from pangeo_binder.support.values import dask_values_piece, with_piece

# Every output of a RandomId carries the value in some encoding.
RANDOM_ID_OUTPUTS = ["hex", "b64Std", "b64Url", "dec", "id"]


def _field(value: Any, name: str) -> Any:
    """A field of a provider output type (attribute access), or of a plain dict."""
    if value is None:
        return None
    if isinstance(value, dict) and name in value:
        return value[name]
    return getattr(value, name, None)


def proxy_address(items: list[tuple[Any, Any]]) -> str:
    """From (metadata, status) pairs of Services: the load balancer IP (GKE) or host name (EKS)
    of `proxy-public`; empty until the cloud assigns one."""
    for metadata, status in items:
        if _field(metadata, "name") != "proxy-public":
            continue
        for ingress in _field(_field(status, "load_balancer"), "ingress") or []:
            return _field(ingress, "ip") or _field(ingress, "hostname") or ""
    return ""


def load_balancer_address(resources: list[Any] | None) -> pulumi.Output[str]:
    """The address to point the hub's DNS name at, read from the jupyterhub chart's objects."""
    services = [r for r in resources or [] if isinstance(r, k8s.core.v1.Service)]
    return pulumi.Output.all(*[pulumi.Output.all(s.metadata, s.status) for s in services]).apply(
        proxy_address
    )


def hub_image_ref(settings: HubSettings, context: HubContext) -> str:
    """The image the hub runs: the operator's, the one `pulumi up` built, or the chart's."""
    if settings.hub_image:
        return settings.hub_image
    return context.hub_image_ref or f"quay.io/jupyterhub/k8s-hub:{JUPYTERHUB.version}"


def generated_token(name: str, *, parent: pulumi.Resource) -> pulumi.Output[str]:
    """32 random bytes as hex, made once and kept (secret) in state: never rotated."""
    opts = pulumi.ResourceOptions(parent=parent, additional_secret_outputs=RANDOM_ID_OUTPUTS)
    return pulumi.Output.secret(random.RandomId(name, byte_length=32, opts=opts).hex)


def chart_release(
    name: str,
    pin: ChartPin,
    release: str,
    namespace: str,
    values: pulumi.Output[dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v4.Chart:
    """One chart at its pinned version, with an explicit release name. Values carry
    generated secrets, so Pulumi keeps the whole tree secret."""
    return pinned_chart(name, pin, release, namespace, pulumi.Output.secret(values), opts)


class Hub(pulumi.ComponentResource):
    """JupyterHub with GitHub login in `settings.namespace` of one cluster, on any cloud's
    `CloudOutputs`: Dask Gateway beside it where a pool has purpose `dask`, and BinderHub unless
    `settings.binder.enabled` is false. Every release waits for the namespace and `user-sa`.

    `url` is the hub's address (https on `cloud_hub.domain`); `address` is the load balancer's
    IP or host name, which that domain's DNS record must point at.

    With `hub_image_context` and no `settings.hub_image`, the hub image is built from that
    directory and pushed to the cloud's registry (`HubImage`); `hub_image_ref` is then its
    `name:tag@sha256:...` (for `hub_image_values`), else None.

    With `support_values` (`Support.hub_values`, the cluster's monitoring), the jupyterhub
    release gains the grafana and prometheus services, Grafana's route and Traefik's metrics,
    and Dask pods name their user for the cost dashboard (`support/values.py`).
    """

    url: pulumi.Output[str]
    address: pulumi.Output[str]
    hub_image_ref: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        cloud: CloudOutputs,
        *,
        pools: dict[str, NodePool],
        settings: HubSettings,
        cloud_hub: CloudHub,
        github_client_secret: pulumi.Output[str],
        hub_image_context: str | None = None,
        support_values: pulumi.Output[dict[str, Any]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:hub:Hub", name, None, opts)
        self.hub_image_ref = None
        if settings.hub_image is None and hub_image_context is not None:
            built = HubImage(
                f"{name}-image",
                cloud,
                context=hub_image_context,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.hub_image_ref = built.ref
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cloud.kubernetes_provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": settings.namespace}, opts=k8s_opts
        )
        # What others put in the hub's namespace depends on it (Support.fence_hub).
        self.namespace = namespace
        user_sa = k8s.core.v1.ServiceAccount(
            f"{name}-user-sa",
            metadata={
                "name": USER_SERVICE_ACCOUNT,
                "namespace": namespace.metadata["name"],
                "annotations": cloud.service_account_annotations["users"],
            },
            opts=k8s_opts,
        )

        def token(key: str) -> pulumi.Output[str]:
            return generated_token(f"{name}-{key}", parent=self)

        services = ([DASK_GATEWAY_SERVICE] if runs_dask(pools) else []) + (
            [BINDER_SERVICE] if settings.binder.enabled else []
        )
        tokens = pulumi.Output.all(
            token("proxy-token"),
            token("cookie-secret"),
            token("crypt-key"),
            *[token(f"{service}-token") for service in services],
        ).apply(
            lambda t: HubTokens(
                t[0], t[1], t[2], service_tokens=dict(zip(services, t[3:], strict=True))
            )
        )
        builder = cloud.identities.get("builder", "")
        context = pulumi.Output.all(
            cloud.scratch_bucket_url,
            cloud.persistent_bucket_url,
            github_client_secret,
            tokens,
            cloud.registry_host,
            cloud.image_prefix,
            builder,
            self.hub_image_ref if self.hub_image_ref is not None else "",
            cloud.proxy_service or {},
            cloud.public_bucket_url if cloud.public_bucket_url is not None else "",
            # The in-region cache (CloudOutputs.image_cache); {} when the cloud has none.
            cloud.image_cache if cloud.image_cache is not None else {},
        ).apply(
            lambda v: HubContext(
                cloud=cloud.cloud,
                namespace=settings.namespace,
                domain=cloud_hub.domain,
                scratch_bucket=v[0],
                persistent_bucket=v[1],
                github_client_id=cloud_hub.github.client_id,
                github_client_secret=v[2],
                tokens=v[3],
                contact_email=cloud_hub.contact_email,
                registry_host=v[4] or "",
                image_prefix=v[5] or "",
                # The BinderHub pod's account is bound to the builder identity; no other
                # account (the namespace's `default` above all) gets this annotation.
                builder_annotations={cloud.identity_annotation: v[6]} if v[6] else {},
                # On GKE the builder identity is the Google service account's email.
                builder_email=(v[6] or "") if cloud.cloud == "gcp" else "",
                hub_image_ref=v[7] or "",
                proxy_service=v[8] or {},
                public_bucket=v[9] or "",
                image_cache=dict(v[10] or {}),
            )
        )
        release_opts = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace, user_sa])
        )
        # The proxy's load balancer takes the reserved address at once, and autohttps asks
        # Let's Encrypt for a certificate once, at start: the hub's DNS record (when the
        # program writes it) must exist before then.
        hub_opts = pulumi.ResourceOptions.merge(
            release_opts, pulumi.ResourceOptions(depends_on=list(cloud.hub_dns))
        )
        jupyterhub = chart_release(
            f"{name}-jupyterhub",
            JUPYTERHUB,
            JUPYTERHUB_RELEASE,
            settings.namespace,
            pulumi.Output.all(context, support_values or {}).apply(
                lambda v: with_piece(jupyterhub_values(v[0], settings, cloud_hub, pools), v[1])
            ),
            hub_opts,
        )
        # The gateway and BinderHub read their hub tokens from the hub release's Secret.
        after_hub = pulumi.ResourceOptions.merge(
            release_opts, pulumi.ResourceOptions(depends_on=[jupyterhub])
        )
        if runs_dask(pools):
            # Before the gateway can start a cluster, its pods are already fenced in.
            manifest = dask_network_policy(cloud.cloud, settings.namespace)
            dask_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-dask-clusters-policy",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=release_opts,
            )
            chart_release(
                f"{name}-dask-gateway",
                DASK_GATEWAY,
                DASK_GATEWAY_RELEASE,
                settings.namespace,
                context.apply(
                    lambda c: with_piece(
                        dask_gateway_values(c, settings, pools),
                        dask_values_piece() if support_values is not None else {},
                    )
                ),
                pulumi.ResourceOptions.merge(
                    after_hub, pulumi.ResourceOptions(depends_on=[dask_policy])
                ),
            )
        if settings.binder.enabled:
            # The builds are fenced before BinderHub can start one (the chart's own policies
            # are off: build_network_policies says why).
            build_policies = network_policies(
                name, build_network_policies(settings.namespace, BINDER_RELEASE), release_opts
            )
            chart_release(
                f"{name}-binderhub-service",
                BINDERHUB_SERVICE,
                BINDER_RELEASE,
                settings.namespace,
                context.apply(lambda c: binderhub_values(c, settings, pools)),
                pulumi.ResourceOptions.merge(
                    after_hub, pulumi.ResourceOptions(depends_on=build_policies)
                ),
            )
        if settings.backup.enabled:
            self._backup(name, cloud, settings, context, after_hub)
        self.address = jupyterhub.resources.apply(load_balancer_address)
        self.url = pulumi.Output.from_input(f"https://{cloud_hub.domain}")
        self.register_outputs(self.exports())

    def _backup(
        self,
        name: str,
        cloud: CloudOutputs,
        settings: HubSettings,
        context: pulumi.Output[HubContext],
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.CronJob:
        """The database backup: its service account (bound to the cloud's backup identity),
        script and CronJob (`hub/backup.py`), after the hub's release made the volume."""
        namespace = settings.namespace
        k8s.core.v1.ServiceAccount(
            f"{name}-backup-sa",
            metadata={
                "name": BACKUP_NAME,
                "namespace": namespace,
                "annotations": cloud.service_account_annotations.get("backup", {}),
            },
            opts=opts,
        )
        script = backup_configmap(namespace)
        k8s.core.v1.ConfigMap(
            f"{name}-backup-script", metadata=script["metadata"], data=script["data"], opts=opts
        )
        manifest = context.apply(
            lambda c: backup_cronjob(
                cloud=c.cloud,
                namespace=namespace,
                settings=settings.backup,
                hub_image=hub_image_ref(settings, c),
                persistent_bucket=c.persistent_bucket,
            )
        )
        return k8s.batch.v1.CronJob(
            f"{name}-backup",
            metadata=manifest.apply(lambda m: m["metadata"]),
            spec=manifest.apply(lambda m: m["spec"]),
            opts=opts,
        )

    def exports(self) -> dict[str, pulumi.Output[str]]:
        """Stack outputs: where the hub is, and the address its DNS name must point at."""
        return {"hubUrl": self.url, "hubLoadBalancer": self.address}
