"""Values for the `dask-gateway` chart: a pure function of the config and `HubContext`.

Behind JupyterHub auth (the gateway is the hub service `dask-gateway` and accepts only tokens
with access to it); Traefik stays inside the cluster (the hub's proxy routes
/services/dask-gateway to it); workers on the dask pool, schedulers on an ordinary user pool
(never spot: a lost scheduler loses the whole cluster); everything runs as `user-sa`.
"""

from __future__ import annotations

import json
from typing import Any

from pangeo_binder.config_shared import NodePool
from pangeo_binder.hub.config import USER_SERVICE_ACCOUNT, HubSettings
from pangeo_binder.hub.context import (
    DASK_GATEWAY_RELEASE,
    DASK_GATEWAY_SERVICE,
    DASK_LABELS,
    DASK_TRAEFIK_LABELS,
    DNS_EGRESS,
    PRIVATE_AND_LINK_LOCAL,
    SCHEDULER_REQUEST,
    HubContext,
    egress_outside,
    metadata_egress,
)
from pangeo_binder.hub.image_cache import (
    gateway_extra_config_image_cache,
    gateway_settings_image_cache,
)
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.profiles import shared_pool
from pangeo_binder.machines import Allocatable, Cloud, allocatable
from pangeo_binder.scheduling import POOL_LABEL, PURPOSE_LABELS, toleration

# Worker sizes as shares of a dask node, smallest first; the largest two are privileged.
WORKER_SHARES = (8, 4, 2, 1)
PRIVILEGED_SHARES = (2, 1)
CORE_SELECTOR = PURPOSE_LABELS["core"]


def worker_sizes(node: Allocatable) -> list[dict[str, Any]]:
    """Worker sizes cut from one dask node's allocatable CPU and memory."""
    sizes = []
    for share in WORKER_SHARES:
        cores = round(node.cpu / share, 3)
        memory_mib = int(node.memory_gib * 1024 / share)
        sizes.append(
            {
                "name": f"{memory_mib // 1024}GiB-{cores:g}cpu",
                "cores": cores,
                "coresLimit": cores,
                "memoryMib": memory_mib,
                "privileged": share in PRIVILEGED_SHARES,
            }
        )
    return sizes


def gateway_settings(
    context: HubContext, settings: HubSettings, dask_pool: NodePool
) -> dict[str, Any]:
    """What the options handler (incluster/gateway_options.py) reads, as plain data."""
    node = allocatable(context.cloud, dask_pool.machine_type)
    if node is None:  # the config check refuses dask pools of unknown shape
        raise ValueError(f"no machine shape for {dask_pool.machine_type!r}")
    default_image = settings.default_image()
    return {
        "workerSizes": worker_sizes(node),
        "privilegedGroups": list(settings.privileged_groups),
        "defaultImage": default_image,
        "scratchBucket": context.scratch_bucket,
        "persistentBucket": context.persistent_bucket,
        "publicBucket": context.public_bucket,
        "idleTimeoutSeconds": settings.dask.idle_timeout_minutes * 60,
        "maxWorkers": settings.dask.max_workers,
        "maxCores": settings.dask.max_cores,
        "maxMemoryGib": settings.dask.max_memory_gb,
        **gateway_settings_image_cache(context.image_cache),
    }


# Requests (and memory limits) of the gateway's pods on core nodes; the chart leaves them
# empty (BestEffort). No upstream figures; estimates for an API server, a controller and a
# Traefik that are idle most of the time. Checked against the core node in
# tests/test_core_fit.py.
GATEWAY_RESOURCES = {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
CONTROLLER_RESOURCES = {
    "requests": {"cpu": "20m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
TRAEFIK_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def gateway_core_pods() -> dict[str, Any]:
    """The chart's `controller` and `traefik` on the core pool with their requests. Traefik is
    inside the cluster only: the hub's proxy is the way in (the chart's default would be a
    second load balancer). The hub's gateway and the public Binder's share it."""
    return {
        "controller": {"nodeSelector": CORE_SELECTOR, "resources": CONTROLLER_RESOURCES},
        "traefik": {
            "service": {"type": "ClusterIP"},
            "nodeSelector": CORE_SELECTOR,
            "resources": TRAEFIK_RESOURCES,
        },
    }


def dask_gateway_values(
    context: HubContext, settings: HubSettings, pools: dict[str, NodePool]
) -> dict[str, Any]:
    """The whole values tree of the dask-gateway release for one cloud."""
    dask_key, dask_pool = next((k, p) for k, p in pools.items() if p.purpose == "dask")
    scheduler_key = shared_pool(pools, settings, context.cloud)
    handler_settings = gateway_settings(context, settings, dask_pool)
    literal = json.dumps(json.dumps(handler_settings))
    settings_entry = f"import json\n\nPANGEO_BINDER_DASK = json.loads({literal})\n"
    return {
        "fullnameOverride": DASK_GATEWAY_RELEASE,
        "gateway": {
            "prefix": f"/services/{DASK_GATEWAY_SERVICE}",
            "auth": {
                "type": "jupyterhub",
                "jupyterhub": {
                    # The token is read from z2jh's `hub` Secret (the chart's default source),
                    # where the hub's values put the generated one.
                    "apiUrl": f"http://hub.{context.namespace}:8081/hub/api",
                    "jupyterhubServiceName": DASK_GATEWAY_SERVICE,
                },
            },
            "nodeSelector": CORE_SELECTOR,
            "resources": GATEWAY_RESOURCES,
            "backend": {
                "scheduler": {
                    "extraPodConfig": {
                        "serviceAccountName": USER_SERVICE_ACCOUNT,
                        "nodeSelector": {**PURPOSE_LABELS["user"], POOL_LABEL: scheduler_key},
                        "tolerations": [toleration("user")],
                    },
                    "cores": {"request": SCHEDULER_REQUEST[0], "limit": 2},
                    "memory": {"request": f"{int(SCHEDULER_REQUEST[1] * 1024)}M", "limit": "4G"},
                },
                "worker": {
                    "extraPodConfig": {
                        "serviceAccountName": USER_SERVICE_ACCOUNT,
                        "nodeSelector": {**PURPOSE_LABELS["dask"], POOL_LABEL: dask_key},
                        "tolerations": [toleration("dask")],
                    },
                },
            },
            "extraConfig": {
                "00-settings": settings_entry,
                # The image rewrite the options handler applies to workers and schedulers.
                **gateway_extra_config_image_cache(context.image_cache),
                "10-options": source("gateway_options"),
            },
        },
        **gateway_core_pods(),
    }


# What the gateway's Kubernetes backend labels cluster pods with (dask_gateway_server
# 2026.3.0, backends/kubernetes/controller.py `get_labels`): the gateway instance (the chart's
# fullname, which fullnameOverride pins) and the component. Schedulers listen on 8786 (TLS)
# and serve their dashboard on 8787; workers on ports of their own choosing.
DASK_POD_COMPONENTS = ("dask-scheduler", "dask-worker")
SCHEDULER_PORTS = (8786, 8787)
# The scheduler's own API (`--dg-api-address :8788`, the scheduler Service's `api` port in
# controller.py): the gateway API pod sends every scale and adapt request there
# (backends/kubernetes/backend.py builds `http://<scheduler-service>.<ns>:8788`, and
# backends/base.py `forward_message_to_scheduler` posts to its /api/comm and, once its
# retries fail, marks the cluster failed and stops it). dask_gateway_server 2026.3.0.
SCHEDULER_API_PORT = 8788
GATEWAY_API_PORT = 8000  # schedulers report to the gateway API (DASK_GATEWAY_API_URL)
# The gateway API pod (the chart's templates/gateway/deployment.yaml: `dask-gateway.labels`,
# whose `gateway.dask.org/instance` is the fullname, plus the component).
GATEWAY_API_LABELS = {
    **DASK_LABELS,
    "gateway.dask.org/instance": DASK_GATEWAY_RELEASE,
    "app.kubernetes.io/component": "gateway",
}
PRIVATE_RANGES = PRIVATE_AND_LINK_LOCAL


def dask_pod_selector() -> dict[str, Any]:
    """Every scheduler and worker of this gateway, and nothing else of the chart's."""
    return {
        "matchLabels": {"gateway.dask.org/instance": DASK_GATEWAY_RELEASE},
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": list(DASK_POD_COMPONENTS),
            }
        ],
    }


def dask_network_policy(cloud: Cloud, namespace: str) -> dict[str, Any]:
    """The NetworkPolicy of Dask schedulers and workers (the dask-gateway chart ships none).

    User code runs on workers: without a policy it would escape the notebook's egress limits
    and reach in-cluster services and other users' dashboards. Allowed: scheduler <-> worker
    and worker <-> worker (any port: workers pick theirs), notebooks -> scheduler through
    Traefik (the clients' proxy address; the notebooks' own policy allows only Traefik), the
    gateway API -> the schedulers' API port (scale and adapt; without it the first
    `cluster.scale()` makes the gateway stop the cluster),
    schedulers -> the gateway API, DNS (to kube-dns only), and addresses outside the private
    and link-local ranges. On GKE also the metadata server, which workload identity (bucket
    access) needs.
    """
    dask_pods = {"podSelector": dask_pod_selector()}
    tcp = [{"port": port, "protocol": "TCP"} for port in SCHEDULER_PORTS]
    egress: list[dict[str, Any]] = [
        {"to": [dask_pods]},
        {
            "to": [
                {
                    "podSelector": {
                        "matchLabels": {**DASK_LABELS, "app.kubernetes.io/component": "gateway"}
                    }
                }
            ],
            "ports": [{"port": GATEWAY_API_PORT, "protocol": "TCP"}],
        },
        DNS_EGRESS,
        # Written without `except` (context.egress_outside says why).
        egress_outside(PRIVATE_RANGES),
    ]
    egress += metadata_egress(cloud)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "dask-clusters", "namespace": namespace},
        "spec": {
            "podSelector": dask_pod_selector(),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [dask_pods]},
                {"from": [{"podSelector": {"matchLabels": DASK_TRAEFIK_LABELS}}], "ports": tcp},
                {
                    "from": [{"podSelector": {"matchLabels": dict(GATEWAY_API_LABELS)}}],
                    "ports": [{"port": SCHEDULER_API_PORT, "protocol": "TCP"}],
                },
            ],
            "egress": egress,
        },
    }
