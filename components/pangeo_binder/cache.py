"""The per-user cache where the project keeps upstream data it fetches: chart sources and
schemas (`pangeo_binder.charts`), the Grafana dashboards' trees and their renders
(`pangeo_binder.support.dashboards`).

Its own module, below both, so that neither imports the other for the location: each fetches
its own data with its own command.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The per-user cache: `$XDG_CACHE_HOME/pangeo-binder`, else `~/.cache/pangeo-binder`.
    A relative XDG_CACHE_HOME is ignored, as the XDG spec says."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "pangeo-binder"


def configured_dir(env: str, default: str) -> Path:
    """`$<env>` when set (and not empty), else `<cache>/<default>`."""
    configured = os.environ.get(env)
    return Path(configured) if configured else cache_dir() / default
