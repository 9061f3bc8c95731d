"""Dask for public users (`publicBinder.dask`): values of a second dask-gateway release in the
public namespace, its piece of the public z2jh values, its network policies, and the
namespace's ResourceQuota. Pure functions of the config and a `HubContext` of the public side.

The release is `public-dask-gateway` (fullnameOverride): its ClusterRoles are named after it
(`api-`, `controller-`, `traefik-public-dask-gateway`), its Traefik watches only IngressRoutes
labelled with it (`--providers.kubernetescrd.labelselector=gateway.dask.org/instance=...`) and
its controller only DaskClusters with that label (dask_gateway_server 2026.3.0,
KubeBackendAndControllerMixin.label_selector). The chart's CRDs are cluster-wide and shared:
the authenticated hub's gateway installs them, this release skips them (helm.v4.Chart
`skipCrds`), so one Pulumi resource owns each.
"""

from __future__ import annotations

import json
from typing import Any

from pangeo_binder.config_public import PublicBinder
from pangeo_binder.config_shared import NodePool
from pangeo_binder.hub.context import (
    DASK_GATEWAY_SERVICE,
    DASK_LABELS,
    DNS_EGRESS,
    DOCKER_DAEMON_REQUEST,
    KUBE_API_EGRESS,
    HubContext,
)
from pangeo_binder.hub.dask_values import (
    DASK_POD_COMPONENTS,
    GATEWAY_API_PORT,
    GATEWAY_RESOURCES,
    SCHEDULER_API_PORT,
    SCHEDULER_PORTS,
    gateway_core_pods,
    worker_sizes,
)
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.jupyterhub_values import hub_ingress_from, to_pods
from pangeo_binder.hub.public_values import internet_egress
from pangeo_binder.machines import allocatable
from pangeo_binder.scheduling import POOL_LABEL, PURPOSE_LABELS, toleration

PUBLIC_DASK_RELEASE = "public-dask-gateway"
# z2jh names a service's token key after it (hub.services.<name>.apiToken), which is the
# chart's default apiTokenFromSecretKey: the public hub's service has the usual name.
PUBLIC_DASK_SERVICE = DASK_GATEWAY_SERVICE
PUBLIC_DASK_TRAEFIK_SERVICE = f"traefik-{PUBLIC_DASK_RELEASE}"
INSTANCE = {"gateway.dask.org/instance": PUBLIC_DASK_RELEASE}
PUBLIC_TRAEFIK_LABELS = {**DASK_LABELS, **INSTANCE, "app.kubernetes.io/component": "traefik"}
PUBLIC_GATEWAY_API_LABELS = {**DASK_LABELS, **INSTANCE, "app.kubernetes.io/component": "gateway"}
TRAEFIK_PORT = 8000  # Traefik's web entrypoint (HTTP and, by SNI, scheduler TCP)
HUB_API_PORT = 8081
# A public scheduler runs on the public pool beside the servers: small, and requests = limits.
SCHEDULER_CORES = 0.5
SCHEDULER_MEMORY_MIB = 1024
CORE_SELECTOR = PURPOSE_LABELS["core"]

# The namespace's ResourceQuota. Public servers count at their guarantees, times totalQuota;
# Dask at DASK_CLUSTERS_IN_QUOTA full-size clusters (maxCores, maxMemoryGb, maxWorkers + a
# scheduler each); then the rest of the namespace: the hub, proxy, autohttps, BinderHub and the
# gateway's three pods (their requests sum to under 0.5 CPU and 2 GiB: PLATFORM), builds
# (BUILDS_IN_QUOTA at BinderHub's 0.2 CPU / 512 MiB) and one docker daemon per node of the
# build pool (its maxNodes).
DASK_CLUSTERS_IN_QUOTA = 5
BUILDS_IN_QUOTA = 5
BUILD_REQUEST = (0.2, 0.5)  # CPU, GiB (binderhub_values: the build pods' requests)
PLATFORM = (10, 1.0, 2.0)  # pods, CPU, GiB
# Containers that give no requests get these (a quota on requests refuses pods without them).
DEFAULT_REQUEST = {"cpu": "10m", "memory": "32Mi"}


def public_dask_enabled(public: PublicBinder | None) -> bool:
    return public is not None and public.dask.enabled


def _dask_pool(pools: dict[str, NodePool]) -> tuple[str, NodePool]:
    """The first pool of purpose `dask` (the config check requires one with public Dask)."""
    return next((k, p) for k, p in pools.items() if p.purpose == "dask")


def public_worker_size(cloud: str, pools: dict[str, NodePool]) -> dict[str, Any]:
    """The only worker size anonymous users get: the smallest cut of a dask node."""
    _, pool = _dask_pool(pools)
    node = allocatable(cloud, pool.machine_type)  # type: ignore[arg-type]
    if node is None:  # the config check refuses dask pools of unknown shape
        raise ValueError(f"no machine shape for {pool.machine_type!r}")
    return worker_sizes(node)[0]


def public_gateway_settings(
    context: HubContext, public: PublicBinder, pools: dict[str, NodePool]
) -> dict[str, Any]:
    """What incluster/public_gateway_options.py reads, as plain data."""
    dask = public.dask
    return {
        "workerSize": public_worker_size(context.cloud, pools),
        "imagePrefix": context.image_prefix,
        "schedulerCores": SCHEDULER_CORES,
        "schedulerMemoryMib": SCHEDULER_MEMORY_MIB,
        "idleTimeoutSeconds": dask.idle_timeout_minutes * 60,
        "maxWorkers": dask.max_workers,
        "maxCores": dask.max_cores,
        "maxMemoryGib": dask.max_memory_gb,
    }


def public_dask_gateway_values(
    context: HubContext, public: PublicBinder, pools: dict[str, NodePool]
) -> dict[str, Any]:
    """The whole values tree of the public dask-gateway release."""
    dask_key, _ = _dask_pool(pools)
    literal = json.dumps(json.dumps(public_gateway_settings(context, public, pools)))
    no_identity = {"automountServiceAccountToken": False}
    return {
        "fullnameOverride": PUBLIC_DASK_RELEASE,
        "gateway": {
            "prefix": f"/services/{PUBLIC_DASK_SERVICE}",
            "auth": {
                "type": "jupyterhub",
                "jupyterhub": {
                    # Its token from the public z2jh release's `hub` Secret (chart default).
                    "apiUrl": f"http://hub.{context.namespace}:{HUB_API_PORT}/hub/api",
                    "jupyterhubServiceName": PUBLIC_DASK_SERVICE,
                },
            },
            "nodeSelector": CORE_SELECTOR,
            "resources": GATEWAY_RESOURCES,
            "backend": {
                # The namespace's `default` account (no cloud identity), and no token.
                "scheduler": {
                    "extraPodConfig": {
                        **no_identity,
                        "nodeSelector": dict(PURPOSE_LABELS["public"]),
                        "tolerations": [toleration("public")],
                    },
                    "cores": {"request": SCHEDULER_CORES, "limit": SCHEDULER_CORES},
                    "memory": {
                        "request": f"{SCHEDULER_MEMORY_MIB}M",
                        "limit": f"{SCHEDULER_MEMORY_MIB}M",
                    },
                },
                "worker": {
                    "extraPodConfig": {
                        **no_identity,
                        "nodeSelector": {**PURPOSE_LABELS["dask"], POOL_LABEL: dask_key},
                        "tolerations": [toleration("dask")],
                    },
                },
            },
            "extraConfig": {
                "00-settings": "import json\n\n"
                f"PANGEO_BINDER_PUBLIC_DASK = json.loads({literal})\n",
                "10-options": source("public_gateway_options"),
            },
        },
        # Traefik inside the cluster only: the public proxy routes /services/dask-gateway.
        **gateway_core_pods(),
    }


def public_dask_hub_piece(context: HubContext, public: PublicBinder) -> dict[str, Any]:
    """What the public z2jh values need for the public gateway (`support.values.with_piece`
    merges it): the gateway as a hub service with its token, the servers' token scope to
    reach it, its client settings in the servers' environment, the servers', the proxy's and
    the hub's egress to its Traefik, and the hub's ingress from its API pod. Empty with Dask
    off."""
    if not public.dask.enabled:
        return {}
    access = f"access:services!service={PUBLIC_DASK_SERVICE}"
    traefik = f"{PUBLIC_DASK_TRAEFIK_SERVICE}.{context.namespace}"
    to_traefik = to_pods(PUBLIC_TRAEFIK_LABELS, TRAEFIK_PORT)
    return {
        "hub": {
            "services": {
                PUBLIC_DASK_SERVICE: {
                    "apiToken": context.tokens.service_tokens[PUBLIC_DASK_SERVICE],
                    "url": f"http://{PUBLIC_DASK_TRAEFIK_SERVICE}",
                    "display": False,
                }
            },
            "config": {
                # JupyterHub's `server` role plus the gateway; a token gets only what its
                # user holds, so the anonymous users' role holds it too.
                "KubeSpawner": {
                    "server_token_scopes": ["users:activity!user", "access:servers!server", access]
                }
            },
            "loadRoles": {
                "user": {
                    "description": "Anonymous users: their own server, and public Dask.",
                    "scopes": ["self", access],
                }
            },
            "networkPolicy": {
                # The hub checks its services' URLs (as the hub's own reaches its Traefik).
                "egress": [to_traefik],
                "ingress": [hub_ingress_from(PUBLIC_GATEWAY_API_LABELS)],
            },
        },
        "proxy": {"chp": {"networkPolicy": {"egress": [to_traefik]}}},
        "singleuser": {
            "extraEnv": {
                "DASK_GATEWAY__ADDRESS": f"http://{traefik}/services/{PUBLIC_DASK_SERVICE}",
                "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{traefik}:80",
                "DASK_GATEWAY__PUBLIC_ADDRESS": f"https://{public.domain}/services/"
                f"{PUBLIC_DASK_SERVICE}/",
                "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
                # Doubled braces survive KubeSpawner's formatting: the client fills the
                # notebook's own image, the only kind the options handler accepts.
                "DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE": "{{JUPYTER_IMAGE_SPEC}}",
            },
            "networkPolicy": {"egress": [to_traefik]},
        },
    }


def _selector(components: tuple[str, ...]) -> dict[str, Any]:
    return {
        "matchLabels": dict(INSTANCE),
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": list(components)}
        ],
    }


def public_dask_network_policies(namespace: str) -> list[dict[str, Any]]:
    """The public gateway's ways in and out (the namespace denies every egress otherwise).

    Schedulers and workers (user code) egress as public servers do: DNS, the internet on 80,
    443 and 9418 with no private or link-local address (no metadata server), plus each other
    and the gateway API; ingress only from each other, the public Traefik and (8788) the
    gateway API. The gateway's own pods take connections on 8000 from their namespace only,
    and reach DNS, the Kubernetes API, the public hub's API,
    each other's 8000 and the schedulers (8786, 8787, and the API port 8788 that scale and
    adapt go to)."""
    dask_pods = {"podSelector": _selector(DASK_POD_COMPONENTS)}
    scheduler_ports = [{"port": port, "protocol": "TCP"} for port in SCHEDULER_PORTS]
    scheduler_api = {"port": SCHEDULER_API_PORT, "protocol": "TCP"}
    clusters = {
        "podSelector": _selector(DASK_POD_COMPONENTS),
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [dask_pods]},
            {
                "from": [{"podSelector": {"matchLabels": PUBLIC_TRAEFIK_LABELS}}],
                "ports": scheduler_ports,
            },
            # Scale and adapt requests (dask_values.SCHEDULER_API_PORT says why).
            {
                "from": [{"podSelector": {"matchLabels": PUBLIC_GATEWAY_API_LABELS}}],
                "ports": [scheduler_api],
            },
        ],
        "egress": [
            {"to": [dask_pods]},
            to_pods(PUBLIC_GATEWAY_API_LABELS, GATEWAY_API_PORT),
            DNS_EGRESS,
            internet_egress(),
        ],
    }
    control = {
        "podSelector": _selector(("gateway", "controller", "traefik")),
        "policyTypes": ["Ingress", "Egress"],
        # Only the public namespace's own pods (its servers, hub and proxy, schedulers, each
        # other) reach the gateway, on its one port: no other hub's namespace does.
        "ingress": [
            {
                "from": [{"podSelector": {}}],
                "ports": [{"port": GATEWAY_API_PORT, "protocol": "TCP"}],
            }
        ],
        "egress": [
            DNS_EGRESS,
            KUBE_API_EGRESS,
            to_pods({"component": "hub"}, HUB_API_PORT),
            {
                "to": [{"podSelector": _selector(("gateway", "controller"))}],
                "ports": [{"port": GATEWAY_API_PORT, "protocol": "TCP"}],
            },
            {
                "to": [{"podSelector": _selector(("dask-scheduler",))}],
                "ports": [*scheduler_ports, scheduler_api],
            },
        ],
    }
    return [
        {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
        for name, spec in (("public-dask-clusters", clusters), ("public-dask-gateway", control))
    ]


def public_resource_quota(
    public: PublicBinder, pools: dict[str, NodePool], build_pool: str
) -> dict[str, Any]:
    """The namespace's ResourceQuota (sizes: the module's comment) and a LimitRange giving
    containers without requests small ones, which a quota on requests needs."""
    dask = public.dask
    daemons = pools[build_pool].max_nodes
    pods = (
        public.total_quota
        + DASK_CLUSTERS_IN_QUOTA * (dask.max_workers + 1)
        + PLATFORM[0]
        + BUILDS_IN_QUOTA
        + daemons
    )
    cpu = (
        public.total_quota * public.cpu / 2
        + DASK_CLUSTERS_IN_QUOTA * dask.max_cores
        + PLATFORM[1]
        + BUILDS_IN_QUOTA * BUILD_REQUEST[0]
        + daemons * DOCKER_DAEMON_REQUEST[0]
    )
    memory = (
        public.total_quota * public.memory_gb
        + DASK_CLUSTERS_IN_QUOTA * dask.max_memory_gb
        + PLATFORM[2]
        + BUILDS_IN_QUOTA * BUILD_REQUEST[1]
        + daemons * DOCKER_DAEMON_REQUEST[1]
    )
    return {
        "quota": {
            "metadata": {"name": "public-quota", "namespace": public.namespace},
            "spec": {
                "hard": {
                    "pods": str(pods),
                    "requests.cpu": f"{round(cpu * 1000)}m",
                    "requests.memory": f"{round(memory * 1024)}Mi",
                }
            },
        },
        "limit_range": {
            "metadata": {"name": "default-requests", "namespace": public.namespace},
            "spec": {"limits": [{"type": "Container", "defaultRequest": dict(DEFAULT_REQUEST)}]},
        },
    }
