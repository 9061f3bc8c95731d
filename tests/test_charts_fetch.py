"""`python -m pangeo_binder.charts fetch`: the pinned charts into both folder layouts, with
helm-python-sdk (no helm binary) or the helm binary, never half-done.

No network here: helm-python-sdk's `pull` is replaced by a fake that writes what the real one
writes (a chart archive `<name>-<version>.tgz` in `destination`, made by Helm's own `package`), the
real `pull` is exercised against a chart repository served on 127.0.0.1, and the helm binary is a
small script.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from pangeo_binder import charts
from pangeo_binder.charts import PINS, ChartPin

ROOT = Path(__file__).resolve().parent.parent

# --- fetch with a fake helm binary ----------------------------------------------------------------

FAKE_HELM = textwrap.dedent(
    """\
    #!{python}
    # A stand-in for helm: logs its arguments and unpacks a tiny chart, no network.
    import json, pathlib, sys
    args = sys.argv[1:]
    with open({log!r}, "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[0] == "version":
        print("v9.9.9+fake")
        sys.exit(0)
    assert args[0] == "pull", args
    name = args[1]
    opt = {{a: b for a, b in zip(args, args[1:]) if a in ("--repo", "--version", "--untardir")}}
    if name == "broken":
        print("Error: chart not found", file=sys.stderr)
        sys.exit(1)
    chart = pathlib.Path(opt["--untardir"]) / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\\nname: {{name}}\\nversion: {{opt['--version']}}\\n")
    (chart / "values.yaml").write_text("replicas: 1\\n")
    if name != "noschema":
        (chart / "values.schema.json").write_text('{{"type": "object"}}')
    """
)


def _fake_helm(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "helm.log"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable, log=str(log)))
    helm.chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir)}
    for key in (charts.CHARTS_ENV, charts.SCHEMAS_ENV):
        env.pop(key, None)
    return env, log


def _run_fetch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pangeo_binder.charts", "fetch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_fetch_pulls_every_pin_into_both_layouts(tmp_path) -> None:
    env, log = _fake_helm(tmp_path)
    out_charts, out_schemas = tmp_path / "charts", tmp_path / "schemas"
    folders = ("--charts", str(out_charts), "--schemas", str(out_schemas))
    done = _run_fetch(env, "--backend", "helm", *folders)
    assert done.returncode == 0, done.stderr
    pulls = [a for a in map(yaml.safe_load, log.read_text().splitlines()) if a[0] == "pull"]
    assert pulls == [
        [
            "pull",
            p.name,
            "--repo",
            p.repository,
            "--version",
            p.version,
            "--untar",
            "--untardir",
            pulls[i][-1],
        ]
        for i, p in enumerate(PINS)
    ]
    assert charts.missing_files(PINS, out_charts, out_schemas) == []
    source = (out_schemas / "dask-gateway" / "SOURCE.txt").read_text()
    assert "https://helm.dask.org" in source and "2026.3.0" in source
    assert "helm pull dask-gateway" in source and "v9.9.9+fake" in source
    assert not [p for p in out_charts.iterdir() if p.name.startswith(".pull-")], "no leftovers"

    # A present chart is kept; --force pulls it again.
    log.write_text("")
    assert _run_fetch(env, "--backend", "helm", *folders).returncode == 0
    assert '"pull"' not in log.read_text()
    assert _run_fetch(env, "--backend", "helm", "--force", *folders).returncode == 0
    assert log.read_text().count('"pull"') == len(PINS)


def test_fetch_uses_the_environment_folders(tmp_path) -> None:
    env, _ = _fake_helm(tmp_path)
    env[charts.CHARTS_ENV], env[charts.SCHEMAS_ENV] = str(tmp_path / "c"), str(tmp_path / "s")
    assert _run_fetch(env, "--backend", "helm").returncode == 0
    assert (tmp_path / "c" / "jupyterhub-4.4.0" / "Chart.yaml").is_file()
    assert (tmp_path / "s" / "binderhub-service" / "values.schema.json").is_file()


def test_fetch_fills_the_user_cache_by_default(tmp_path) -> None:
    env, _ = _fake_helm(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert _run_fetch(env, "--backend", "helm").returncode == 0
    cache = tmp_path / "xdg" / "pangeo-binder"
    assert charts.missing_files(PINS, cache / "charts", cache / "chart-schemas") == []
    env.pop("XDG_CACHE_HOME")
    env["HOME"] = str(tmp_path / "home")
    assert _run_fetch(env, "--backend", "helm").returncode == 0
    home = tmp_path / "home" / ".cache" / "pangeo-binder"
    assert charts.missing_files(PINS, home / "charts", home / "chart-schemas") == []


def test_fetch_with_the_binary_and_no_helm_says_how_to_install_it(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    folders = ("--charts", str(tmp_path / "c"), "--schemas", str(tmp_path / "s"))
    done = _run_fetch(env, "--backend", "helm", *folders)
    assert done.returncode == 1
    assert (
        "`helm` was not found" in done.stderr
        and "https://helm.sh/docs/intro/install/" in done.stderr
    )
    assert not (tmp_path / "c").exists()


def test_a_failed_pull_names_the_chart_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    env, _ = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    broken = ChartPin("broken", "https://example.org/charts", "1.0.0")
    with pytest.raises(
        charts.FetchError,
        match=r"broken 1\.0\.0 from https://example.org/charts failed .*chart not found",
    ):
        charts.fetch((broken,), tmp_path / "c", tmp_path / "s", backend="helm", log=lambda _: None)
    assert list((tmp_path / "c").iterdir()) == []


def test_a_chart_without_a_schema_is_refused(tmp_path, monkeypatch) -> None:
    env, _ = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    pin = ChartPin("noschema", "https://example.org/charts", "1.0.0")
    with pytest.raises(charts.FetchError, match=r"has no values\.schema\.json"):
        charts.fetch((pin,), tmp_path / "c", tmp_path / "s", backend="helm", log=lambda _: None)
    assert list((tmp_path / "c").iterdir()) == [] and not (tmp_path / "s").exists()


# --- fetch with helm-python-sdk, no helm binary ---------------------------------------------------


def _chart_source(root: Path, name: str, version: str, *, schema: bool = True) -> Path:
    """A tiny chart folder, as a chart repository would package it."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {r: '{{ .Values.replicas }}'}\n"
    )
    if schema:
        (chart / "values.schema.json").write_text('{"type": "object"}')
    return chart


class FakePull:
    """Stands in for `helm_python.pull`: takes its real arguments (any other is a TypeError) and
    writes what it writes, a Helm-packaged `<name>-<version>.tgz` in `destination`, returning
    `{"output": ""}` (helm-python-sdk 0.2.2's docstring, and the real pull in
    test_the_real_helm_python_pull_against_a_local_repository)."""

    SIGNATURE = inspect.signature(helm_python.pull)

    def __init__(self, tmp_path: Path, *, chart_yaml_version: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.sources = tmp_path / "sources"
        self.chart_yaml_version = chart_yaml_version  # a repository serving the wrong chart

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = self.SIGNATURE.bind(*args, **kwargs).arguments
        self.calls.append(bound)
        name, version = bound["chart_ref"], bound["version"]
        if name == "broken":
            raise helm_python.HelmRepoError(
                f'chart "broken" version "{version}" not found in {bound["repo_url"]} repository'
            )
        if name == "misnamed":
            (Path(bound["destination"]) / "other.tgz").write_bytes(b"")
            return {"output": ""}
        source = _chart_source(
            self.sources / f"{name}-{len(self.calls)}",
            name,
            self.chart_yaml_version or version,
            schema=name != "noschema",
        )
        packaged = Path(helm_python.package(source, destination=bound["destination"]))
        packaged.rename(Path(bound["destination"]) / f"{name}-{version}.tgz")
        return {"output": ""}


@pytest.fixture
def no_helm_binary(tmp_path, monkeypatch) -> None:
    (tmp_path / "empty-path").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))


@pytest.fixture
def fake_pull(tmp_path, monkeypatch) -> FakePull:
    fake = FakePull(tmp_path)
    monkeypatch.setattr(helm_python, "pull", fake)
    return fake


def test_fetch_with_helm_python_needs_no_helm_binary(
    tmp_path, no_helm_binary, fake_pull, capsys
) -> None:
    out_charts, out_schemas = tmp_path / "charts", tmp_path / "schemas"
    folders = ["--charts", str(out_charts), "--schemas", str(out_schemas)]
    assert charts.main(["fetch", *folders]) == 0, capsys.readouterr().err
    assert [
        (c["chart_ref"], c["repo_url"], c["version"], Path(c["destination"]).parent.parent)
        for c in fake_pull.calls
    ] == [(p.name, p.repository, p.version, out_charts) for p in PINS]
    assert all(
        set(c) == {"chart_ref", "repo_url", "version", "destination"} for c in fake_pull.calls
    )
    assert charts.missing_files(PINS, out_charts, out_schemas) == []
    assert sorted(p.name for p in out_charts.iterdir()) == sorted(p.dirname for p in PINS)
    unpacked = helm_python.Chart.load(charts.chart_dir(charts.BINDERHUB_SERVICE, out_charts))
    assert (unpacked.name, unpacked.version) == (
        "binderhub-service",
        "0.1.0-0.dev.git.336.hca79dc0",
    )
    assert (charts.chart_dir(charts.JUPYTERHUB, out_charts) / "templates" / "cm.yaml").is_file()
    source = (out_schemas / "jupyterhub" / "SOURCE.txt").read_text()
    assert "repository: https://jupyterhub.github.io/helm-chart\nchart: jupyterhub\n" in source
    assert "helm_python.pull('jupyterhub'" in source
    assert f"helm-python-sdk {helm_python.__version__}, Helm v4." in source
    assert (out_schemas / "jupyterhub" / "values.schema.json").read_text() == '{"type": "object"}'

    # A present chart is kept; --force pulls it again.
    assert charts.main(["fetch", *folders]) == 0
    assert len(fake_pull.calls) == len(PINS)
    assert charts.main(["fetch", "--force", *folders]) == 0
    assert len(fake_pull.calls) == 2 * len(PINS)
    assert not [p for p in out_charts.iterdir() if p.name.startswith(".pull-")], "no leftovers"


def test_auto_prefers_helm_python_to_the_binary(tmp_path, monkeypatch, fake_pull) -> None:
    env, log = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    charts.fetch(PINS[:1], tmp_path / "c", tmp_path / "s", log=lambda _: None)
    assert len(fake_pull.calls) == 1
    assert not log.exists() or '"pull"' not in log.read_text()


def test_auto_falls_back_to_the_binary_without_helm_python(tmp_path, monkeypatch) -> None:
    env, log = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setitem(sys.modules, "helm_python", None)  # `import helm_python` fails
    charts.fetch(PINS[:1], tmp_path / "c", tmp_path / "s", log=lambda _: None)
    assert log.read_text().count('"pull"') == 1
    assert "helm pull jupyterhub" in (tmp_path / "s" / "jupyterhub" / "SOURCE.txt").read_text()


def test_nothing_to_pull_with_names_both_ways(tmp_path, monkeypatch, no_helm_binary) -> None:
    monkeypatch.setitem(sys.modules, "helm_python", None)
    with pytest.raises(charts.FetchError) as refused:
        charts.fetch(PINS, tmp_path / "c", tmp_path / "s", log=lambda _: None)
    message = str(refused.value)
    assert "helm-python-sdk is not installed" in message and "make venv" in message
    assert "`helm` was not found" in message and "https://helm.sh/docs/intro/install/" in message
    with pytest.raises(charts.FetchError, match="unknown backend 'hlem'"):
        charts.fetch(PINS, tmp_path / "c", tmp_path / "s", backend="hlem")
    assert not (tmp_path / "c").exists() and not (tmp_path / "s").exists()


def test_a_chosen_backend_never_falls_back(tmp_path, monkeypatch, fake_pull) -> None:
    env, log = _fake_helm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setitem(sys.modules, "helm_python", None)
    with pytest.raises(charts.FetchError, match=r"^helm-python-sdk is not installed.*make venv"):
        charts.fetch(PINS, tmp_path / "c", tmp_path / "s", backend="helm-python")
    assert not log.exists(), "the helm binary was not run"
    monkeypatch.setitem(sys.modules, "helm_python", helm_python)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(charts.FetchError, match=r"^`helm` was not found on PATH"):
        charts.fetch(PINS, tmp_path / "c", tmp_path / "s", backend="helm")
    assert fake_pull.calls == []


def test_the_cli_refuses_with_the_reason_and_exit_1(
    tmp_path, monkeypatch, no_helm_binary, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "helm_python", None)
    assert charts.main(["fetch", "--charts", str(tmp_path / "c")]) == 1
    assert capsys.readouterr().err.startswith("error: nothing can pull the charts.")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (
            "broken",
            r"helm_python\.pull broken 1\.0\.0 from https://example\.org/charts failed "
            r"\(HelmRepoError\): chart \"broken\" version \"1\.0\.0\" not found",
        ),
        ("misnamed", r"wrote no misnamed-1\.0\.0\.tgz \(found: other\.tgz\)"),
        ("noschema", r"noschema 1\.0\.0 from https://example\.org/charts has no values\.schema"),
    ],
)
def test_a_failed_helm_python_pull_is_refused_and_leaves_nothing(
    name: str, problem: str, tmp_path, no_helm_binary, fake_pull
) -> None:
    pin = ChartPin(name, "https://example.org/charts", "1.0.0")
    with pytest.raises(charts.FetchError, match=problem):
        charts.fetch((pin,), tmp_path / "c", tmp_path / "s", log=lambda _: None)
    assert list((tmp_path / "c").iterdir()) == [] and not (tmp_path / "s").exists()


def test_a_pulled_chart_that_is_not_the_pinned_version_is_refused(
    tmp_path, monkeypatch, no_helm_binary
) -> None:
    monkeypatch.setattr(helm_python, "pull", FakePull(tmp_path, chart_yaml_version="9.9.9"))
    with pytest.raises(charts.FetchError, match=r"but its Chart.yaml says dask-gateway 9\.9\.9"):
        charts.fetch((charts.DASK_GATEWAY,), tmp_path / "c", tmp_path / "s", log=lambda _: None)
    assert list((tmp_path / "c").iterdir()) == []


# The real helm_python.pull, over HTTP from a chart repository on 127.0.0.1. In a subprocess:
# Helm's Go library reads HOME and HELM_*_HOME once, when it loads, and writes its cache there.
LOCAL_REPOSITORY = textwrap.dedent(
    """\
    import functools, http.server, json, sys, threading
    from pathlib import Path
    import helm_python
    from pangeo_binder import charts
    repo, out, versions = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(repo))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    helm_python.repo_index_generate(repo, base_url=url)
    pins = [charts.ChartPin(name, url, version) for name, version in versions]
    try:
        charts.fetch(pins, out / "charts", out / "schemas", backend="helm-python")
    except charts.FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    """
)


def test_the_real_helm_python_pull_against_a_local_repository(tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    version = "0.1.0-0.dev.git.336.hca79dc0"  # a pre-release, as binderhub-service publishes
    helm_python.package(_chart_source(tmp_path / "src", "local", version), destination=repo)
    helm_python.package(_chart_source(tmp_path / "src", "other", "1.0.0"), destination=repo)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PATH": str(tmp_path / "empty")}
    env["HELM_CACHE_HOME"] = str(tmp_path / "helm-cache")

    def run(*versions: tuple[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", LOCAL_REPOSITORY, repo, tmp_path / "out", json.dumps(versions)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    done = run(("local", version), ("other", "1.0.0"))
    assert done.returncode == 0, done.stderr
    pulled = tmp_path / "out" / "charts" / f"local-{version}"
    assert (pulled / "Chart.yaml").read_text() == (
        tmp_path / "src" / "local" / "Chart.yaml"
    ).read_text()
    assert (pulled / "templates" / "cm.yaml").is_file()
    assert (tmp_path / "out" / "schemas" / "other" / "values.schema.json").is_file()
    assert (
        "helm_python.pull('local'"
        in (tmp_path / "out" / "schemas" / "local" / "SOURCE.txt").read_text()
    )

    missing = run(("local", "9.9.9"))
    assert missing.returncode == 1
    assert 'failed (HelmRepoError): chart "local" version "9.9.9" not found' in missing.stderr
