"""Autosave in chart values: every user pod saves its working directory as it stops.

The script (`hub/incluster/autosave.py`) reaches the pods as a file from z2jh's singleuser
Secret (`singleuser.extraFiles`), so users' images need no change, and runs from the
container's `preStop` hook. Kubernetes runs that hook inside the pod's termination grace
period, which must be long enough, on both paths a pod stops by:

- the hub stopping it (culler, the user's Stop button): KubeSpawner 7.0.0's `stop()` deletes
  the pod with `grace_period_seconds=delete_grace_period` (default 1 s), which overrides the
  pod's own value, so the trait is set;
- the cluster stopping it (a drained or shut-down node, an eviction): the kubelet uses the
  pod's `terminationGracePeriodSeconds`, set through `extraPodConfig` to the same number.

`stop(now=True)` (a failed spawn being cleaned up) deletes with 0 s: nothing to save there.
"""

from __future__ import annotations

from typing import Any

from pangeo_binder.hub.config import AutosaveSettings
from pangeo_binder.hub.incluster import autosave as script
from pangeo_binder.hub.incluster import source

# The server needs these seconds of the grace period after the hook, to stop on SIGTERM.
SERVER_STOP_SECONDS = 15
FILE_KEY = "pangeo-autosave"


def prestop_command(settings: AutosaveSettings) -> list[str]:
    """The hook's command: an argv list (no shell), so nothing in it needs quoting."""
    return [
        "python3",
        script.MOUNT_PATH,
        "--save",
        "--max-megabytes",
        str(settings.max_megabytes),
        "--budget",
        str(settings.grace_seconds - SERVER_STOP_SECONDS),
    ]


def autosave_singleuser(settings: AutosaveSettings) -> dict[str, Any]:
    """The `singleuser` keys that install autosave; empty when it is off."""
    if not settings.enabled:
        return {}
    return {
        "extraFiles": {
            FILE_KEY: {
                "mountPath": script.MOUNT_PATH,
                "stringData": source("autosave"),
                "mode": 0o444,
            }
        },
        "lifecycleHooks": {"preStop": {"exec": {"command": prestop_command(settings)}}},
        "extraPodConfig": {"terminationGracePeriodSeconds": settings.grace_seconds},
    }


def autosave_spawner(settings: AutosaveSettings) -> dict[str, Any]:
    """The `hub.config.KubeSpawner` keys: the grace period the hub's own deletes use."""
    return {"delete_grace_period": settings.grace_seconds} if settings.enabled else {}
