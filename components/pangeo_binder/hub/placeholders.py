"""Warm capacity: z2jh user placeholders on the default user pool.

User pools scale from zero, so the first user of a node waits for it to boot and pull the
image. `clouds.<cloud>.hub.userPlaceholders` keeps that many pods of the default profile's
default size on the default user pool, at the lowest priority: a real server preempts one
at once on a node that is already up, and the evicted placeholder asks the autoscaler for the
next node in the background. The nodes they hold are paid while idle: the config check caps
them at the pool's `maxNodes`, and the plan prices them (`plan/cost.py` reads the annotation
from the release's values with `scheduling.nodes_held`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pangeo_binder.config_shared import CloudHub, NodePool
from pangeo_binder.hub.binderhub_values import restricted_pod_context
from pangeo_binder.hub.config import HubSettings
from pangeo_binder.hub.profiles import is_privileged, node_sizes, shared_pool, user_node
from pangeo_binder.machines import Cloud
from pangeo_binder.scheduling import PER_NODE_ANNOTATION, POOL_LABEL, nodes_held

# The annotation and its reader live below the hub (`scheduling.py`), where the plan's cost
# model reads them too; still importable from here.
__all__ = [
    "PER_NODE_ANNOTATION",
    "Placeholders",
    "default_user_pool",
    "nodes_held",
    "placeholders",
    "user_placeholder_values",
]


@dataclass(frozen=True)
class Placeholders:
    """How many placeholders, where, of what size, and how many nodes they keep up."""

    pool: str
    count: int
    cpu: float
    memory_mib: int
    per_node: int

    @property
    def nodes(self) -> int:
        """Nodes the placeholders hold when no user is on them (the user scheduler packs)."""
        return math.ceil(self.count / self.per_node) if self.count else 0


def default_user_pool(pools: dict[str, NodePool], settings: HubSettings, cloud: Cloud) -> str:
    """The pool of the spawn form's default profile (profile_list's first: ordinary pools
    before GPU and high-memory ones), where most servers start."""
    users = [key for key, pool in pools.items() if pool.purpose == "user"]
    return sorted(users, key=lambda key: is_privileged(pools[key], settings, cloud))[0]


def placeholders(
    cloud: Cloud, pools: dict[str, NodePool], settings: HubSettings, cloud_hub: CloudHub
) -> Placeholders:
    """The placeholders of one cloud, each the default (smallest) size of the default pool."""
    key = default_user_pool(pools, settings, cloud)
    node = user_node(cloud, pools, settings, key, shared_pool(pools, settings, cloud))
    size = node_sizes(node)[0]
    per_node = max(
        1,
        min(
            int(node.cpu // size.cpu_guarantee),
            int(node.memory_gib * 1024 // size.memory_mib),
        ),
    )
    return Placeholders(
        key, cloud_hub.user_placeholders, size.cpu_guarantee, size.memory_mib, per_node
    )


def user_placeholder_values(
    cloud: Cloud, pools: dict[str, NodePool], settings: HubSettings, cloud_hub: CloudHub
) -> dict[str, Any]:
    """z2jh's `scheduling.userPlaceholder`: pods sized like a default server, pinned to the
    default pool (the placeholders otherwise follow `singleuser.nodeSelector`, which this hub
    leaves empty, and could wake any user pool). Sized and pinned with no replicas too: the
    chart renders the StatefulSet either way (with the servers' memory guarantee only), and
    a `kubectl scale` of it, z2jh's own way to try the autoscaler, must start real ones."""
    held = placeholders(cloud, pools, settings, cloud_hub)
    memory = f"{held.memory_mib}M"
    return {
        "enabled": True,
        "replicas": held.count,
        "resources": {
            "requests": {"cpu": held.cpu, "memory": memory},
            "limits": {"memory": memory},
        },
        # Merged into the chart's (nobody, no capabilities, RuntimeDefault): `pause` writes
        # nothing, and the pod, which the chart gives no context, gets the same defaults.
        "containerSecurityContext": {"readOnlyRootFilesystem": True},
        "extraPodSpec": {
            "nodeSelector": {POOL_LABEL: held.pool},
            "securityContext": restricted_pod_context(),
        },
        "annotations": {PER_NODE_ANNOTATION: str(held.per_node)},
    }
