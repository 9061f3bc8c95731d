"""The public Binder on one cluster: its namespace, network policies, generated secrets and
the public jupyterhub and binderhub-service releases, with values from `public_values.py`.

Beside the authenticated hub, never inside it: its own namespace, domain, address and
certificate; servers with no cloud identity on their own tainted pool.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from pangeo_binder.charts import BINDERHUB_SERVICE, DASK_GATEWAY, JUPYTERHUB
from pangeo_binder.config_public import PublicBinder as PublicBinderConfig
from pangeo_binder.config_shared import CloudHub, NodePool
from pangeo_binder.hub.config import HubSettings
from pangeo_binder.hub.context import BINDER_SERVICE, HubContext, HubTokens
from pangeo_binder.hub.hub import chart_release, generated_token, load_balancer_address
from pangeo_binder.hub.profiles import shared_pool
from pangeo_binder.hub.public_dask_values import (
    PUBLIC_DASK_RELEASE,
    PUBLIC_DASK_SERVICE,
    public_dask_gateway_values,
    public_dask_hub_piece,
    public_dask_network_policies,
    public_resource_quota,
)
from pangeo_binder.hub.public_values import (
    PUBLIC_BINDER_RELEASE,
    PUBLIC_JUPYTERHUB_RELEASE,
    public_binderhub_values,
    public_jupyterhub_values,
    public_network_policies,
)
from pangeo_binder.network_policies import network_policies
from pangeo_binder.outputs import CloudOutputs
from pangeo_binder.releases import pinned_chart
from pangeo_binder.support.values import with_piece

PUBLIC_BUILDER_ROLE = "publicBuilder"


class PublicBinder(pulumi.ComponentResource):
    """Anonymous launches of allowed repositories at `https://<public.domain>`.

    Needs the cloud stack's `public_binder_address` (reserved, with its DNS record), its
    `publicBuilder` identity and its `public_image_prefix`, where only that identity may
    push: all exist when the stack was given the public builder's service account
    (`WorkloadServiceAccounts.public_builder`). With `public.dask` on, give
    `dask_crds`: the `Hub` whose dask-gateway release installs the chart's CRDs.
    """

    url: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: CloudOutputs,
        *,
        public: PublicBinderConfig,
        pools: dict[str, NodePool],
        settings: HubSettings,
        cloud_hub: CloudHub,
        github_client_secret: pulumi.Output[str],
        dask_crds: pulumi.Resource | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:hub:PublicBinder", name, None, opts)
        if public.dask.enabled and dask_crds is None:
            raise ValueError(
                "public Dask needs dask_crds: the resource (the Hub) whose dask-gateway release "
                "installs the chart's CRDs, which the public release skips"
            )
        reserved = cloud.public_binder_address
        if (
            reserved is None
            or PUBLIC_BUILDER_ROLE not in cloud.identities
            or cloud.public_image_prefix is None
        ):
            raise ValueError(
                f"the {cloud.cloud} stack has no public Binder address, builder identity or "
                "image prefix: pass WorkloadServiceAccounts.public_builder to the cloud stack"
            )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cloud.kubernetes_provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": public.namespace, "labels": {"pangeo-binder.io/public": "true"}},
            opts=k8s_opts,
        )
        policies = network_policies(
            name,
            public_network_policies(cloud.cloud, public.namespace),
            pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        dask = public.dask.enabled
        services = [BINDER_SERVICE] + ([PUBLIC_DASK_SERVICE] if dask else [])
        tokens = pulumi.Output.all(
            *[
                generated_token(f"{name}-{key}", parent=self)
                for key in (
                    "proxy-token",
                    "cookie-secret",
                    "crypt-key",
                    *[f"{service}-token" for service in services],
                )
            ]
        ).apply(
            lambda t: HubTokens(
                t[0], t[1], t[2], service_tokens=dict(zip(services, t[3:], strict=True))
            )
        )
        builder = cloud.identities[PUBLIC_BUILDER_ROLE]
        context = pulumi.Output.all(
            github_client_secret,
            tokens,
            cloud.registry_host,
            # Its own identity and prefix, disjoint from the hub's (CloudOutputs says how).
            cloud.public_image_prefix,
            builder,
            reserved.proxy_service,
        ).apply(
            lambda v: HubContext(
                cloud=cloud.cloud,
                namespace=public.namespace,
                domain=public.domain,
                scratch_bucket="",
                persistent_bucket="",
                github_client_id=cloud_hub.github.client_id,
                github_client_secret=v[0],
                tokens=v[1],
                contact_email=cloud_hub.contact_email,
                registry_host=v[2] or "",
                image_prefix=v[3] or "",
                builder_annotations={cloud.identity_annotation: v[4]} if v[4] else {},
                builder_email=(v[4] or "") if cloud.cloud == "gcp" else "",
                proxy_service=v[5] or {},
            )
        )
        # Everything fenced before anything runs; the certificate is asked for once, at
        # start, so the DNS record comes first.
        release_opts = pulumi.ResourceOptions.merge(
            k8s_opts,
            pulumi.ResourceOptions(depends_on=[namespace, *policies, *reserved.records]),
        )
        jupyterhub = chart_release(
            f"{name}-jupyterhub",
            JUPYTERHUB,
            PUBLIC_JUPYTERHUB_RELEASE,
            public.namespace,
            context.apply(
                lambda c: with_piece(
                    public_jupyterhub_values(c, public, settings), public_dask_hub_piece(c, public)
                )
            ),
            release_opts,
        )
        # BinderHub reads its hub token from the public hub's Secret.
        chart_release(
            f"{name}-binderhub-service",
            BINDERHUB_SERVICE,
            PUBLIC_BINDER_RELEASE,
            public.namespace,
            context.apply(lambda c: public_binderhub_values(c, public, settings, pools)),
            pulumi.ResourceOptions.merge(
                release_opts, pulumi.ResourceOptions(depends_on=[jupyterhub])
            ),
        )
        if dask:
            self._dask(
                name,
                dask_crds,  # type: ignore[arg-type]  # checked above
                public,
                pools,
                shared_pool(pools, settings, cloud.cloud),
                context,
                k8s_opts,
                namespace,
                jupyterhub,
            )
        self.address = jupyterhub.resources.apply(load_balancer_address)
        self.url = pulumi.Output.from_input(f"https://{public.domain}")
        self.register_outputs(self.exports())

    def _dask(
        self,
        name: str,
        dask_crds: pulumi.Resource,
        public: PublicBinderConfig,
        pools: dict[str, NodePool],
        build_pool: str,
        context: pulumi.Output[HubContext],
        k8s_opts: pulumi.ResourceOptions,
        namespace: k8s.core.v1.Namespace,
        jupyterhub: k8s.helm.v4.Chart,
    ) -> k8s.helm.v4.Chart:
        """The public gateway: the namespace's quota and the gateway's policies first, then
        the release, after the public hub (its token is in the hub's Secret) and after
        `dask_crds`, whose gateway installs the CRDs this release skips (`skipCrds`)."""
        after_namespace = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
        )
        limits = public_resource_quota(public, pools, build_pool)
        fences: list[pulumi.Resource] = [
            k8s.core.v1.LimitRange(
                f"{name}-default-requests",
                metadata=limits["limit_range"]["metadata"],
                spec=limits["limit_range"]["spec"],
                opts=after_namespace,
            ),
            k8s.core.v1.ResourceQuota(
                f"{name}-quota",
                metadata=limits["quota"]["metadata"],
                spec=limits["quota"]["spec"],
                opts=after_namespace,
            ),
        ]
        fences += network_policies(
            name, public_dask_network_policies(public.namespace), after_namespace
        )
        return pinned_chart(
            f"{name}-dask-gateway",
            DASK_GATEWAY,
            PUBLIC_DASK_RELEASE,
            public.namespace,
            pulumi.Output.secret(
                context.apply(lambda c: public_dask_gateway_values(c, public, pools))
            ),
            pulumi.ResourceOptions.merge(
                after_namespace, pulumi.ResourceOptions(depends_on=[*fences, jupyterhub, dask_crds])
            ),
            skip_crds=True,
        )

    def exports(self) -> dict[str, pulumi.Output[str]]:
        """Stack outputs: where the public Binder is, and its load balancer's address."""
        return {"publicBinderUrl": self.url, "publicBinderLoadBalancer": self.address}
