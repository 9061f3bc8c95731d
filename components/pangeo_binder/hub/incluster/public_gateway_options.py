"""The public Dask Gateway's extraConfig: cluster options for anonymous users.

Executed by the gateway's dask_gateway_config.py (which defines `c`) after an entry that sets
`PANGEO_BINDER_PUBLIC_DASK` (see `pangeo_binder/hub/public_dask_values.py`); imported by the
test suite. Not gateway_options.py: an anonymous user has no buckets, must not pick a larger
worker or set environment variables, and may run only images the public BinderHub built (the
rule the public hub's spawner applies to servers). So there is one worker size, the image
is the notebook's own (sent by the client as DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE) and must
start with the public image prefix, and the per-cluster caps are fixed.

The chart appends this text to its own config file, so it has no `from __future__` import.
"""

from typing import Any


def cluster_config(settings: dict[str, Any], options: dict[str, Any], user: Any) -> dict[str, Any]:
    """Cluster config overrides for a validated request. Refuses any image outside the public
    prefix: a notebook's token must not start workers from an arbitrary image."""
    image = options["image"]
    prefix = settings["imagePrefix"]
    if not prefix or not image.startswith(prefix):
        raise ValueError(
            f"image {image!r} was not built by this Binder; public Dask clusters run the "
            "notebook's own image"
        )
    size = settings["workerSize"]
    return {
        "image": image,
        "worker_cores": size["cores"],
        "worker_cores_limit": size["cores"],
        "worker_memory": f"{size['memoryMib']}M",
        "worker_memory_limit": f"{size['memoryMib']}M",
        "scheduler_cores": settings["schedulerCores"],
        "scheduler_cores_limit": settings["schedulerCores"],
        "scheduler_memory": f"{settings['schedulerMemoryMib']}M",
        "scheduler_memory_limit": f"{settings['schedulerMemoryMib']}M",
        "idle_timeout": settings["idleTimeoutSeconds"],
        "cluster_max_workers": settings["maxWorkers"],
        "cluster_max_cores": settings["maxCores"],
        "cluster_max_memory": f"{settings['maxMemoryGib']}G",
    }


def make_cluster_options(settings: dict[str, Any]):
    """`c.Backend.cluster_options`: the one worker size and the image, nothing else."""
    from dask_gateway_server.options import Options, Select, String

    size = settings["workerSize"]["name"]
    return Options(
        Select("worker_size", [size], default=size, label="Worker size"),
        String("image", default="", label="Image (the notebook's own)"),
        handler=lambda options, user: cluster_config(settings, options, user),
    )


if "c" in globals() and "PANGEO_BINDER_PUBLIC_DASK" in globals():  # executed as extraConfig
    c.Backend.cluster_options = make_cluster_options(  # type: ignore[name-defined]  # noqa: F821
        PANGEO_BINDER_PUBLIC_DASK  # type: ignore[name-defined]  # noqa: F821
    )
