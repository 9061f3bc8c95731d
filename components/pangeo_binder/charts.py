"""The Helm charts the hub installs, pinned, and where their sources and schemas live on disk.

The hub renders and validates every release with the real chart in the test suite, offline. The
chart sources and their values schemas are the charts' own data, not the project's: they live in a
per-user cache, `$XDG_CACHE_HOME/pangeo-binder/charts` and `.../chart-schemas` (`~/.cache/...`
when XDG_CACHE_HOME is unset), or wherever `$PANGEO_BINDER_CHARTS` and
`$PANGEO_BINDER_CHART_SCHEMAS` point (`pangeo_binder.cache`). `python -m pangeo_binder.charts
fetch` fills both folders from the pinned versions, on any machine with internet access, so
anyone who clones the project can run the same tests (CI runs it before `make test`; the Grafana
dashboards have their own command, `pangeo_binder.support.dashboards`). It pulls with
helm-python-sdk (Helm's own Go library, in the test extras: `make venv` is enough, no helm
binary) and falls back to `helm pull` when that package is not importable.

Layout:

    <charts>/<name>-<version>/Chart.yaml, values.yaml, values.schema.json, templates/, crds/ ...
    <schemas>/<name>/values.schema.json, values.yaml, SOURCE.txt
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pangeo_binder.cache import cache_dir, configured_dir

CHARTS_ENV = "PANGEO_BINDER_CHARTS"
SCHEMAS_ENV = "PANGEO_BINDER_CHART_SCHEMAS"
FETCH_COMMAND = "python -m pangeo_binder.charts fetch"


@dataclass(frozen=True)
class ChartPin:
    """One chart at one exact published version, from its Helm repository."""

    name: str
    repository: str
    version: str
    schema: bool = True  # the package ships a values.schema.json (grafana and opencost do not)

    @property
    def dirname(self) -> str:
        """The chart's folder under the charts directory: `<name>-<version>`."""
        return f"{self.name}-{self.version}"


JUPYTERHUB = ChartPin("jupyterhub", "https://jupyterhub.github.io/helm-chart", "4.4.0")
"""Zero to JupyterHub 4.4.0 (tag 2026-06-10, the latest stable release then): its Chart.yaml
says appVersion "5.5.0", the JupyterHub version of its hub image, and kubeVersion >=1.28.0-0.
Read from the chart source at this version (its Chart.yaml; z2jh commit 5c5f5df), 2026-11-26."""

DASK_GATEWAY = ChartPin("dask-gateway", "https://helm.dask.org", "2026.3.0")
"""dask-gateway 2026.3.0 (tag 2026-03-31): appVersion "2026.3.0", kubeVersion >=1.30.0-0. It ships
CRDs in `crds/` (DaskCluster and Traefik's IngressRoute, Middleware, ...), which Helm installs once
and never upgrades. Read from the chart source at this version (its Chart.yaml; commit 82efdfa),
2026-11-26."""

BINDERHUB_SERVICE = ChartPin(
    "binderhub-service", "https://2i2c.org/binderhub-service", "0.1.0-0.dev.git.336.hca79dc0"
)
"""2i2c's binderhub-service (BinderHub as a JupyterHub service): only dev builds are published, so
the pin is one dev build (commit ca79dc0). Its Chart.yaml says appVersion "1.0.0" (marked FIXME
upstream: it does not track the BinderHub version) and kubeVersion >=1.27.0-0. `helm pull` finds a
pre-release without `--devel` when `--version` names it exactly (fosrl/docs-v2#140, 2026-09;
lightbend/console-charts#176); so does `helm_python.pull`, which has no devel option (Helm v4.2.3:
tests/test_charts_fetch.py pulls a version of this form from a local repository). Read from the
chart source at this version (its Chart.yaml), 2026-11-26."""

PROMETHEUS = ChartPin("prometheus", "https://prometheus-community.github.io/helm-charts", "29.27.0")
"""The plain prometheus chart (not kube-prometheus-stack: its operator installs through hooks and
CRDs, which helm.v4.Chart skips). Its subcharts at the Chart.lock versions: kube-state-metrics
8.4.0, prometheus-node-exporter 4.56.1, alertmanager 1.42.0, prometheus-pushgateway 3.8.0. Ships
a values.schema.json. Read from the chart source at tag prometheus-29.27.0, 2026-12-03."""

GRAFANA = ChartPin("grafana", "https://grafana-community.github.io/helm-charts", "11.6.1", False)
"""grafana 11.6.1 (Grafana 12.4.3), the newest of the 11.x line; the chart moved to the
grafana-community repository. No values.schema.json. Read from tag grafana-11.6.1, 2026-12-03."""

OPENCOST = ChartPin("opencost", "https://opencost.github.io/opencost-helm-chart", "2.5.17", False)
"""opencost 2.5.17: cost allocation per pod from Prometheus metrics and a price list (custom
pricing). No values.schema.json. Read from tag opencost-2.5.17, 2026-12-03."""

HUB_PINS: tuple[ChartPin, ...] = (JUPYTERHUB, DASK_GATEWAY, BINDERHUB_SERVICE)
SUPPORT_PINS: tuple[ChartPin, ...] = (PROMETHEUS, GRAFANA, OPENCOST)
PINS: tuple[ChartPin, ...] = HUB_PINS + SUPPORT_PINS


def chart_sources_dir() -> Path:
    """Where chart sources live: `$PANGEO_BINDER_CHARTS`, else `<cache>/charts`."""
    return configured_dir(CHARTS_ENV, "charts")


def chart_schemas_dir() -> Path:
    """Where values schemas live: `$PANGEO_BINDER_CHART_SCHEMAS`, else `<cache>/chart-schemas`."""
    return configured_dir(SCHEMAS_ENV, "chart-schemas")


def chart_dir(pin: ChartPin, charts: Path | None = None) -> Path:
    """The unpacked chart of `pin`."""
    return (charts or chart_sources_dir()) / pin.dirname


def schema_dir(pin: ChartPin, schemas: Path | None = None) -> Path:
    """The folder holding `pin`'s values.schema.json, values.yaml and SOURCE.txt."""
    return (schemas or chart_schemas_dir()) / pin.name


SCHEMA_FILES = ("values.schema.json", "values.yaml", "SOURCE.txt")


def schema_files(pin: ChartPin) -> tuple[str, ...]:
    """The files `pin`'s schema folder holds: no values.schema.json for a chart without one."""
    return SCHEMA_FILES if pin.schema else SCHEMA_FILES[1:]


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
            for f in schema_files(pin)
            if not (schema_dir(pin, schemas) / f).is_file()
        ]
    return missing


def missing_message(
    pins: Sequence[ChartPin] = PINS, charts: Path | None = None, schemas: Path | None = None
) -> str | None:
    """Why the chart files of `pins` cannot be used, naming the folders looked in and the command
    that fills them; None when every file is there."""
    missing = missing_files(pins, charts, schemas)
    if not missing:
        return None
    return (
        f"{len(missing)} chart file(s) missing (first: {missing[0]}); looked in "
        f"{charts or chart_sources_dir()} (${CHARTS_ENV}) and {schemas or chart_schemas_dir()} "
        f"(${SCHEMAS_ENV}). Run `{FETCH_COMMAND}` to fill them (needs internet, not helm), "
        "or point those variables at folders that hold them"
    )


class FetchError(RuntimeError):
    """`fetch` could not complete: no way to pull, a failed pull, or an incomplete chart."""


HELM_INSTALL_HINT = (
    "`helm` was not found on PATH. Install Helm (https://helm.sh/docs/intro/install/, e.g. "
    "`curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash`, "
    "`brew install helm` or `snap install helm --classic`) and run `" + FETCH_COMMAND + "` again."
)

BACKENDS = ("auto", "helm-python", "helm")
"""How `fetch` pulls: `helm-python` is helm-python-sdk (Helm's Go library, in the test extras, so
`make venv` is enough), `helm` the helm binary, `auto` the first of the two that is usable."""


@dataclass(frozen=True)
class _Puller:
    """One way to pull a chart: `pull(pin, workdir)` returns the unpacked chart folder."""

    name: str
    version: str  # what pulled, recorded in SOURCE.txt
    how: Callable[[ChartPin], str]  # the call, as one line for the log and SOURCE.txt
    pull: Callable[[ChartPin, Path], Path]


def _sdk_puller() -> _Puller | str:
    """helm-python-sdk's `pull` and `expand`, or why it cannot be used.

    Relied on (helm-python-sdk 0.2.2, helm_python/registry.py and chart.py, read 2026-11-26):
    `pull(chart_ref, *, repo_url=, version=, destination=)` downloads `<name>-<version>.tgz` into
    `destination` and returns `{"output": str}`, raising a `HelmError` (HelmRepoError when the
    chart or repository cannot be reached); `expand(destination, archive)` unpacks it into
    `destination/<chart name>/`. Both bind Helm v4's Go library: no helm binary is needed.
    """
    try:
        import helm_python
    except ImportError as error:
        return f"helm-python-sdk is not installed ({error})"
    except Exception as error:  # HelmLibraryError: its native Helm library did not load.
        return f"helm-python-sdk could not load Helm's library ({error})"

    def how(pin: ChartPin) -> str:
        return (
            f"helm_python.pull({pin.name!r}, repo_url={pin.repository!r}, "
            f"version={pin.version!r}) and helm_python.expand"
        )

    def pull(pin: ChartPin, workdir: Path) -> Path:
        archives, unpacked = workdir / "archive", workdir / "chart"
        archives.mkdir()
        try:
            helm_python.pull(
                pin.name, repo_url=pin.repository, version=pin.version, destination=archives
            )
        except helm_python.HelmError as error:
            raise FetchError(
                f"helm_python.pull {pin.name} {pin.version} from {pin.repository} failed "
                f"({type(error).__name__}): {error}"
            ) from error
        archive = archives / f"{pin.name}-{pin.version}.tgz"
        if not archive.is_file():
            found = ", ".join(sorted(p.name for p in archives.iterdir())) or "nothing"
            raise FetchError(
                f"helm_python.pull {pin.name} {pin.version} wrote no {archive.name} "
                f"(found: {found})"
            )
        try:
            helm_python.expand(unpacked, archive)
        except helm_python.HelmError as error:
            raise FetchError(f"unpacking {archive.name} failed: {error}") from error
        return unpacked / pin.name

    version = f"helm-python-sdk {helm_python.__version__}, Helm {helm_python.helm_sdk_version()}"
    return _Puller("helm-python", version, how, pull)


def _binary_puller() -> _Puller | str:
    """The helm binary's `helm pull --untar`, or why it cannot be used."""
    helm = shutil.which("helm")
    if helm is None:
        return HELM_INSTALL_HINT

    def command(pin: ChartPin, untardir: str = "DIR") -> list[str]:
        return [
            helm, "pull", pin.name, "--repo", pin.repository,
            "--version", pin.version, "--untar", "--untardir", untardir,
        ]  # fmt: skip

    def how(pin: ChartPin) -> str:
        return " ".join(["helm", *command(pin)[1:]])

    def pull(pin: ChartPin, workdir: Path) -> Path:
        pulled = subprocess.run(
            command(pin, str(workdir)), capture_output=True, text=True, check=False
        )
        if pulled.returncode != 0:
            raise FetchError(
                f"helm pull {pin.name} {pin.version} from {pin.repository} failed "
                f"(exit {pulled.returncode}): {pulled.stderr.strip() or pulled.stdout}"
            )
        return workdir / pin.name

    version = subprocess.run(
        [helm, "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return _Puller("helm", f"helm {version}", how, pull)


def _puller(backend: str) -> _Puller:
    """The puller `backend` names; `auto` prefers helm-python-sdk, then the helm binary."""
    if backend not in BACKENDS:
        raise FetchError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "helm-python":
        sdk = _sdk_puller()
        if isinstance(sdk, str):
            raise FetchError(f"{sdk}: `make venv` installs it with the test extras")
        return sdk
    if backend == "helm":
        binary = _binary_puller()
        if isinstance(binary, str):
            raise FetchError(binary)
        return binary
    sdk = _sdk_puller()
    if not isinstance(sdk, str):
        return sdk
    binary = _binary_puller()
    if not isinstance(binary, str):
        return binary
    raise FetchError(
        f"nothing can pull the charts. {sdk}: `make venv` installs it with the test extras, then "
        f"run `.venv/bin/{FETCH_COMMAND}`. Or: {binary}"
    )


def _source_text(pin: ChartPin, puller: _Puller) -> str:
    return (
        f"repository: {pin.repository}\n"
        f"chart: {pin.name}\n"
        f"version: {pin.version}\n"
        f"fetched with: {puller.how(pin)} ({puller.version})\n"
        f"by: {FETCH_COMMAND}\n"
        "values.schema.json and values.yaml are the published chart package's own files.\n"
    )


def fetch(
    pins: Sequence[ChartPin] = PINS,
    charts: Path | None = None,
    schemas: Path | None = None,
    *,
    force: bool = False,
    backend: str = "auto",
    log=print,
) -> None:
    """Pull each pinned chart into the charts layout and fill the schemas layout.

    Pulls with helm-python-sdk when it is importable (no helm binary needed), else with the
    helm binary (`backend` forces one). A chart folder already present is kept (its files are the
    published package) unless `force`. Each chart is pulled into a temporary folder first and
    checked (name, version, schema), so a failed pull leaves nothing half-done.
    """
    puller = _puller(backend)
    charts = charts or chart_sources_dir()
    schemas = schemas or chart_schemas_dir()
    for pin in pins:
        target = chart_dir(pin, charts)
        if force or not (target / "Chart.yaml").is_file():
            charts.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=charts, prefix=".pull-") as tmp:
                log(f"$ {puller.how(pin)}")
                unpacked = puller.pull(pin, Path(tmp))
                if not (unpacked / "Chart.yaml").is_file():
                    raise FetchError(f"{puller.name} pull gave no {pin.name}/Chart.yaml in {tmp}")
                _check_chart_identity(pin, unpacked)
                _check_chart_files(pin, unpacked)
                if target.exists():
                    shutil.rmtree(target)
                unpacked.rename(target)
        else:
            log(f"{target} is present, kept (--force pulls it again)")
        _fill_schema_dir(pin, target, schema_dir(pin, schemas), puller)
        log(f"{pin.name} {pin.version}: {target}, {schema_dir(pin, schemas)}")


def _check_chart_identity(pin: ChartPin, chart: Path) -> None:
    """The pulled Chart.yaml is the pinned chart at the pinned version, nothing else."""
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    found = (str(metadata.get("name")), str(metadata.get("version")))
    if found != (pin.name, pin.version):
        raise FetchError(
            f"pulled {pin.name} {pin.version} from {pin.repository}, but its Chart.yaml says "
            f"{found[0]} {found[1]}"
        )


def _check_chart_files(pin: ChartPin, chart: Path) -> None:
    for name in schema_files(pin)[:-1]:
        if not (chart / name).is_file():
            raise FetchError(
                f"{pin.name} {pin.version} from {pin.repository} has no {name}: "
                "the tests validate values against the chart's published schema"
            )


def _fill_schema_dir(pin: ChartPin, chart: Path, destination: Path, puller: _Puller) -> None:
    _check_chart_files(pin, chart)
    destination.mkdir(parents=True, exist_ok=True)
    for name in schema_files(pin)[:-1]:
        shutil.copyfile(chart / name, destination / name)
    (destination / "SOURCE.txt").write_text(_source_text(pin, puller))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pangeo_binder.charts", description="The hub's pinned Helm charts."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pull = sub.add_parser(
        "fetch", help="pull every pinned chart and fill the chart and schema folders"
    )
    pull.add_argument(
        "--charts",
        type=Path,
        help=f"charts folder (default ${CHARTS_ENV}, else {cache_dir() / 'charts'})",
    )
    pull.add_argument(
        "--schemas",
        type=Path,
        help=f"schemas folder (default ${SCHEMAS_ENV}, else {cache_dir() / 'chart-schemas'})",
    )
    pull.add_argument("--force", action="store_true", help="pull charts that are already present")
    pull.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="helm-python (helm-python-sdk, no helm binary), helm (the binary), or auto: the "
        "first usable (default)",
    )
    args = parser.parse_args(argv)
    try:
        fetch(charts=args.charts, schemas=args.schemas, force=args.force, backend=args.backend)
    except (FetchError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
