"""The community's JupyterHub dashboards (jupyterhub/grafana-dashboards), pinned, fetched like the
charts and rendered from their jsonnet by the product itself, for Grafana's sidecar.

The dashboards are jsonnet programs that import a vendored grafonnet: the repository tree at the
pinned commit lives in the per-user cache, `<cache>/dashboards/<name>-<short commit>` (the charts'
cache, `pangeo_binder.charts.cache_dir`), or under `$PANGEO_BINDER_DASHBOARDS`.
`python -m pangeo_binder.charts fetch` fills it. Rendering `jupyterhub.jsonnet` takes about half a
minute, so each result is kept on disk keyed by a hash of the jsonnet sources and the jsonnet
version: `pulumi preview` and the tests render each dashboard once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pangeo_binder.charts import FETCH_COMMAND, cache_dir

DASHBOARDS_ENV = "PANGEO_BINDER_DASHBOARDS"
FOLDER = "JupyterHub"  # the Grafana folder the sidecar files them in


@dataclass(frozen=True)
class DashboardsPin:
    """One dashboard repository at one commit (its tree vendors what it imports)."""

    name: str
    repository: str  # owner/name on GitHub
    commit: str

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.commit[:7]}"

    @property
    def archive_url(self) -> str:
        return f"https://codeload.github.com/{self.repository}/tar.gz/{self.commit}"


JUPYTERHUB_DASHBOARDS = DashboardsPin(
    "jupyterhub-grafana-dashboards",
    "jupyterhub/grafana-dashboards",
    "ef44b4ed0b439734f2acd5dbd81c4f7d3b513f76",
)
"""main at 2026-03-03 (no release tags after 1.0): eight dashboards for grafonnet v11.1.0, which
the tree vendors under vendor/ (jsonnet-bundler), so rendering needs no network."""


def dashboards_dir() -> Path:
    """Where dashboard trees live: `$PANGEO_BINDER_DASHBOARDS`, else `<cache>/dashboards`."""
    configured = os.environ.get(DASHBOARDS_ENV)
    return Path(configured) if configured else cache_dir() / "dashboards"


def tree(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS, root: Path | None = None) -> Path:
    return (root or dashboards_dir()) / pin.dirname


def missing_message(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS) -> str | None:
    """Why the dashboards cannot be rendered (naming the folder and the command), or None."""
    if (tree(pin) / "dashboards").is_dir() and (tree(pin) / "vendor").is_dir():
        return None
    return (
        f"the Grafana dashboards are not at {tree(pin)} (${DASHBOARDS_ENV}); run "
        f"`{FETCH_COMMAND}` (needs internet) or point {DASHBOARDS_ENV} at a folder holding "
        f"{pin.dirname}/"
    )


def fetch(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS, root: Path | None = None, log=print) -> Path:
    """Download the repository's tree at the pinned commit (GitHub's archive) into the cache;
    a tree already there is kept. Unpacked into a temporary folder first: nothing half-done."""
    target = tree(pin, root)
    if (target / "dashboards").is_dir():
        log(f"{target} is present, kept")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"$ GET {pin.archive_url}")
    with urllib.request.urlopen(pin.archive_url, timeout=120) as response:
        data = response.read()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()  # codeload's single `<repo>-<commit>/` folder
        if not (top / "dashboards").is_dir() or not (top / "vendor").is_dir():
            raise RuntimeError(f"{pin.archive_url} has no dashboards/ and vendor/")
        if target.exists():
            shutil.rmtree(target)
        top.rename(target)
    return target


def dashboard_files(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS) -> list[Path]:
    """The dashboards of the tree: `dashboards/*.jsonnet` (`*.libsonnet` are helpers)."""
    return sorted((tree(pin) / "dashboards").glob("*.jsonnet"))


def _sources_hash(pin: DashboardsPin) -> str:
    import _jsonnet

    digest = hashlib.sha256(f"{pin.commit} jsonnet {_jsonnet.version}".encode())
    for path in sorted((tree(pin) / "dashboards").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def uid(pin: DashboardsPin, name: str) -> str:
    """A fixed uid per dashboard (Grafana's limit is 40 characters): links to it stay valid
    across deploys, and a second copy is never created beside it."""
    return f"jh-{name}"[:40]


def render_all(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS) -> dict[str, dict[str, Any]]:
    """Every dashboard of the tree, rendered, by file stem, with its fixed uid; cached on disk.

    Raises FileNotFoundError with the fetch command when the tree is missing.
    """
    message = missing_message(pin)
    if message is not None:
        raise FileNotFoundError(message)
    cache = cache_dir() / "rendered-dashboards" / pin.dirname / _sources_hash(pin)
    rendered: dict[str, dict[str, Any]] = {}
    for path in dashboard_files(pin):
        cached = cache / f"{path.stem}.json"
        if cached.is_file():
            dashboard = json.loads(cached.read_text())
        else:
            dashboard = render_file(path, tree(pin) / "vendor")
            cache.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".tmp")
            partial.write_text(json.dumps(dashboard))
            partial.replace(cached)
        dashboard["uid"] = uid(pin, path.stem)
        rendered[path.stem] = dashboard
    return rendered


def render_file(path: Path, vendor: Path) -> dict[str, Any]:
    """One jsonnet dashboard rendered with the jsonnet package (no binary)."""
    import _jsonnet

    return json.loads(_jsonnet.evaluate_file(str(path), jpathdir=[str(vendor)]))
