"""The community's JupyterHub dashboards (jupyterhub/grafana-dashboards), pinned, fetched like the
charts and rendered from their jsonnet by the product itself, for Grafana's sidecar.

The dashboards are jsonnet programs that import a vendored grafonnet: the repository tree at the
pinned commit lives in the per-user cache, `<cache>/dashboards/<name>-<short commit>` (the
charts' cache, `pangeo_binder.cache`), or under `$PANGEO_BINDER_DASHBOARDS`.
`python -m pangeo_binder.support.dashboards` fills it (the charts have their own command,
`python -m pangeo_binder.charts fetch`), and so does `make dashboards`, which `make up` and
`make preview` run first with `--stack NAME`: for a stack without `monitoring` it fetches
nothing, and a failed download is one line naming what to do, not a traceback. Rendering
`jupyterhub.jsonnet` takes about half a minute, so each result is kept on disk keyed by a hash of
the jsonnet sources and the jsonnet version: `pulumi preview` and the tests render each dashboard
once.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder.cache import cache_dir, configured_dir
from pangeo_binder.clouds import NAMESPACE

DASHBOARDS_ENV = "PANGEO_BINDER_DASHBOARDS"
FETCH_COMMAND = "python -m pangeo_binder.support.dashboards"  # `make dashboards` runs it
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
    return configured_dir(DASHBOARDS_ENV, "dashboards")


def tree(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS, root: Path | None = None) -> Path:
    return (root or dashboards_dir()) / pin.dirname


def missing_message(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS) -> str | None:
    """Why the dashboards cannot be rendered (naming the folder and the command), or None."""
    if (tree(pin) / "dashboards").is_dir() and (tree(pin) / "vendor").is_dir():
        return None
    return (
        f"the Grafana dashboards are not at {tree(pin)} (${DASHBOARDS_ENV}); run "
        f"`{FETCH_COMMAND}` (or `make dashboards`; needs internet) or point {DASHBOARDS_ENV} "
        f"at a folder holding {pin.dirname}/"
    )


class DashboardsFetchError(OSError):
    """The dashboards' source could not be fetched; the message is one line saying what to do
    (an OSError: a caller that catches the errors of writing the cache catches this too)."""


def fetch_failed(pin: DashboardsPin, target: Path, reason: object) -> DashboardsFetchError:
    """One line: what failed, why, and the two ways on (a network that reaches GitHub, or a
    tree fetched elsewhere and pointed at)."""
    return DashboardsFetchError(
        f"could not fetch the Grafana dashboards' source from {pin.archive_url} ({reason}); "
        f"run `make dashboards` again where github.com is reachable, or copy {pin.dirname}/ "
        f"from a machine that has it to {target.parent} (or point {DASHBOARDS_ENV} at its folder)"
    )


def fetch(pin: DashboardsPin = JUPYTERHUB_DASHBOARDS, root: Path | None = None, log=print) -> Path:
    """Download the repository's tree at the pinned commit (GitHub's archive) into the cache;
    a tree already there is kept. Unpacked into a temporary folder first: nothing half-done.

    Raises DashboardsFetchError (one line, naming the fix) when the download or the archive
    fails."""
    target = tree(pin, root)
    if (target / "dashboards").is_dir():
        log(f"{target} is present, kept")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"$ GET {pin.archive_url}")
    try:
        with urllib.request.urlopen(pin.archive_url, timeout=120) as response:
            data = response.read()
    except (OSError, ValueError) as error:  # URLError, HTTPError and timeouts are OSErrors
        raise fetch_failed(pin, target, getattr(error, "reason", error)) from None
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise fetch_failed(pin, target, f"not a readable archive: {error}") from None
        tops = list(Path(tmp).iterdir())  # codeload's single `<repo>-<commit>/` folder
        top = tops[0] if len(tops) == 1 else Path(tmp) / "-"
        if not (top / "dashboards").is_dir() or not (top / "vendor").is_dir():
            raise fetch_failed(pin, target, "the archive has no dashboards/ and vendor/")
        if target.exists():
            shutil.rmtree(target)
        top.rename(target)
    return target


def has_monitoring(stack_file: Path) -> bool:
    """True when the stack file sets `monitoring`, the only case where Grafana and its
    dashboards are deployed (a file that does not exist has none)."""
    if not stack_file.exists():
        return False
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    return f"{NAMESPACE}:monitoring" in config


def main(argv: Sequence[str] | None = None) -> int:
    """`make dashboards`: fetch the tree for a stack with `monitoring` (or, with no --stack,
    unconditionally: the test suite renders them); a failure is one line on stderr."""
    parser = argparse.ArgumentParser(
        prog=FETCH_COMMAND, description="Fetch the Grafana dashboards' source."
    )
    parser.add_argument("--stack", help="fetch only if Pulumi.<stack>.yaml sets monitoring")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the stack file is")
    parser.add_argument(
        "--dashboards",
        type=Path,
        help=f"dashboards folder (default ${DASHBOARDS_ENV}, else {cache_dir() / 'dashboards'})",
    )
    args = parser.parse_args(argv)
    if args.stack and not has_monitoring(args.dir / f"Pulumi.{args.stack}.yaml"):
        print(f"stack {args.stack} has no monitoring: the Grafana dashboards are not needed")
        return 0
    try:
        fetch(root=args.dashboards)
    except DashboardsFetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
