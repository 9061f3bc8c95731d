"""Our own Grafana dashboard: what the cluster costs per user and per node pool, by day, from
OpenCost's metrics (priced from the plan's price file) and kube-state-metrics' labels."""

from __future__ import annotations

from typing import Any

from pangeo_binder.support.alerts import POOL_METRIC_LABEL, label_name

COST_UID = "pangeo-binder-cost"
USER_LABEL = f"annotation_{label_name('hub.jupyter.org/username')}"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# Each pod's cost per hour: its CPU and memory allocation at its node's prices (OpenCost).
POD_HOURLY = (
    "sum by (namespace, pod) ("
    "container_cpu_allocation * on (node) group_left () max by (node) (node_cpu_hourly_cost)"
    " + container_memory_allocation_bytes / 1073741824"
    " * on (node) group_left () max by (node) (node_ram_hourly_cost))"
)
# The user each pod belongs to: notebook pods (KubeSpawner) and Dask pods (our gateway
# config) carry the `hub.jupyter.org/username` annotation, which kube-state-metrics exports.
POD_USER = f'max by (namespace, pod, {USER_LABEL}) (kube_pod_annotations{{{USER_LABEL}!=""}})'


def daily(hourly: str) -> str:
    """USD per day from a USD-per-hour expression: the hourly rate summed over a day."""
    return f"sum_over_time(({hourly})[1d:1h])"


def user_cost() -> str:
    per_user = f"{POD_HOURLY} * on (namespace, pod) group_left ({USER_LABEL}) {POD_USER}"
    return f"sum by ({USER_LABEL}) ({daily(per_user)})"


def team_cost() -> str:
    """Per JupyterHub group (GitHub teams): group membership reaches Prometheus only through
    jupyterhub-groups-exporter (2i2c-org), whose `jupyterhub_user_group_info{username,
    usergroup}` the community's group dashboard reads too; without it this panel is empty.
    A user in several groups counts under "multiple" there, and is left out here."""
    members = (
        f"group by (namespace, {USER_LABEL}, usergroup) (label_replace("
        'jupyterhub_user_group_info{usergroup!="multiple"}, '
        f'"{USER_LABEL}", "$1", "username", "(.*)"))'
    )
    per_user = (
        f"{POD_HOURLY} * on (namespace, pod) group_left ({USER_LABEL}) {POD_USER}"
        f" * on (namespace, {USER_LABEL}) group_left (usergroup) {members}"
    )
    return f"sum by (usergroup) ({daily(per_user)})"


def pool_cost() -> str:
    nodes = (
        "max by (node) (node_total_hourly_cost) * on (node) group_left "
        f"({POOL_METRIC_LABEL}) max by (node, {POOL_METRIC_LABEL}) (kube_node_labels)"
    )
    return f"sum by ({POOL_METRIC_LABEL}) ({daily(nodes)})"


def volume_cost() -> str:
    """Persistent volumes (the hub database, Prometheus' own volume), per claim."""
    return (
        "sum by (persistentvolume) ("
        + daily("max by (persistentvolume) (pv_hourly_cost)"
                " * on (persistentvolume) group_left () max by (persistentvolume)"
                " (kube_persistentvolume_capacity_bytes) / 1073741824")
        + ")"
    )  # fmt: skip


def _panel(pid: int, title: str, expr: str, legend: str, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "interval": "1d",
        "gridPos": {"h": 9, "w": 24, "x": 0, "y": y},
        "fieldConfig": {
            "defaults": {
                "unit": "currencyUSD",
                "custom": {"drawStyle": "bars", "stacking": {"mode": "normal"}},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "table", "placement": "right"}},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}],
    }


def cost_dashboard() -> dict[str, Any]:
    """The cost dashboard, Grafana's JSON model."""
    rows = [
        ("Cost per user per day (USD)", user_cost(), f"{{{{{USER_LABEL}}}}}"),
        ("Cost per node pool per day (USD)", pool_cost(), f"{{{{{POOL_METRIC_LABEL}}}}}"),
        ("Cost per team (JupyterHub group) per day (USD)", team_cost(), "{{usergroup}}"),
        ("Persistent volumes per day (USD)", volume_cost(), "{{persistentvolume}}"),
    ]
    panels = [_panel(i + 1, *row, y=9 * i) for i, row in enumerate(rows)]
    return {
        "uid": COST_UID,
        "title": "Cost per user and pool",
        "tags": ["pangeo-binder", "cost"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-30d", "to": "now"},
        "templating": {"list": []},
        "panels": panels,
    }
