"""Runs inside the dask-gateway pod, as the last `gateway.extraConfig` entry: every scheduler and
worker pod of a cluster is annotated `hub.jupyter.org/username` with the user who started it, so
kube-state-metrics (kube_pod_annotations) and the cost dashboard attribute it to that user.

It wraps whatever `c.Backend.cluster_options` the earlier entries set (an Options object, or a
callable of the user returning one), keeping their handler and adding the annotations to the
cluster configuration it returns.
"""

from typing import Any

USERNAME_ANNOTATION = "hub.jupyter.org/username"
ANNOTATION_KEYS = ("scheduler_extra_pod_annotations", "worker_extra_pod_annotations")


def annotate(config: Any, user: Any) -> dict[str, Any]:
    """The cluster configuration with the user's name in both pods' annotations."""
    annotated = dict(config)
    for key in ANNOTATION_KEYS:
        annotated[key] = {**(annotated.get(key) or {}), USERNAME_ANNOTATION: user.name}
    return annotated


def with_user(options: Any) -> Any:
    """`options` (an Options) with its handler's result annotated; returned for chaining."""
    inner = options.handler  # normalised by Options to (options, user), or None

    def handler(chosen: Any, user: Any) -> dict[str, Any]:
        return annotate(inner(chosen, user) if inner is not None else chosen, user)

    options.handler = handler
    return options


def wrap_cluster_options(cluster_options: Any) -> Any:
    """The gateway's `cluster_options`, annotated: a callable of the user stays one."""
    if hasattr(cluster_options, "handler"):
        return with_user(cluster_options)
    if callable(cluster_options):
        return lambda user: with_user(cluster_options(user))
    raise TypeError(f"c.Backend.cluster_options is {type(cluster_options).__name__}")


if "c" in globals():  # executed as gateway.extraConfig, after the options handler's entry
    c.Backend.cluster_options = wrap_cluster_options(c.Backend.cluster_options)  # noqa: F821
