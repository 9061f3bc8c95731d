"""The hub's and the gateway's values for pulling images through the in-region cache.

Pure functions of the values and `HubContext.image_cache` (upstream registry host -> cache
prefix, from `CloudOutputs.image_cache`). With an empty mapping every function returns its
input unchanged, so a hub without a cache renders exactly as before.

- jupyterhub: menu images, the default image and the pre-puller's images by their cache name
  (the continuous pre-puller warms the name the pods will pull), the mapping in the chart's
  `custom.imageCache`, and `incluster/image_cache.py` as an extraConfig entry that makes
  KubeSpawner's `modify_pod_hook` rewrite every user pod, the user's own image included.
- dask-gateway: the mapping in the options handler's settings (`imageCache`) and the same
  module as an extraConfig entry before `10-options`, so workers and schedulers pull the
  notebook's image through the cache too.
"""

from __future__ import annotations

import copy
from typing import Any

from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.incluster.image_cache import cached_image
from pangeo_binder.hub.profiles import cached_profile_list

# extraConfig keys: the hub's runs after 10-hub-access (which only filters profiles); the
# gateway's must come before 10-options, which reads `cached_image` (the chart sorts keys).
HUB_ENTRY = "20-image-cache"
GATEWAY_ENTRY = "05-image-cache"
CUSTOM_KEY = "imageCache"


def _cached_name_tag(image: dict[str, str], cache: dict[str, str]) -> dict[str, str]:
    """A chart's `{name, tag}` image with the name the cache serves it under."""
    name, tag = image.get("name", ""), image.get("tag", "")
    ref = cached_image(f"{name}:{tag}" if tag else name, cache)
    if not tag:
        return {**image, "name": ref}
    cached_name, _, cached_tag = ref.rpartition(":")
    return {**image, "name": cached_name, "tag": cached_tag}


def jupyterhub_image_cache(values: dict[str, Any], cache: dict[str, str]) -> dict[str, Any]:
    """The jupyterhub release's values with images through the cache (a copy)."""
    if not cache:
        return values
    cached = copy.deepcopy(values)
    single = cached.setdefault("singleuser", {})
    if "profileList" in single:
        single["profileList"] = cached_profile_list(single["profileList"], cache)
    if single.get("image", {}).get("name"):
        single["image"] = _cached_name_tag(single["image"], cache)
    extra = cached.get("prePuller", {}).get("extraImages", {})
    for key, image in extra.items():
        extra[key] = _cached_name_tag(image, cache)
    cached.setdefault("custom", {})[CUSTOM_KEY] = dict(cache)
    cached.setdefault("hub", {}).setdefault("extraConfig", {})[HUB_ENTRY] = source("image_cache")
    return cached


def gateway_settings_image_cache(cache: dict[str, str]) -> dict[str, Any]:
    """The piece of the gateway's handler settings (`dask_values.gateway_settings`)."""
    return {CUSTOM_KEY: dict(cache)} if cache else {}


def gateway_extra_config_image_cache(cache: dict[str, str]) -> dict[str, str]:
    """The piece of the gateway's `gateway.extraConfig`: the rewrite, before the options."""
    return {GATEWAY_ENTRY: source("image_cache")} if cache else {}
