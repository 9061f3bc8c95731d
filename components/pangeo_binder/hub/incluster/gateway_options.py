"""Dask Gateway extraConfig: the options users pick a cluster with, per user.

Executed by the gateway's dask_gateway_config.py (which defines `c`) after an entry that sets
`PANGEO_BINDER_DASK` (see `pangeo_binder/hub/dask_values.py`); imported by the test suite.
Worker sizes are cut from the dask pool's nodes; the largest are for privileged groups. The
image defaults to the one the user's notebook runs (`JUPYTER_IMAGE_SPEC`, sent by the client
through DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE), so workers have the same libraries.

The chart appends this text to its own config file, so it has no `from __future__` import
(that is only legal at the top of a file).
"""

from typing import Any


def sizes_for(settings: dict[str, Any], groups: set[str], admin: bool) -> list[dict[str, Any]]:
    """Worker sizes this user may pick, smallest first."""
    privileged = admin or bool(groups.intersection(settings["privilegedGroups"]))
    return [size for size in settings["workerSizes"] if privileged or not size["privileged"]]


def cluster_config(settings: dict[str, Any], options: dict[str, Any], user: Any) -> dict[str, Any]:
    """Cluster config overrides for validated options. Refuses a size the user may not use
    (the option list is already per user; this holds if the list and the request disagree)."""
    groups = set(user.groups)
    sizes = {size["name"]: size for size in sizes_for(settings, groups, bool(user.admin))}
    if options["worker_size"] not in sizes:
        raise ValueError(
            f"worker size {options['worker_size']!r} is not available to {user.name}; "
            f"choose one of: {', '.join(sizes)}"
        )
    size = sizes[options["worker_size"]]
    environment = {
        "SCRATCH_BUCKET": f"{settings['scratchBucket']}/{user.name}",
        "PERSISTENT_BUCKET": f"{settings['persistentBucket']}/{user.name}",
    }
    if settings.get("publicBucket"):
        environment["PUBLIC_PERSISTENT_BUCKET"] = f"{settings['publicBucket']}/{user.name}"
    return {
        "image": options["image"] or settings["defaultImage"],
        "worker_cores": size["cores"],
        "worker_cores_limit": size["coresLimit"],
        "worker_memory": f"{size['memoryMib']}M",
        "worker_memory_limit": f"{size['memoryMib']}M",
        "environment": {**environment, **dict(options.get("environment") or {})},
        "idle_timeout": settings["idleTimeoutSeconds"],
        "cluster_max_workers": settings["maxWorkers"],
        "cluster_max_cores": settings["maxCores"],
        "cluster_max_memory": f"{settings['maxMemoryGib']}G",
    }


def make_cluster_options(settings: dict[str, Any]):
    """`c.Backend.cluster_options` as a callable of the user: the gateway builds the option
    list per user, so a user never sees a size they may not use."""
    from dask_gateway_server.options import Mapping, Options, Select, String

    def cluster_options(user: Any) -> Any:
        names = [size["name"] for size in sizes_for(settings, set(user.groups), user.admin)]
        return Options(
            Select("worker_size", names, default=names[0], label="Worker size"),
            String("image", default="", label="Image (empty: the notebook's own)"),
            Mapping("environment", {}, label="Environment variables"),
            handler=lambda options, user: cluster_config(settings, options, user),
        )

    return cluster_options


if "c" in globals() and "PANGEO_BINDER_DASK" in globals():  # executed as gateway.extraConfig
    c.Backend.cluster_options = make_cluster_options(PANGEO_BINDER_DASK)  # type: ignore[name-defined]  # noqa: F821
