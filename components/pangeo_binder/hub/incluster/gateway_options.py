"""Dask Gateway extraConfig: the options users pick a cluster with, per user.

Executed by the gateway's dask_gateway_config.py (which defines `c`) after an entry that sets
`PANGEO_BINDER_DASK` (see `pangeo_binder/hub/dask_values.py`); imported by the test suite.
Worker sizes are cut from the dask pool's nodes; the largest are for privileged groups. The
image defaults to the one the user's notebook runs (`JUPYTER_IMAGE_SPEC`, sent by the client
through DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE), so workers have the same libraries. Images are
pulled through the in-region cache (`imageCache` in the settings, `cached_image` from
image_cache.py, whose extraConfig entry comes before this one), as the notebook's is.

The chart appends this text to its own config file, so it has no `from __future__` import
(that is only legal at the top of a file).
"""

from collections.abc import Callable, Mapping
from typing import Any

# Rewrites an image reference through the cache mapping (image_cache.cached_image).
Rewrite = Callable[[str, Mapping[str, str]], str]


def sizes_for(settings: dict[str, Any], groups: set[str], admin: bool) -> list[dict[str, Any]]:
    """Worker sizes this user may pick, smallest first."""
    privileged = admin or bool(groups.intersection(settings["privilegedGroups"]))
    return [size for size in settings["workerSizes"] if privileged or not size["privileged"]]


def cluster_config(
    settings: dict[str, Any], options: dict[str, Any], user: Any, rewrite: Rewrite | None = None
) -> dict[str, Any]:
    """Cluster config overrides for validated options. Refuses a size the user may not use
    (the option list is already per user; this holds if the list and the request disagree).
    The image (the user's, else the default) goes through `rewrite` with the cache mapping."""
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
    image = options["image"] or settings["defaultImage"]
    cache = settings.get("imageCache") or {}
    if cache and rewrite is None:
        raise RuntimeError("imageCache is set but no rewrite was given (image_cache.py missing)")
    return {
        "image": rewrite(image, cache) if rewrite is not None and cache else image,
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


def make_cluster_options(settings: dict[str, Any], rewrite: Rewrite | None = None):
    """`c.Backend.cluster_options` as a callable of the user: the gateway builds the option
    list per user, so a user never sees a size they may not use. With `settings["imageCache"]`
    set, `rewrite` is required: a cache the workers silently bypass is refused at start."""
    if settings.get("imageCache") and rewrite is None:
        raise RuntimeError(
            "imageCache is set but image_cache.py's cached_image was not given: add its "
            "extraConfig entry before gateway_options"
        )
    from dask_gateway_server.options import Mapping as MappingOption
    from dask_gateway_server.options import Options, Select, String

    def cluster_options(user: Any) -> Any:
        names = [size["name"] for size in sizes_for(settings, set(user.groups), user.admin)]
        return Options(
            Select("worker_size", names, default=names[0], label="Worker size"),
            String("image", default="", label="Image (empty: the notebook's own)"),
            MappingOption("environment", {}, label="Environment variables"),
            handler=lambda options, user: cluster_config(settings, options, user, rewrite),
        )

    return cluster_options


if "c" in globals() and "PANGEO_BINDER_DASK" in globals():  # executed as gateway.extraConfig
    c.Backend.cluster_options = make_cluster_options(  # type: ignore[name-defined]  # noqa: F821
        PANGEO_BINDER_DASK,  # type: ignore[name-defined]  # noqa: F821
        globals().get("cached_image"),  # defined by the image_cache entry, when shipped
    )
