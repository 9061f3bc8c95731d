"""The Prometheus alert rules of one cluster, as the `alerting_rules.yml` the prometheus chart
loads. They show in Grafana (Alerting, data source-managed rules) and, with a delivery channel,
reach it through Alertmanager. tests/test_support_alerts.py checks them with `promtool`."""

from __future__ import annotations

from typing import Any

from pangeo_binder.scheduling import POOL_LABEL

CERT_DAYS = 14
DB_PVC = "hub-db-dir"  # z2jh's hub database volume claim


def label_name(key: str) -> str:
    """kube-state-metrics' name for a Kubernetes label or annotation key: every character
    outside [a-zA-Z0-9_] becomes `_` (`pangeo-binder.io/pool` -> `pangeo_binder_io_pool`)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in key)


POOL_METRIC_LABEL = f"label_{label_name(POOL_LABEL)}"


def _rule(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def alert_rules(
    hub_namespace: str,
    pools: dict[str, int],
    extra_groups: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Rule groups: the hub, node pools, the hub's database volume, the HTTPS certificate.
    `pools` maps each pool key to its maxNodes. `extra_groups` is where other parts of the
    hub add theirs (the hub database backup's "backup missed" rule goes there)."""
    hub = [
        _rule(
            "JupyterHubDown",
            'up{job="jupyterhub"} == 0 or absent(up{job="jupyterhub"})',
            "5m",
            "critical",
            "The hub has not answered Prometheus for 5 minutes: nobody can log in.",
        ),
        _rule(
            "SpawnFailuresRising",
            'sum(increase(jupyterhub_server_spawn_duration_seconds_count{status="failure"}[30m]))'
            " > 3",
            "5m",
            "warning",
            "More than 3 servers failed to start in the last 30 minutes.",
        ),
        _rule(
            "HubDatabaseVolumeNearlyFull",
            f'kubelet_volume_stats_available_bytes{{namespace="{hub_namespace}",'
            f'persistentvolumeclaim="{DB_PVC}"}} / kubelet_volume_stats_capacity_bytes'
            f'{{namespace="{hub_namespace}",persistentvolumeclaim="{DB_PVC}"}} < 0.1',
            "15m",
            "warning",
            "The hub database's volume is more than 90% full.",
        ),
        _rule(
            "HttpsCertificateExpiresSoon",
            # Traefik in autohttps exports each certificate's NotAfter (Unix seconds).
            f"min(traefik_tls_certs_not_after) - time() < {CERT_DAYS} * 86400",
            "1h",
            "warning",
            f"The hub's HTTPS certificate expires within {CERT_DAYS} days: Let's Encrypt "
            "renewal is failing (kubectl logs deploy/autohttps -c traefik).",
        ),
    ]
    pool_rules = [
        _rule(
            "NodePoolAtMaxNodes",
            f'count(kube_node_labels{{{POOL_METRIC_LABEL}="{key}"}}) >= {max_nodes}',
            "15m",
            "warning",
            f"Pool {key} has run at its maxNodes ({max_nodes}) for 15 minutes: users and "
            "Dask workers wait for room.",
        )
        for key, max_nodes in sorted(pools.items())
    ]
    for rule, key in zip(pool_rules, sorted(pools), strict=True):
        rule["labels"]["pool"] = key
    groups = [{"name": "hub", "rules": hub}, {"name": "node-pools", "rules": pool_rules}]
    return {"groups": groups + list(extra_groups or [])}
