"""The Helm charts the hub installs, pinned, and where their sources and schemas live on disk.

The hub renders and validates every release with the real chart in the test suite, offline. The
chart sources and their values schemas are the charts' own data, kept beside the project rather
than in it (`../shared/charts`, `../shared/chart-schemas`, DESIGN.md "Charts"); environment
variables point elsewhere. `python -m components.charts fetch` fills both folders from the pinned
versions with `helm pull`, on any machine with internet access and a `helm` binary, so anyone who
clones the project can run the same tests.

Layout (the same as the shared folders):

    <charts>/<name>-<version>/Chart.yaml, values.yaml, values.schema.json, templates/, crds/ ...
    <schemas>/<name>/values.schema.json, values.yaml, SOURCE.txt
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CHARTS_ENV = "PANGEO_BINDER_CHARTS"
SCHEMAS_ENV = "PANGEO_BINDER_CHART_SCHEMAS"
FETCH_COMMAND = "python -m components.charts fetch"

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChartPin:
    """One chart at one exact published version, from its Helm repository."""

    name: str
    repository: str
    version: str

    @property
    def dirname(self) -> str:
        """The chart's folder under the charts directory: `<name>-<version>`."""
        return f"{self.name}-{self.version}"


JUPYTERHUB = ChartPin("jupyterhub", "https://jupyterhub.github.io/helm-chart", "4.4.0")
"""Zero to JupyterHub 4.4.0 (tag 2026-06-10, the latest stable release then): its Chart.yaml
says appVersion "5.5.0", the JupyterHub version of its hub image, and kubeVersion >=1.28.0-0.
Relied on: ../shared/charts/jupyterhub-4.4.0/Chart.yaml and ../shared/chart-schemas/jupyterhub/
SOURCE.txt (z2jh commit 5c5f5df), read 2026-11-26."""

DASK_GATEWAY = ChartPin("dask-gateway", "https://helm.dask.org", "2026.3.0")
"""dask-gateway 2026.3.0 (tag 2026-03-31): appVersion "2026.3.0", kubeVersion >=1.30.0-0. It ships
CRDs in `crds/` (DaskCluster and Traefik's IngressRoute, Middleware, ...), which Helm installs once
and never upgrades. Relied on: ../shared/charts/dask-gateway-2026.3.0/Chart.yaml and
../shared/chart-schemas/dask-gateway/SOURCE.txt (commit 82efdfa), read 2026-11-26."""

BINDERHUB_SERVICE = ChartPin(
    "binderhub-service", "https://2i2c.org/binderhub-service", "0.1.0-0.dev.git.336.hca79dc0"
)
"""2i2c's binderhub-service (BinderHub as a JupyterHub service): only dev builds are published, so
the pin is one dev build (commit ca79dc0). Its Chart.yaml says appVersion "1.0.0" (marked FIXME
upstream: it does not track the BinderHub version) and kubeVersion >=1.27.0-0. `helm pull` finds a
pre-release without `--devel` when `--version` names it exactly (fosrl/docs-v2#140, 2026-09;
lightbend/console-charts#176). Relied on:
../shared/charts/binderhub-service-0.1.0-0.dev.git.336.hca79dc0/Chart.yaml, read 2026-11-26."""

PINS: tuple[ChartPin, ...] = (JUPYTERHUB, DASK_GATEWAY, BINDERHUB_SERVICE)


def chart_sources_dir() -> Path:
    """Where chart sources live: `$PANGEO_BINDER_CHARTS`, else `<repo>/../shared/charts`."""
    configured = os.environ.get(CHARTS_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "charts"


def chart_schemas_dir() -> Path:
    """Where values schemas live: `$PANGEO_BINDER_CHART_SCHEMAS`, else `../shared/chart-schemas`."""
    configured = os.environ.get(SCHEMAS_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "chart-schemas"


def chart_dir(pin: ChartPin, charts: Path | None = None) -> Path:
    """The unpacked chart of `pin`."""
    return (charts or chart_sources_dir()) / pin.dirname


def schema_dir(pin: ChartPin, schemas: Path | None = None) -> Path:
    """The folder holding `pin`'s values.schema.json, values.yaml and SOURCE.txt."""
    return (schemas or chart_schemas_dir()) / pin.name


SCHEMA_FILES = ("values.schema.json", "values.yaml", "SOURCE.txt")


def missing_files(
    pins: Sequence[ChartPin] = PINS, charts: Path | None = None, schemas: Path | None = None
) -> list[Path]:
    """The chart folders and schema files of `pins` that are not on disk."""
    missing: list[Path] = []
    for pin in pins:
        if not (chart_dir(pin, charts) / "Chart.yaml").is_file():
            missing.append(chart_dir(pin, charts))
        missing += [
            schema_dir(pin, schemas) / f
            for f in SCHEMA_FILES
            if not (schema_dir(pin, schemas) / f).is_file()
        ]
    return missing


class FetchError(RuntimeError):
    """`fetch` could not complete: no helm binary, a failed pull, or an incomplete chart."""


HELM_INSTALL_HINT = (
    "`helm` was not found on PATH. Install Helm (https://helm.sh/docs/intro/install/, e.g. "
    "`curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash`, "
    "`brew install helm` or `snap install helm --classic`) and run `" + FETCH_COMMAND + "` again."
)


def _source_text(pin: ChartPin, helm_version: str) -> str:
    return (
        f"repository: {pin.repository}\n"
        f"chart: {pin.name}\n"
        f"version: {pin.version}\n"
        f"fetched with: helm pull {pin.name} --repo {pin.repository} "
        f"--version {pin.version} --untar ({helm_version})\n"
        f"by: {FETCH_COMMAND}\n"
        "values.schema.json and values.yaml are the published chart package's own files.\n"
    )


def fetch(
    pins: Sequence[ChartPin] = PINS,
    charts: Path | None = None,
    schemas: Path | None = None,
    *,
    force: bool = False,
    log=print,
) -> None:
    """Pull each pinned chart with `helm pull` into the charts layout and fill the schemas layout.

    A chart folder already present is kept (its files are the published package) unless `force`.
    Each chart is pulled into a temporary folder first, so a failed pull leaves nothing half-done.
    """
    helm = shutil.which("helm")
    if helm is None:
        raise FetchError(HELM_INSTALL_HINT)
    charts = charts or chart_sources_dir()
    schemas = schemas or chart_schemas_dir()
    helm_version = subprocess.run(
        [helm, "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    for pin in pins:
        target = chart_dir(pin, charts)
        if force or not (target / "Chart.yaml").is_file():
            charts.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=charts, prefix=".pull-") as tmp:
                command = [
                    helm, "pull", pin.name, "--repo", pin.repository,
                    "--version", pin.version, "--untar", "--untardir", tmp,
                ]  # fmt: skip
                log(f"$ {' '.join(command[1:])}")
                pulled = subprocess.run(command, capture_output=True, text=True, check=False)
                if pulled.returncode != 0:
                    raise FetchError(
                        f"helm pull {pin.name} {pin.version} from {pin.repository} failed "
                        f"(exit {pulled.returncode}): {pulled.stderr.strip() or pulled.stdout}"
                    )
                unpacked = Path(tmp) / pin.name
                if not (unpacked / "Chart.yaml").is_file():
                    raise FetchError(f"helm pull gave no {pin.name}/Chart.yaml in {tmp}")
                _check_chart_files(pin, unpacked)
                if target.exists():
                    shutil.rmtree(target)
                unpacked.rename(target)
        else:
            log(f"{target} is present, kept (--force pulls it again)")
        _fill_schema_dir(pin, target, schema_dir(pin, schemas), helm_version)
        log(f"{pin.name} {pin.version}: {target}, {schema_dir(pin, schemas)}")


def _check_chart_files(pin: ChartPin, chart: Path) -> None:
    for name in ("values.schema.json", "values.yaml"):
        if not (chart / name).is_file():
            raise FetchError(
                f"{pin.name} {pin.version} from {pin.repository} has no {name}: "
                "the tests validate values against the chart's published schema"
            )


def _fill_schema_dir(pin: ChartPin, chart: Path, destination: Path, helm_version: str) -> None:
    _check_chart_files(pin, chart)
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("values.schema.json", "values.yaml"):
        shutil.copyfile(chart / name, destination / name)
    (destination / "SOURCE.txt").write_text(_source_text(pin, helm_version))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.charts", description="The hub's pinned Helm charts."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pull = sub.add_parser(
        "fetch", help="helm pull every pinned chart and fill the chart and schema folders"
    )
    pull.add_argument(
        "--charts", type=Path, help=f"charts folder (default ${CHARTS_ENV} or ../shared/charts)"
    )
    pull.add_argument(
        "--schemas",
        type=Path,
        help=f"schemas folder (default ${SCHEMAS_ENV} or ../shared/chart-schemas)",
    )
    pull.add_argument("--force", action="store_true", help="pull charts that are already present")
    args = parser.parse_args(argv)
    try:
        fetch(charts=args.charts, schemas=args.schemas, force=args.force)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
