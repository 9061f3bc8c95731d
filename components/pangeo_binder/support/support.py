"""The support stack of one cluster, in the `support` namespace: Prometheus, Grafana with the
community's JupyterHub dashboards and our cost dashboard, OpenCost, alert rules; values from
the pure builders beside this file, generated secrets kept in Pulumi state."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from pangeo_binder.charts import GRAFANA, OPENCOST, PROMETHEUS
from pangeo_binder.config_shared import NodePool
from pangeo_binder.network_policies import network_policies
from pangeo_binder.outputs import CloudOutputs
from pangeo_binder.releases import pinned_chart
from pangeo_binder.support import dashboards
from pangeo_binder.support.alerts import alert_rules
from pangeo_binder.support.config import MonitoringSettings
from pangeo_binder.support.cost_dashboard import cost_dashboard
from pangeo_binder.support.pricing import PoolMachine, custom_pricing
from pangeo_binder.support.values import (
    ALERT_SECRET,
    DASHBOARD_LABEL,
    FOLDER_ANNOTATION,
    GRAFANA_ADMIN_SECRET,
    GRAFANA_OAUTH_SECRET,
    GRAFANA_RELEASE,
    HUB_TOKEN_SECRET,
    NAMESPACE,
    OPENCOST_RELEASE,
    PROMETHEUS_RELEASE,
    STORAGE_CLASS,
    TRAEFIK_METRICS_PORT,
    SupportContext,
    grafana_root,
    grafana_values,
    hub_values_piece,
    opencost_values,
    prometheus_values,
)

RANDOM_OUTPUTS = ["hex", "b64Std", "b64Url", "dec", "id"]
COST_FOLDER = "Cost"


def retain_storage_class(cloud: str) -> dict[str, Any]:
    """Prometheus' volume outlives its claim (an uninstall keeps the metrics): GKE pd-balanced
    or EKS gp3, reclaim policy Retain, created in the zone of the pod's node."""
    provisioner, parameters = (
        ("pd.csi.storage.gke.io", {"type": "pd-balanced"})
        if cloud == "gcp"
        else ("ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"})
    )
    return {
        "metadata": {"name": STORAGE_CLASS},
        "provisioner": provisioner,
        "parameters": parameters,
        "reclaim_policy": "Retain",
        "volume_binding_mode": "WaitForFirstConsumer",
        "allow_volume_expansion": True,
    }


def hub_ingress_policies(hub_namespace: str) -> list[dict[str, Any]]:
    """Let Prometheus and Grafana in `support` reach the hub's API (metrics, OAuth) and
    autohttps' Traefik metrics, and Prometheus the Dask schedulers' /metrics. NetworkPolicies
    add up: the hub's and the Dask clusters' own policies are left as they are. z2jh labels its
    pods `component`, the gateway its cluster pods `app.kubernetes.io/component`."""
    from_support = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}
    ]

    def policy(name: str, selector: dict[str, Any], ports: list[int]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": hub_namespace},
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": from_support, "ports": [{"port": p, "protocol": "TCP"}]} for p in ports
                ],
            },
        }

    hub = {"matchExpressions": [{"key": "component", "operator": "In",
                                 "values": ["hub", "autohttps"]}]}  # fmt: skip
    schedulers = {"matchLabels": {"app.kubernetes.io/component": "dask-scheduler"}}
    return [
        policy("support-scrapes-hub", hub, [8081, TRAEFIK_METRICS_PORT]),
        policy("support-scrapes-dask", schedulers, [8787]),
    ]


def dashboard_config_maps(rendered: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard for Grafana's sidecar, filed by folder."""
    maps = []
    for name, (folder, dashboard) in sorted(rendered.items()):
        maps.append(
            {
                "metadata": {
                    "name": f"dashboard-{name}",
                    "namespace": NAMESPACE,
                    "labels": {DASHBOARD_LABEL: "1"},
                    "annotations": {FOLDER_ANNOTATION: folder},
                },
                "data": {f"{name}.json": json.dumps(dashboard, sort_keys=True)},
            }
        )
    return maps


def all_dashboards() -> dict[str, tuple[str, dict[str, Any]]]:
    """The community's dashboards in the JupyterHub folder and ours in Cost, by name."""
    found = {name: (dashboards.FOLDER, d) for name, d in dashboards.render_all().items()}
    return {**found, "cost": (COST_FOLDER, cost_dashboard())}


class Support(pulumi.ComponentResource):
    """The support stack on one cluster. `hub_values` is the piece the jupyterhub release's
    values need (the grafana and prometheus services, with the tokens generated here)."""

    hub_values: pulumi.Output[dict[str, Any]]
    grafana_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: CloudOutputs,
        *,
        settings: MonitoringSettings,
        hub_namespace: str,
        domain: str,
        region: str,
        pools: dict[str, NodePool],
        channel_secret: pulumi.Output[str] | None = None,
        extra_rule_groups: list[dict[str, Any]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:support:Support", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cloud.kubernetes_provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE}, opts=k8s_opts
        )
        in_namespace = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
        )
        storage = k8s.storage.v1.StorageClass(
            f"{name}-retain", **retain_storage_class(cloud.cloud), opts=k8s_opts
        )
        secret_opts = pulumi.ResourceOptions(parent=self, additional_secret_outputs=RANDOM_OUTPUTS)
        grafana_password = random.RandomPassword(
            f"{name}-grafana-admin",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        oauth_secret = pulumi.Output.secret(
            random.RandomId(f"{name}-grafana-oauth", byte_length=32, opts=secret_opts).hex
        )
        hub_token = pulumi.Output.secret(
            random.RandomId(f"{name}-prometheus-token", byte_length=32, opts=secret_opts).hex
        )
        secrets = [
            self._secret(
                f"{name}-grafana-admin-secret",
                GRAFANA_ADMIN_SECRET,
                {"admin-user": "admin", "admin-password": grafana_password.result},
                in_namespace,
            ),
            self._secret(
                f"{name}-grafana-oauth-secret",
                GRAFANA_OAUTH_SECRET,
                {"client-secret": oauth_secret},
                in_namespace,
            ),
            self._secret(
                f"{name}-hub-token-secret", HUB_TOKEN_SECRET, {"token": hub_token}, in_namespace
            ),
        ]
        channel = settings.alerts.channel
        if channel is not None and channel_secret is not None:
            key = "url" if channel.type == "webhook" else "password"
            secrets.append(
                self._secret(
                    f"{name}-alert-channel", ALERT_SECRET, {key: channel_secret}, in_namespace
                )
            )
        # The policies in the hub's namespace wait for it: fence_hub.
        self._name, self._k8s_opts, self._hub_namespace = name, k8s_opts, hub_namespace
        for manifest in dashboard_config_maps(all_dashboards()):
            k8s.core.v1.ConfigMap(
                f"{name}-{manifest['metadata']['name']}",
                metadata=manifest["metadata"],
                data=manifest["data"],
                opts=in_namespace,
            )
        machines = [
            PoolMachine(p.machine_type, p.spot, p.gpu.count if p.gpu else 0) for p in pools.values()
        ]
        max_nodes = {key: pool.max_nodes for key, pool in pools.items()}
        context = cloud.cluster_name.apply(
            lambda cluster: SupportContext(
                cloud=cloud.cloud,
                cluster=cluster,
                domain=domain,
                hub_namespace=hub_namespace,
                pools=max_nodes,
                pricing=custom_pricing(cloud.cloud, region, machines),
            )
        )
        chart_opts = pulumi.ResourceOptions.merge(
            in_namespace, pulumi.ResourceOptions(depends_on=[storage, *secrets])
        )
        # Other parts of the hub add their rule groups (the database backup's "backup missed").
        rules = alert_rules(hub_namespace, max_nodes, extra_rule_groups)
        prometheus = pinned_chart(
            f"{name}-prometheus",
            PROMETHEUS,
            PROMETHEUS_RELEASE,
            NAMESPACE,
            context.apply(lambda c: prometheus_values(c, settings, rules)),
            chart_opts,
        )
        pinned_chart(
            f"{name}-grafana",
            GRAFANA,
            GRAFANA_RELEASE,
            NAMESPACE,
            context.apply(lambda c: grafana_values(c, settings)),
            chart_opts,
        )
        pinned_chart(
            f"{name}-opencost",
            OPENCOST,
            OPENCOST_RELEASE,
            NAMESPACE,
            context.apply(opencost_values),
            pulumi.ResourceOptions.merge(chart_opts, pulumi.ResourceOptions(
                depends_on=[prometheus])),
        )  # fmt: skip
        viewers = list(settings.grafana.viewers)
        self.hub_values = pulumi.Output.secret(
            pulumi.Output.all(oauth_secret, hub_token).apply(
                lambda t: hub_values_piece(domain, t[0], t[1], viewers)
            )
        )
        self.grafana_url = pulumi.Output.from_input(grafana_root(domain))
        self.register_outputs({"grafanaUrl": self.grafana_url})

    def fence_hub(
        self, hub_namespace: k8s.core.v1.Namespace
    ) -> list[k8s.networking.v1.NetworkPolicy]:
        """Let Prometheus and Grafana into the hub's namespace (hub_ingress_policies), once the
        hub has made it. The support stack is built before the hub (its tokens are in the hub's
        values), so the namespace is not there when Support is: the policies depend on it, so
        they are created after it and deleted before it. Names and parent are the ones they
        always had (their URNs are kept)."""
        opts = pulumi.ResourceOptions.merge(
            self._k8s_opts, pulumi.ResourceOptions(depends_on=[hub_namespace])
        )
        return network_policies(self._name, hub_ingress_policies(self._hub_namespace), opts)

    def _secret(
        self,
        name: str,
        secret: str,
        data: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> k8s.core.v1.Secret:
        """A Secret whose generated values stay Pulumi secrets (the caller passes them so)."""
        return k8s.core.v1.Secret(
            name,
            metadata={"name": secret, "namespace": NAMESPACE},
            string_data=data,
            opts=opts,
        )

    def exports(self) -> dict[str, pulumi.Output[str]]:
        return {"grafanaUrl": self.grafana_url}
