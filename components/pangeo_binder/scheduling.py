"""Node labels and taints per pool purpose, as the JupyterHub and Dask Gateway charts expect them.

Cloud-neutral: GKE and EKS pools both take their labels and taints from here, so a profile or a
Dask worker spec selects the same nodes on either cloud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pangeo_binder.config_shared import NodePool

PURPOSE_LABELS: dict[str, dict[str, str]] = {
    "core": {"hub.jupyter.org/node-purpose": "core"},
    # Dask schedulers run on user nodes, never on spot workers: a lost scheduler loses the
    # whole cluster, a lost worker is recomputed.
    "user": {"hub.jupyter.org/node-purpose": "user", "k8s.dask.org/node-purpose": "scheduler"},
    "dask": {"k8s.dask.org/node-purpose": "worker"},
    # The public Binder's servers: user nodes to z2jh (its matchNodePurpose), marked public,
    # and tainted so that nothing else (the hub's users, its image puller) lands there.
    "public": {"hub.jupyter.org/node-purpose": "user", "pangeo-binder.io/node-purpose": "public"},
}

# The '/' form: GKE and EKS both accept it, and z2jh and dask-gateway tolerate it.
PURPOSE_TAINTS: dict[str, tuple[str, str] | None] = {
    "core": None,
    "user": ("hub.jupyter.org/dedicated", "user"),
    "dask": ("k8s.dask.org/dedicated", "worker"),
    "public": ("pangeo-binder.io/dedicated", "public"),
}

GPU_TAINT = ("nvidia.com/gpu", "present")

# Tolerates the GPU nodes' taint. Only GPU profiles carry it: a toleration on every user pod
# (`singleuser.extraTolerations`) is inherited by z2jh's continuous image puller, which would
# then pull the CPU images on every new GPU node while a user waits for theirs.
GPU_TOLERATION = {"key": GPU_TAINT[0], "operator": "Exists", "effect": "NoSchedule"}


def toleration(purpose: str) -> dict[str, str]:
    """The pod toleration of a purpose's taint (`user`, `dask`)."""
    taint = PURPOSE_TAINTS[purpose]
    if taint is None:
        raise ValueError(f"{purpose} nodes have no taint to tolerate")
    key, value = taint
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}


# Lets a profile pick one pool (highmem, gpu) among the user pools.
POOL_LABEL = "pangeo-binder.io/pool"

# On z2jh's user placeholder pods (`hub/placeholders.py`): how many fit on one node of their
# pool. The plan's cost model (`plan/cost.py`) reads it back, so it lives here, below both.
PER_NODE_ANNOTATION = "pangeo-binder.io/placeholders-per-node"


def nodes_held(placeholder: dict[str, Any]) -> tuple[str, int] | None:
    """(pool, nodes) that a release's `scheduling.userPlaceholder` values keep up; None when
    they hold nothing this program can attribute to a pool."""
    count = int(placeholder.get("replicas") or 0)
    pool = ((placeholder.get("extraPodSpec") or {}).get("nodeSelector") or {}).get(POOL_LABEL)
    per_node = int((placeholder.get("annotations") or {}).get(PER_NODE_ANNOTATION) or 0)
    if not placeholder.get("enabled", True) or not count or not pool or per_node < 1:
        return None
    return pool, math.ceil(count / per_node)


@dataclass(frozen=True)
class Taint:
    """A Kubernetes taint; `effect` in Kubernetes spelling (NoSchedule)."""

    key: str
    value: str
    effect: str = "NoSchedule"

    @property
    def upper_effect(self) -> str:
        """The effect as GKE and EKS APIs spell it (NO_SCHEDULE)."""
        return "".join(f"_{c}" if c.isupper() else c for c in self.effect).lstrip("_").upper()


def node_labels(key: str, pool: NodePool) -> dict[str, str]:
    """Labels every node of the pool carries."""
    return {**PURPOSE_LABELS[pool.purpose], POOL_LABEL: key}


def node_taints(pool: NodePool, *, taint_gpus: bool) -> list[Taint]:
    """Taints keeping other work off the pool.

    `taint_gpus`: add `nvidia.com/gpu=present:NoSchedule` on GPU pools. Both clouds pass True:
    EKS never taints GPU nodes, and GKE does so only when a GPU pool joins a cluster that
    already has a non-GPU pool, which is not the case when every pool is created together.
    """
    taints = []
    purpose_taint = PURPOSE_TAINTS[pool.purpose]
    if purpose_taint:
        taints.append(Taint(*purpose_taint))
    if pool.gpu and taint_gpus:
        taints.append(Taint(*GPU_TAINT))
    return taints
