"""Values of the support releases (prometheus, grafana, opencost) and the pieces the hub's own
releases need (a `grafana` and a `prometheus` JupyterHub service, the Dask pods' user
annotation), as pure functions of plain data: tests call them with literals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder.machines import Cloud
from pangeo_binder.scheduling import PURPOSE_LABELS
from pangeo_binder.support.config import MonitoringSettings

NAMESPACE = "support"
PROMETHEUS_RELEASE = "prometheus"
GRAFANA_RELEASE = "grafana"
OPENCOST_RELEASE = "opencost"
STORAGE_CLASS = "support-retain"
GRAFANA_SERVICE = "grafana"  # the JupyterHub service, proxied at /services/grafana/
PROMETHEUS_SERVICE = "prometheus"  # the JupyterHub service whose token reads /hub/metrics
GRAFANA_PORT = 3000  # the grafana container's port, behind its Service's port 80
PROMETHEUS_URL = f"http://{PROMETHEUS_RELEASE}-server.{NAMESPACE}.svc"
# Secrets the support component creates in NAMESPACE (values name them, never hold them).
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_OAUTH_SECRET = "grafana-oauth"
HUB_TOKEN_SECRET = "prometheus-hub-token"
ALERT_SECRET = "alert-channel"
HUB_TOKEN_MOUNT = "/etc/prometheus-hub-token"
USERNAME_KEY = "hub.jupyter.org/username"
DASHBOARD_LABEL = "grafana_dashboard"
FOLDER_ANNOTATION = "grafana_folder"
CORE_SELECTOR = PURPOSE_LABELS["core"]
# Traefik's metrics entrypoint in autohttps, where the certificate's expiry is read.
TRAEFIK_METRICS_PORT = 9100

# Requests sized for an idle cluster (a handful of users): the core pool carries them.
# (cpu, memory) per container; node-exporter runs on every node, the rest on the core pool.
REQUESTS: dict[str, tuple[str, str]] = {
    "prometheus-server": ("100m", "512Mi"),
    "prometheus-config-reloader": ("10m", "32Mi"),
    "kube-state-metrics": ("10m", "64Mi"),
    "node-exporter": ("10m", "32Mi"),
    "alertmanager": ("10m", "32Mi"),
    "grafana": ("50m", "128Mi"),
    "grafana-dashboard-sidecar": ("10m", "64Mi"),
    "opencost": ("20m", "128Mi"),
}
MEMORY_LIMITS = {"prometheus-server": "2Gi", "grafana": "512Mi", "opencost": "1Gi"}


def no_privileges(read_only: bool = False) -> dict[str, Any]:
    """A container context for a process that needs no capability and never gains privileges
    (Helm merges it into the chart's own); `read_only` for one that writes only to volumes."""
    context: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {**context, "readOnlyRootFilesystem": True} if read_only else context


def runtime_default() -> dict[str, Any]:
    """A pod context with the runtime's default seccomp profile (the kubelet's default is
    Unconfined), merged into the chart's own pod context."""
    return {"seccompProfile": {"type": "RuntimeDefault"}}


def resources(container: str) -> dict[str, Any]:
    cpu, memory = REQUESTS[container]
    limits = {"memory": MEMORY_LIMITS.get(container, memory)}
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


@dataclass(frozen=True)
class SupportContext:
    """One cluster's facts for the support releases, resolved to plain values."""

    cloud: Cloud
    cluster: str  # the cluster's name, OpenCost's cluster id
    domain: str  # the hub's domain: Grafana lives at https://DOMAIN/services/grafana/
    hub_namespace: str
    pools: dict[str, int] = field(default_factory=dict)  # pool key -> maxNodes
    pricing: dict[str, str] = field(default_factory=dict)  # OpenCost custom pricing


def grafana_root(domain: str) -> str:
    return f"https://{domain}/services/{GRAFANA_SERVICE}/"


def hub_api(hub_namespace: str) -> str:
    return f"http://hub.{hub_namespace}.svc:8081/hub"


def scrape_configs(ctx: SupportContext) -> list[dict[str, Any]]:
    """The hub (with its read:metrics token), Dask schedulers and autohttps' Traefik."""
    schedulers = {
        "job_name": "dask-schedulers",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [ctx.hub_namespace]}}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
                "regex": "dask-scheduler",
                "action": "keep",
            },
            # The scheduler's dashboard port serves /metrics (distributed's Prometheus route).
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": "8787",
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        ],
    }
    return [
        {
            "job_name": "jupyterhub",
            "metrics_path": "/hub/metrics",
            "authorization": {"credentials_file": f"{HUB_TOKEN_MOUNT}/token"},
            "static_configs": [
                {
                    "targets": [f"hub.{ctx.hub_namespace}.svc:8081"],
                    "labels": {"namespace": ctx.hub_namespace},
                }
            ],
        },
        schedulers,
        {
            "job_name": "autohttps",
            "kubernetes_sd_configs": [
                {"role": "pod", "namespaces": {"names": [ctx.hub_namespace]}}
            ],
            "relabel_configs": [
                {
                    "source_labels": ["__meta_kubernetes_pod_label_component"],
                    "regex": "autohttps",
                    "action": "keep",
                },
                {
                    "source_labels": ["__address__"],
                    "regex": r"([^:]+)(?::\d+)?",
                    "replacement": f"$1:{TRAEFIK_METRICS_PORT}",
                    "target_label": "__address__",
                },
            ],
        },
    ]


def prometheus_values(
    ctx: SupportContext, settings: MonitoringSettings, rules: dict[str, Any]
) -> dict[str, Any]:
    """The prometheus chart: the server on the core pool with a Retain volume, retention by
    time and size; kube-state-metrics copying the labels the dashboards read; node-exporter
    on every node; Alertmanager only for a delivery channel; no pushgateway."""
    channel = settings.alerts.channel is not None
    server: dict[str, Any] = {
        "retention": f"{settings.retention_days}d",
        # Prometheus stops at 80% of the volume: the WAL and compaction need the rest.
        "retentionSize": f"{settings.volume_size_gb * 8 // 10}GB",
        "persistentVolume": {
            "enabled": True,
            "size": f"{settings.volume_size_gb}Gi",
            "storageClass": STORAGE_CLASS,
        },
        "nodeSelector": CORE_SELECTOR,
        "resources": resources("prometheus-server"),
        # Prometheus writes only to its volume (prometheus-operator runs it read-only too).
        "containerSecurityContext": no_privileges(read_only=True),
        "securityContext": runtime_default(),
        "extraSecretMounts": [
            {
                "name": "hub-token",
                "mountPath": HUB_TOKEN_MOUNT,
                "secretName": HUB_TOKEN_SECRET,
                "readOnly": True,
            }
        ],
    }
    if not channel:
        server["alertmanagers"] = []
    values: dict[str, Any] = {
        "server": server,
        "configmapReload": {
            "prometheus": {
                "resources": resources("prometheus-config-reloader"),
                "containerSecurityContext": no_privileges(read_only=True),
            }
        },
        "serverFiles": {"alerting_rules.yml": rules},
        "extraScrapeConfigs": yaml.safe_dump(scrape_configs(ctx), sort_keys=False),
        "prometheus-pushgateway": {"enabled": False},
        "alertmanager": {"enabled": False},
        "kube-state-metrics": {
            "metricLabelsAllowlist": ["pods=[app,component,hub.jupyter.org/username]", "nodes=[*]"],
            "metricAnnotationsAllowList": [f"pods=[{USERNAME_KEY}]"],
            "nodeSelector": CORE_SELECTOR,
            "resources": resources("kube-state-metrics"),
        },
        "prometheus-node-exporter": {
            # Every pool, whatever its taints (user, dask, GPU): a node without it is unseen.
            "tolerations": [{"operator": "Exists"}],
            "resources": resources("node-exporter"),
            # It reads /proc and /sys as nobody: no capability needed (the chart keeps the root
            # filesystem read-only).
            "containerSecurityContext": no_privileges(read_only=True),
            "securityContext": runtime_default(),
        },
    }
    if channel:
        values["alertmanager"] = alertmanager_values(settings)
    return values


def alertmanager_values(settings: MonitoringSettings) -> dict[str, Any]:
    """Alertmanager with one receiver, its secret read from a file of the alert Secret."""
    channel = settings.alerts.channel
    assert channel is not None
    secret_dir = "/etc/alertmanager/channel"
    if channel.type == "webhook":
        receiver = {"webhook_configs": [{"url_file": f"{secret_dir}/url", "send_resolved": True}]}
    else:
        receiver = {
            "email_configs": [
                {
                    "to": channel.to,
                    "from": channel.from_,
                    "smarthost": channel.smarthost,
                    "auth_username": channel.username or channel.from_,
                    "auth_password_file": f"{secret_dir}/password",
                    "send_resolved": True,
                }
            ]
        }
    return {
        "enabled": True,
        "persistence": {"enabled": False},
        "nodeSelector": CORE_SELECTOR,
        "resources": resources("alertmanager"),
        "extraSecretMounts": [
            {
                "name": "channel",
                "mountPath": secret_dir,
                "secretName": ALERT_SECRET,
                "readOnly": True,
            }
        ],
        "config": {
            "global": {},
            "route": {
                "receiver": "channel",
                "group_by": ["alertname"],
                "repeat_interval": "12h",
            },
            "receivers": [{"name": "channel", **receiver}],
        },
    }


def grafana_values(ctx: SupportContext, settings: MonitoringSettings) -> dict[str, Any]:
    """Grafana behind the hub's proxy at /services/grafana/, login through the hub only."""
    hub = hub_api(ctx.hub_namespace)
    oauth = {
        "enabled": True,
        "name": "JupyterHub",
        "client_id": f"service-{GRAFANA_SERVICE}",
        # The browser goes to the hub's public address; Grafana itself talks to the hub
        # inside the cluster.
        "auth_url": f"https://{ctx.domain}/hub/api/oauth2/authorize",
        "token_url": f"{hub}/api/oauth2/token",
        "api_url": f"{hub}/api/user",
        "scopes": "",
        "login_attribute_path": "name",
        "name_attribute_path": "name",
        # Who gets in is the hub's decision (the service's access scope: admins and the
        # viewers' role); inside, hub admins administer and everyone else views.
        "role_attribute_path": "admin && 'Admin' || 'Viewer'",
        "allow_sign_up": True,
        "use_pkce": True,
    }
    return {
        "admin": {
            "existingSecret": GRAFANA_ADMIN_SECRET,
            "userKey": "admin-user",
            "passwordKey": "admin-password",
        },
        "envValueFrom": {
            "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {
                "secretKeyRef": {"name": GRAFANA_OAUTH_SECRET, "key": "client-secret"}
            }
        },
        "grafana.ini": {
            "server": {
                "domain": ctx.domain,
                "root_url": grafana_root(ctx.domain),
                "serve_from_sub_path": True,
            },
            "auth": {"disable_login_form": True, "oauth_auto_login": True},
            "auth.anonymous": {"enabled": False},
            "auth.basic": {"enabled": False},
            "auth.generic_oauth": oauth,
            "users": {"allow_sign_up": False},
            "analytics": {"reporting_enabled": False, "check_for_updates": False},
        },
        "datasources": {
            "datasources.yaml": {
                "apiVersion": 1,
                "datasources": [
                    {
                        "name": "Prometheus",
                        "type": "prometheus",
                        "uid": "prometheus",
                        "url": PROMETHEUS_URL,
                        "access": "proxy",
                        "isDefault": True,
                    }
                ],
            }
        },
        # The sidecar reads dashboards from this namespace only: a Role here instead of the
        # chart's ClusterRole, which lets Grafana read every Secret of the cluster.
        "rbac": {"namespaced": True},
        "sidecar": {
            "resources": resources("grafana-dashboard-sidecar"),
            "dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": "1",
                "searchNamespace": NAMESPACE,
                # Our dashboards are ConfigMaps (support.py): the sidecar watches no Secret.
                "resource": "configmap",
                "folderAnnotation": FOLDER_ANNOTATION,
                "provider": {"foldersFromFilesStructure": True},
            },
        },
        "persistence": {"enabled": False},
        "service": {"type": "ClusterIP"},
        "nodeSelector": CORE_SELECTOR,
        "resources": resources("grafana"),
        "testFramework": {"enabled": False},
    }


def opencost_values(ctx: SupportContext) -> dict[str, Any]:
    """OpenCost reading our Prometheus and pricing nodes from the plan's price file."""
    return {
        "podSecurityContext": runtime_default(),
        "service": {"annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9003"}},
        "opencost": {
            "exporter": {
                "defaultClusterId": ctx.cluster,
                "resources": resources("opencost"),
                # Not read-only nor non-root: the image's user and the paths it writes (its
                # pricing files) are not known to be safe for that (tests/checkov-baseline.yaml).
                "securityContext": no_privileges(),
            },
            "customPricing": {
                "enabled": True,
                "provider": "custom",
                "costModel": {"description": "pangeo-binder prices.yaml", **ctx.pricing},
            },
            "prometheus": {
                "internal": {
                    "enabled": True,
                    "serviceName": f"{PROMETHEUS_RELEASE}-server",
                    "namespaceName": NAMESPACE,
                    "port": 80,
                }
            },
            "ui": {"enabled": False},
            "nodeSelector": CORE_SELECTOR,
        },
    }


# --- the pieces of the hub's own releases ---------------------------------------------------


def hub_values_piece(
    domain: str, grafana_client_secret: str, prometheus_token: str, viewers: list[str]
) -> dict[str, Any]:
    """Merged into the jupyterhub release's values (see docs/howto/monitoring.md): the grafana
    service (routed at /services/grafana/, its OAuth client), the prometheus service with only
    read:metrics, who may open Grafana, Traefik's metrics (the certificate's expiry) and the
    proxy's and the hub's egress to Grafana. The `networkPolicy.egress` lists are appended to
    the hub's own rules (with_piece), as Helm would replace them."""
    roles: dict[str, Any] = {
        "prometheus-metrics": {
            "description": "Read the hub's metrics only",
            "scopes": ["read:metrics"],
            "services": [PROMETHEUS_SERVICE],
        }
    }
    if viewers:
        roles["grafana-viewers"] = {
            "description": "Log in to Grafana",
            "scopes": [f"access:services!service={GRAFANA_SERVICE}"],
            "users": list(viewers),
        }
    return {
        "hub": {
            "services": {
                GRAFANA_SERVICE: {
                    "url": f"http://{GRAFANA_RELEASE}.{NAMESPACE}.svc",
                    "oauth_client_id": f"service-{GRAFANA_SERVICE}",
                    "oauth_redirect_uri": f"{grafana_root(domain)}login/generic_oauth",
                    "api_token": grafana_client_secret,
                    "oauth_no_confirm": True,
                    "display": False,
                },
                PROMETHEUS_SERVICE: {"api_token": prometheus_token},
            },
            "loadRoles": roles,
            # JupyterHub 5.5 checks every service's URL at start and each minute
            # (app.py `check_services_health`, `service_check_interval` 60): without this
            # rule its check of Grafana's fails on every start.
            "networkPolicy": {"egress": [proxy_to_grafana()]},
        },
        "proxy": {
            "chp": {"networkPolicy": {"egress": [proxy_to_grafana()]}},
            "traefik": {
                "extraStaticConfig": {
                    "entryPoints": {"metrics": {"address": f":{TRAEFIK_METRICS_PORT}"}},
                    "metrics": {"prometheus": {"entryPoint": "metrics"}},
                },
                "extraPorts": [
                    {"name": "metrics", "containerPort": TRAEFIK_METRICS_PORT, "protocol": "TCP"}
                ],
            },
        },
    }


def proxy_to_grafana() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}},
            }
        ],
        "ports": [{"port": GRAFANA_PORT, "protocol": "TCP"}],
    }


DASK_ANNOTATION_CONFIG = "90-user-annotation"


def dask_values_piece() -> dict[str, Any]:
    """Merged into the dask-gateway release's values: every scheduler and worker pod carries
    `hub.jupyter.org/username` naming the user who started it (incluster/dask_user.py)."""
    source = (Path(__file__).parent / "incluster" / "dask_user.py").read_text()
    return {"gateway": {"extraConfig": {DASK_ANNOTATION_CONFIG: source}}}


def with_piece(values: dict[str, Any], piece: dict[str, Any]) -> dict[str, Any]:
    """`values` with a piece merged in (a copy): maps merge key by key, the piece's scalars
    win, and lists are appended to, not replaced as Helm would: the pieces only add rules,
    ports and entries (the proxy's egress to Grafana joins the hub's own egress rules)."""
    merged = dict(values)
    for key, value in piece.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = with_piece(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = [*old, *value]
        else:
            merged[key] = value
    return merged
