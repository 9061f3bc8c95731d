"""Images through the in-region cache: the same rewrite for the hub and the Dask gateway.

User pools scale from zero, so a user's wait is a node's boot plus the image's pull; a
multi-GB image pulled from the internet is most of it. The cloud layer fronts public
registries with a cache in the cluster's region (`CloudOutputs.image_cache`: upstream host ->
cache prefix), and this module points pods at it:

- `cached_image` rewrites one reference: `quay.io/...`, `ghcr.io/...`, `docker.io/...` and
  bare Docker Hub names (`python:3.12` -> `<docker.io prefix>/library/python:3.12`) become
  the cache's name of the same image; tags and digests are kept. Registries the cache does
  not front (any other host, the stack's own registry, the cache itself) are left alone, so
  the rewrite is idempotent.
- `original_image` is its inverse, so what users see stays the name they know.
- `rewrite_pod` is KubeSpawner's `modify_pod_hook`: the pod that is created pulls through the
  cache, while `JUPYTER_IMAGE` / `JUPYTER_IMAGE_SPEC` (what the notebook, and through it the
  Dask client, reads) keep the original name.

Stdlib only: shipped as an extraConfig entry of both charts (hub: reads the mapping from the
chart's `custom.imageCache` through z2jh's `get_config`; gateway: appended before
gateway_options.py, which calls `cached_image` on worker images with the mapping from its
own settings). Imported by the test suite, where `c` does not exist. The gateway chart appends
the text to its own config file, so it has no `from __future__` import.
"""

import sys
from collections.abc import Callable, Mapping
from typing import Any

DOCKER_HUB = "docker.io"
# Names Docker Hub answers to besides docker.io (the docker CLI normalizes both).
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Official images live under this namespace on Docker Hub (and in its caches).
OFFICIAL = "library"
# The notebook's own view of its image (KubeSpawner sets both from `spawner.image`).
IMAGE_ENV = ("JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC")


def split_host(ref: str) -> tuple[str, str]:
    """(registry host, repository path with tag/digest). A first component is a host when it
    has a dot or a colon or is `localhost` (the docker reference grammar); otherwise the
    name is Docker Hub's."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, ref


def cached_image(ref: str, cache: Mapping[str, str]) -> str:
    """`ref` as the cache names it, or `ref` unchanged when the cache does not front its
    registry (or there is no cache)."""
    if not ref or not cache:
        return ref
    host, path = split_host(ref.strip())
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        name = path.split("@", 1)[0].split(":", 1)[0]
        if "/" not in name:  # an official image: python:3.12 is library/python:3.12
            path = f"{OFFICIAL}/{path}"
    prefix = cache.get(host)
    if not prefix:
        return ref
    return f"{prefix.rstrip('/')}/{path}"


def original_image(ref: str, cache: Mapping[str, str]) -> str:
    """The upstream name of an image the cache serves (`ref` itself for any other): what a
    user would type, and what pulls the same image outside this cluster."""
    for host, prefix in (cache or {}).items():
        head = prefix.rstrip("/") + "/"
        if prefix and ref.startswith(head):
            path = ref[len(head) :]
            if host == DOCKER_HUB and path.startswith(f"{OFFICIAL}/"):
                path = path[len(OFFICIAL) + 1 :]
                return path if "/" not in path.split("@", 1)[0] else f"{host}/{path}"
            return f"{host}/{path}"
    return ref


def _items(pod: Any, *names: str) -> Any:
    """An attribute of a Kubernetes model object (KubeSpawner's V1Pod) or a key of a dict."""
    for name in names:
        if pod is None:
            return None
        pod = pod.get(name) if isinstance(pod, dict) else getattr(pod, name, None)
    return pod


def _set(item: Any, name: str, value: Any) -> None:
    if isinstance(item, dict):
        item[name] = value
    else:
        setattr(item, name, value)


def rewrite_pod(pod: Any, cache: Mapping[str, str]) -> Any:
    """Every container of the pod pulls through the cache; the notebook's image variables keep
    the upstream name (a menu image referenced through the cache included)."""
    containers = list(_items(pod, "spec", "containers") or [])
    containers += list(_items(pod, "spec", "init_containers") or [])
    containers += list(_items(pod, "spec", "initContainers") or [])
    for container in containers:
        image = _items(container, "image")
        if image:
            _set(container, "image", cached_image(image, cache))
        for variable in _items(container, "env") or []:
            if _items(variable, "name") in IMAGE_ENV and _items(variable, "value"):
                _set(variable, "value", original_image(_items(variable, "value"), cache))
    return pod


def make_modify_pod_hook(
    cache: Mapping[str, str], previous: Callable[[Any, Any], Any] | None = None
) -> Callable[[Any, Any], Any]:
    """KubeSpawner's `modify_pod_hook`: called on the manifest `get_pod_manifest` built, after
    the profile and the user's own image were applied, just before the pod is created. A hook
    set before this one still runs first."""

    def modify_pod_hook(spawner: Any, pod: Any) -> Any:
        if previous is not None:
            pod = previous(spawner, pod)
        return rewrite_pod(pod, cache)

    return modify_pod_hook


def configure(c: Any, cache: Mapping[str, str]) -> None:
    """Wire the hook into the hub's config; no cache, no hook."""
    if cache:
        previous = c.KubeSpawner.modify_pod_hook if "modify_pod_hook" in c.KubeSpawner else None
        c.KubeSpawner.modify_pod_hook = make_modify_pod_hook(dict(cache), previous)


if "c" in globals() and "z2jh" in sys.modules:  # executed as the hub's extraConfig
    # z2jh's reader of the chart values (the gateway's config file has no such module: there
    # gateway_options.py takes `cached_image` and the mapping from its own settings).
    from z2jh import get_config as chart_value

    configure(c, chart_value("custom.imageCache", {}) or {})  # type: ignore[name-defined]  # noqa: F821
