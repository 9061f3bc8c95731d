"""The spawn form's choices, cut from the cluster's user pools: one profile per pool, sizes
that fit its nodes, and the image menu.

A pure function of the config: tests read its output, and the hub's `profile_list` filter
(`incluster/profile_filter.py`) hides each profile's `allowed_groups` from everyone else.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pangeo_binder.config_shared import CloudHub, NodePool
from pangeo_binder.hub.config import IMAGE_REF, HubSettings, images_for
from pangeo_binder.hub.context import DOCKER_DAEMON_REQUEST, SCHEDULER_REQUEST, runs_dask
from pangeo_binder.hub.incluster.image_cache import cached_image
from pangeo_binder.machines import Allocatable, Cloud, allocatable, shape
from pangeo_binder.scheduling import GPU_TOLERATION, POOL_LABEL, toleration

# Shares of a node offered per CPU pool, largest first, while a share keeps this much memory.
NODE_SHARES = (1, 2, 4, 8)
MIN_SHARE_MEMORY_GIB = 4.0
GPU_RESOURCE = "nvidia.com/gpu"
ALLOWED_GROUPS_KEY = "allowed_groups"


@dataclass(frozen=True)
class Size:
    """One resource choice: a share of a node (and, on GPU pools, its GPUs)."""

    slug: str
    display_name: str
    cpu_guarantee: float
    cpu_limit: float
    memory_mib: int
    gpus: int = 0

    def override(self) -> dict[str, Any]:
        """KubeSpawner settings for this size. Memory limit = guarantee: a pod never uses
        memory its neighbours were promised. CPU may burst to the whole node when it is idle."""
        override: dict[str, Any] = {
            "cpu_guarantee": self.cpu_guarantee,
            "cpu_limit": self.cpu_limit,
            "mem_guarantee": f"{self.memory_mib}M",
            "mem_limit": f"{self.memory_mib}M",
        }
        if self.gpus:
            override["extra_resource_limits"] = {GPU_RESOURCE: str(self.gpus)}
            override["extra_resource_guarantees"] = {GPU_RESOURCE: str(self.gpus)}
        return override


def node_sizes(node: Allocatable, gpus: int = 0) -> list[Size]:
    """Shares of one node, smallest first. GPU nodes are shared by GPU (1 of 2 GPUs gets half
    the node); CPU nodes by halves while a share keeps MIN_SHARE_MEMORY_GIB."""
    sizes: list[Size] = []
    if gpus:
        shares = [gpus // count for count in (1, 2, 4, 8) if count <= gpus and gpus % count == 0]
    else:
        shares = [s for s in NODE_SHARES if node.memory_gib / s >= MIN_SHARE_MEMORY_GIB] or [1]
    for share in sorted(set(shares), reverse=True):
        cpu = round(node.cpu / share, 3)
        memory_mib = int(node.memory_gib * 1024 / share)
        share_gpus = gpus // share if gpus else 0
        label = f"{memory_mib / 1024:.1f} GiB RAM, {cpu:g} CPU"
        if share_gpus:
            label += f", {share_gpus} GPU"
        sizes.append(
            Size(
                # Zero-padded: Helm writes the values with map keys sorted, so the hub lists
                # the choices in slug order, which must be the order of size.
                slug=f"mem-{memory_mib // 1024:04d}g" + (f"-gpu{share_gpus}" if share_gpus else ""),
                display_name=label if share > 1 else f"{label} (a whole node)",
                cpu_guarantee=cpu,
                cpu_limit=node.cpu,
                memory_mib=memory_mib,
                gpus=share_gpus,
            )
        )
    return sizes


def is_privileged(pool: NodePool, settings: HubSettings, cloud: Cloud) -> bool:
    """GPU and high-memory pools cost the most; they are for privileged groups by default."""
    node = shape(cloud, pool.machine_type)
    return pool.gpu is not None or (node is not None and node.memory_gib > settings.high_memory_gb)


def allowed_groups(
    key: str, pool: NodePool, settings: HubSettings, cloud_hub: CloudHub, cloud: Cloud
) -> list[str] | None:
    """Who may use a pool: None for everyone, else the groups (admins always may)."""
    if key in cloud_hub.pool_groups:
        return list(cloud_hub.pool_groups[key])
    if is_privileged(pool, settings, cloud):
        return list(settings.privileged_groups)
    return None


def shared_pool(pools: dict[str, NodePool], settings: HubSettings, cloud: Cloud) -> str:
    """The ordinary user pool that also runs Dask schedulers and image builds: on-demand (a
    lost scheduler loses its cluster), and not a GPU or high-memory one."""
    ordinary = [
        key
        for key, pool in pools.items()
        if pool.purpose == "user" and not pool.spot and not is_privileged(pool, settings, cloud)
    ]
    users = [key for key, pool in pools.items() if pool.purpose == "user"]
    return (ordinary or users)[0]


def shared_reserve(pools: dict[str, NodePool], settings: HubSettings) -> Allocatable:
    """Per node of the shared pool, what schedulers and the docker daemon may take."""
    cpu = memory = 0.0
    if runs_dask(pools):
        cpu, memory = cpu + SCHEDULER_REQUEST[0], memory + SCHEDULER_REQUEST[1]
    if settings.binder.enabled:
        cpu, memory = cpu + DOCKER_DAEMON_REQUEST[0], memory + DOCKER_DAEMON_REQUEST[1]
    return Allocatable(cpu, memory)


def image_option(settings: HubSettings, *, gpu: bool) -> dict[str, Any]:
    """The image menu for one kind of machine, plus bring-your-own with a tag or digest."""
    kind = "gpu" if gpu else "cpu"
    images = images_for(settings.images, kind)
    choices = {
        slug: {
            "display_name": image.display_name,
            "default": index == 0,
            "kubespawner_override": {"image": image.image},
        }
        for index, (slug, image) in enumerate(images.items())
    }
    option: dict[str, Any] = {
        "display_name": "Image",
        "choices": choices,
        "unlisted_choice": {
            "enabled": True,
            "display_name": "Your own image",
            "display_name_in_choices": "Specify an existing image",
            "validation_regex": IMAGE_REF,
            "validation_message": "Give a public image with a tag or digest, such as "
            "quay.io/pangeo/pangeo-notebook:2026.06.04",
            "kubespawner_override": {"image": "{value}"},
        },
    }
    if settings.binder.enabled:
        # jupyterhub-fancy-profiles shows "Build your own image" next to the menu: BinderHub
        # builds the repository, and the built image comes back as the unlisted choice's
        # value (so it must pass validation_regex too: BinderHub names it
        # <image_prefix><escaped slug>-<hash>:<ref>, lower case).
        option["dynamic_image_building"] = {"enabled": True}
    return option


def pool_override(key: str, gpus: int) -> dict[str, Any]:
    """What a profile sets on the pod: its pool, and on GPU pools the GPU taint's toleration.
    An override replaces KubeSpawner's whole `tolerations` list, so the user nodes' own
    toleration is repeated there."""
    override: dict[str, Any] = {"node_selector": {POOL_LABEL: key}}
    if gpus:
        override["tolerations"] = [toleration("user"), GPU_TOLERATION]
    return override


def user_node(
    cloud: Cloud, pools: dict[str, NodePool], settings: HubSettings, key: str, shared: str
) -> Allocatable:
    """What servers may take of one node of user pool `key`: its allocatable, less what the
    shared pool keeps for schedulers and the docker daemon."""
    pool = pools[key]
    node = allocatable(cloud, pool.machine_type)
    if node is None:  # the config check refuses user pools of unknown shape
        raise ValueError(f"no machine shape for {pool.machine_type!r} (pool {key})")
    if key == shared:
        reserve = shared_reserve(pools, settings)
        node = Allocatable(
            round(node.cpu - reserve.cpu, 3), round(node.memory_gib - reserve.memory_gib, 3)
        )
    return node


def profile_list(
    cloud: Cloud, pools: dict[str, NodePool], settings: HubSettings, cloud_hub: CloudHub
) -> list[dict[str, Any]]:
    """One profile per user pool, ordinary pools first (the first one is the default)."""
    profiles: list[dict[str, Any]] = []
    user_pools = [(key, pool) for key, pool in pools.items() if pool.purpose == "user"]
    user_pools.sort(key=lambda item: is_privileged(item[1], settings, cloud))
    shared = shared_pool(pools, settings, cloud)
    for key, pool in user_pools:
        node = user_node(cloud, pools, settings, key, shared)
        gpus = pool.gpu.count if pool.gpu else 0
        sizes = node_sizes(node, gpus)
        nominal = shape(cloud, pool.machine_type)
        hardware = f"{pool.machine_type}" + (f" with {gpus} x {pool.gpu.type}" if pool.gpu else "")
        profile: dict[str, Any] = {
            "display_name": f"{'GPU' if gpus else 'CPU'}: {key}",
            "slug": key,
            "description": f"{hardware} nodes ({nominal.vcpus:g} CPU, "  # type: ignore[union-attr]
            f"{nominal.memory_gib:g} GiB each); pick a share below.",  # type: ignore[union-attr]
            "default": not profiles,
            "kubespawner_override": pool_override(key, gpus),
            "profile_options": {
                "resources": {
                    "display_name": "Resources",
                    "choices": {
                        size.slug: {
                            "display_name": size.display_name,
                            "default": index == 0,
                            "kubespawner_override": size.override(),
                        }
                        for index, size in enumerate(sizes)
                    },
                },
                "image": image_option(settings, gpu=bool(gpus)),
            },
        }
        groups = allowed_groups(key, pool, settings, cloud_hub, cloud)
        if groups is not None:
            profile[ALLOWED_GROUPS_KEY] = groups
        profiles.append(profile)
    return profiles


def cached_profile_list(
    profiles: list[dict[str, Any]], cache: dict[str, str]
) -> list[dict[str, Any]]:
    """The profile list with every menu image referenced through the in-region cache (a copy;
    no cache: the list unchanged). The form shows display names, not references, and the hub
    hands notebooks the upstream name (incluster/image_cache.py), so users see no change. The
    user's own image (`{value}`) is rewritten when the pod is made, not here."""
    if not cache:
        return profiles
    cached = copy.deepcopy(profiles)
    for profile in cached:
        for option in profile.get("profile_options", {}).values():
            for choice in option.get("choices", {}).values():
                override = choice.get("kubespawner_override", {})
                if "image" in override:
                    override["image"] = cached_image(override["image"], cache)
    return cached
