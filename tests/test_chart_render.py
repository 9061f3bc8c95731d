"""The chart machinery the hub tests rely on: real templates rendered offline, values checked
against the charts' schemas with Helm's merge, every object checked against Kubernetes' schemas
(custom resources against their CRDs). `python -m pangeo_binder.charts fetch` is tested in
tests/test_charts_fetch.py.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import helm_python
import pytest
import yaml

import chart_render
from chart_render import (
    ObjectsInvalid,
    RenderError,
    ValuesInvalid,
    coalesce,
    find,
    hooks,
    merged_values,
    null_paths,
    object_problems,
    render,
    require_chart_files,
    schema_version,
    validate_objects,
    validate_values,
    values_errors,
)
from pangeo_binder import charts
from pangeo_binder.charts import BINDERHUB_SERVICE, DASK_GATEWAY, JUPYTERHUB, PINS, ChartPin

ROOT = Path(__file__).resolve().parent.parent

# Small but realistic values: what each chart needs to render a working release.
HUB_VALUES = {
    "fullnameOverride": "",
    "hub": {
        "config": {
            "JupyterHub": {"authenticator_class": "dummy"},
            "DummyAuthenticator": {"password": "not-a-real-password"},
        },
        "cookieSecret": "c" * 64,
    },
    "proxy": {
        "secretToken": "a" * 64,
        "https": {
            "enabled": True,
            "type": "letsencrypt",
            "hosts": ["hub.example.org"],
            "letsencrypt": {"contactEmail": "ops@example.org"},
        },
    },
    "prePuller": {"hook": {"enabled": False}},
}
GATEWAY_VALUES = {
    "fullnameOverride": "dask-gateway",
    "gateway": {
        "auth": {
            "type": "jupyterhub",
            "jupyterhub": {
                "apiToken": "t" * 64,
                "apiUrl": "http://hub:8081/hub/api",
                "jupyterhubServiceName": "dask-gateway",
            },
        }
    },
    "traefik": {"service": {"type": "ClusterIP"}},
}
BINDER_VALUES = {
    "fullnameOverride": "binderhub",
    "config": {
        "BinderHub": {
            "base_url": "/services/binder/",
            "hub_url": "https://hub.example.org",
            "use_registry": True,
            "image_prefix": "us-central1-docker.pkg.dev/example/binder/binder-",
        }
    },
    "buildPodsRegistryCredentials": {
        "server": "https://us-central1-docker.pkg.dev",
        "username": "_json_key",
        "password": "not-a-real-key",
    },
}
CASES = {
    "jupyterhub": (JUPYTERHUB, HUB_VALUES, "jupyterhub"),
    "dask-gateway": (DASK_GATEWAY, GATEWAY_VALUES, "dask-gateway"),
    "binderhub-service": (BINDERHUB_SERVICE, BINDER_VALUES, "binderhub"),
}


@pytest.fixture(autouse=True)
def _charts(request: pytest.FixtureRequest) -> None:
    """Every test here but the skip/fail and fetch ones needs the chart files."""
    if "no_charts" not in request.keywords:
        request.getfixturevalue("chart_files")


no_charts = pytest.mark.no_charts


def test_pins_match_the_chart_sources() -> None:
    for pin in PINS:
        chart = helm_python.Chart.load(charts.chart_dir(pin))
        assert (chart.name, chart.version) == (pin.name, pin.version)
    assert {p.name for p in PINS} == {
        "jupyterhub", "dask-gateway", "binderhub-service", "prometheus", "grafana", "opencost",
    }  # fmt: skip


@pytest.mark.parametrize("pin", PINS, ids=lambda p: p.name)
def test_each_chart_supports_the_clusters_kubernetes(pin: ChartPin) -> None:
    # Helm checks Chart.yaml's kubeVersion against its own default version offline, not ours.
    constraint = helm_python.Chart.load(charts.chart_dir(pin)).metadata.get("kubeVersion")
    if constraint is None:  # opencost states none
        assert pin.name == "opencost"
        return
    # `>=1.28.0-0`, or grafana's caret `^1.25.0-0` (>=1.25.0, <2.0.0).
    minimum = re.fullmatch(r"(?:>=|\^)\s*(\d+)\.(\d+)\.\d+(-0)?", constraint)
    assert minimum, f"{pin.name}: an unexpected kubeVersion constraint {constraint!r}"
    ours = tuple(int(x) for x in chart_render.KUBERNETES_VERSION.split("."))
    assert (int(minimum[1]), int(minimum[2])) <= ours


def _strip_descriptions(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: _strip_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_strip_descriptions(v) for v in schema]
    return schema


@pytest.mark.parametrize("pin", [p for p in PINS if p.schema], ids=lambda p: p.name)
def test_the_schemas_folder_holds_the_charts_own_schema(pin: ChartPin) -> None:
    # What Helm checks while rendering (the package's schema) is what validate_values checks.
    packaged = helm_python.Chart.load(charts.chart_dir(pin)).schema
    assert _strip_descriptions(chart_render.values_schema(pin)) == _strip_descriptions(packaged)


# --- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_each_chart_renders_and_every_object_is_valid(case: str) -> None:
    pin, values, release = CASES[case]
    validate_values(pin, values)
    objects = render(pin, values, release=release, namespace="hub")
    validate_objects(objects)
    assert all(o.get("kind") and o.get("apiVersion") for o in objects)
    assert find(objects, "Deployment"), "every chart here runs at least one Deployment"


def test_jupyterhub_renders_the_hub_proxy_and_https_with_our_values() -> None:
    objects = render(JUPYTERHUB, HUB_VALUES, release="jupyterhub", namespace="hub")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "hub"), ("Deployment", "proxy"), ("Deployment", "autohttps")} <= names
    assert ("Service", "proxy-public") in names
    assert not hooks(objects) and not find(objects, "Job"), "prePuller.hook is off: no hook"
    with_hook = render(
        JUPYTERHUB,
        coalesce(HUB_VALUES, {"prePuller": {"hook": {"enabled": True}}}),
        release="jupyterhub",
        namespace="hub",
    )
    assert {o["kind"] for o in hooks(with_hook)} >= {"Job", "DaemonSet"}
    # The values reached the templates: the hub reads its config from this secret.
    secret = find(objects, "Secret", "hub")[0]
    hub_values = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    assert hub_values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "dummy"
    token = secret["data"]["hub.config.ConfigurableHTTPProxy.auth_token"]
    assert base64.b64decode(token).decode() == "a" * 64


def test_z2jh_regenerates_unset_secrets_on_every_offline_render() -> None:
    # lookup finds no live Secret offline, so a secret the values leave unset (here the auth
    # state keys) changes from one render to the next: the hub must set every one (issue 6).
    keys = []
    for _ in range(2):
        chart_render._render_cached.cache_clear()
        objects = render(JUPYTERHUB, HUB_VALUES, release="jupyterhub", namespace="hub")
        data = find(objects, "Secret", "hub")[0]["data"]
        keys.append(
            (data["hub.config.CryptKeeper.keys"], data["hub.config.JupyterHub.cookie_secret"])
        )
    assert keys[0][0] != keys[1][0], "unset: generated afresh"
    assert keys[0][1] == keys[1][1], "set in the values: stable"


def test_dask_gateway_renders_its_crds_and_custom_resources() -> None:
    objects = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    crds = {o["spec"]["names"]["kind"] for o in find(objects, "CustomResourceDefinition")}
    assert {"DaskCluster", "IngressRoute", "Middleware"} <= crds
    assert find(objects, "IngressRoute") and find(objects, "Middleware")
    assert find(objects, "Service", "traefik-dask-gateway")[0]["spec"]["type"] == "ClusterIP"


def test_binderhub_service_renders_with_our_config() -> None:
    objects = render(BINDERHUB_SERVICE, BINDER_VALUES, release="binderhub", namespace="hub")
    (deployment,) = find(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/services/binder/versions"
    (config,) = [
        s for s in find(objects, "Secret") if "chart-config.yaml" in s.get("stringData", {})
    ]
    binderhub = yaml.safe_load(config["stringData"]["chart-config.yaml"])["config"]["BinderHub"]
    assert binderhub["hub_url"] == "https://hub.example.org"
    assert binderhub["enable_api_only_mode"] is True, "a chart default kept by the merge"


def test_render_returns_copies_from_its_cache() -> None:
    first = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    first[0]["kind"] = "Mutated"
    again = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    assert again[0]["kind"] == "CustomResourceDefinition"


def test_release_and_namespace_reach_the_templates() -> None:
    objects = render(DASK_GATEWAY, {}, release="other", namespace="elsewhere")
    assert find(objects, "Deployment", "api-other-dask-gateway")
    binding = find(objects, "ClusterRoleBinding", "api-other-dask-gateway")[0]
    assert binding["subjects"][0]["namespace"] == "elsewhere"


# --- values against the schema, and Helm's own checks while rendering ---------------------------


def test_bad_values_are_refused_with_every_path() -> None:
    bad = coalesce(HUB_VALUES, {"hub": {"bogusKey": 1}, "proxy": {"service": {"type": 5}}})
    with pytest.raises(ValuesInvalid) as refused:
        validate_values(JUPYTERHUB, bad)
    paths = [e.split(":")[0] for e in refused.value.errors]
    assert paths == ["hub", "proxy.service.type"], refused.value.errors
    assert "bogusKey" in refused.value.errors[0]


def test_helm_applies_the_schema_while_rendering() -> None:
    with pytest.raises(RenderError, match="bogusKey"):
        render(
            JUPYTERHUB, coalesce(HUB_VALUES, {"hub": {"bogusKey": 1}}), release="j", namespace="hub"
        )


def test_schema_checks_the_merged_values_not_only_ours() -> None:
    # Deleting a key the schema requires is only visible after the merge with the defaults.
    assert any(
        e.startswith("(root)") and "'cull'" in e for e in values_errors(JUPYTERHUB, {"cull": None})
    )


def test_a_template_fail_surfaces_as_an_error() -> None:
    # z2jh refuses blocking the metadata server with iptables while its network policy allows it.
    ambiguous = coalesce(
        HUB_VALUES,
        {
            "singleuser": {
                "cloudMetadata": {"blockWithIptables": True},
                "networkPolicy": {"egressAllowRules": {"cloudMetadataServer": True}},
            }
        },
    )
    validate_values(JUPYTERHUB, ambiguous)  # the schema has nothing against it ...
    with pytest.raises(RenderError, match="ambiguous configuration"):  # ... the template fails
        render(JUPYTERHUB, ambiguous, release="jupyterhub", namespace="hub")


# --- Helm's merge -------------------------------------------------------------------------------


def test_merge_lists_replace_maps_merge_null_deletes() -> None:
    defaults = merged_values(JUPYTERHUB, {})
    assert defaults["scheduling"]["userScheduler"]["plugins"]["score"]["disabled"], (
        "a non-empty default list"
    )
    assert defaults["hub"]["config"]["JupyterHub"]["admin_access"] is True
    ours = {
        "scheduling": {"userScheduler": {"plugins": {"score": {"disabled": [{"name": "Only"}]}}}},
        "hub": {"config": {"JupyterHub": {"admin_access": None, "new_key": 1}}},
    }
    merged = merged_values(JUPYTERHUB, ours)
    assert merged["scheduling"]["userScheduler"]["plugins"]["score"]["disabled"] == [
        {"name": "Only"}
    ]
    assert "admin_access" not in merged["hub"]["config"]["JupyterHub"]
    assert merged["hub"]["config"]["JupyterHub"]["new_key"] == 1
    assert (
        merged["hub"]["config"]["JupyterHub"]["authenticator_class"]
        == defaults["hub"]["config"]["JupyterHub"]["authenticator_class"]
    )
    assert merged["hub"]["image"] == defaults["hub"]["image"], "sibling maps are kept"


@pytest.mark.parametrize("case", CASES)
def test_merge_is_the_one_helm_performs(case: str) -> None:
    pin, values, _ = CASES[case]
    extra = {"nameOverride": None, "not_in_defaults": None, "global": {"x": [1]}}
    chart = helm_python.Chart.load(charts.chart_dir(pin))
    for ours in (values, coalesce(values, extra)):
        assert merged_values(pin, ours) == chart.merge_values(ours)


@no_charts
def test_null_paths_finds_every_deletion() -> None:
    assert null_paths(HUB_VALUES) == []
    assert null_paths({"a": None, "b": {"c": None, "d": [None]}, "e": 1}) == ["a", "b.c"]


COALESCE_CASES = [
    {},
    {"x": None, "m": {"d": None, "n": {"y": None}}, "a": None},
    {"a": 1, "m": None},
    {"k": {"z": 1}},
    {"m": 3},
    {"e": {"q": None}},
    {"a": {"p": None}},
    {"m": {"l": [None], "deep": {"x": 1}}},
]


@no_charts
@pytest.mark.parametrize("ours", COALESCE_CASES)
def test_coalesce_matches_helm_on_the_edge_cases(ours: dict, tmp_path: Path) -> None:
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: edge\nversion: 0.1.0\n")
    defaults = {
        "a": None,
        "m": {"b": None, "c": 1, "l": [1, None], "deep": {"x": None}},
        "k": 5,
        "e": {},
    }
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(defaults))
    assert coalesce(defaults, ours) == helm_python.Chart.load(tmp_path).merge_values(ours)


# --- object validation --------------------------------------------------------------------------


def test_invalid_objects_are_reported_with_kind_name_and_path() -> None:
    objects = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    find(objects, "Deployment", "api-dask-gateway")[0]["spec"]["template"]["spec"]["containers"][0][
        "bogus"
    ] = 1
    find(objects, "Service", "api-dask-gateway")[0]["spec"]["ports"][0]["port"] = "http"
    find(objects, "IngressRoute")[0]["spec"]["routes"][0]["kind"] = "Nope"
    find(objects, "Middleware")[0]["spec"]["unknownMiddleware"] = {}
    objects.append({"apiVersion": "example.org/v1", "kind": "Unknown", "metadata": {"name": "x"}})
    objects.append(find(objects, "ConfigMap")[0])
    with pytest.raises(ObjectsInvalid) as invalid:
        validate_objects(objects)
    problems = invalid.value.problems
    expected = [
        "Deployment/api-dask-gateway: spec.template.spec.containers.0: ",
        "Service/api-dask-gateway: spec.ports.0.port: ",
        "IngressRoute/api-dask-gateway: spec.routes.0.kind: ",
        "Middleware/clusters-prefix-dask-gateway: spec: ",
        "Unknown/x: (root): no schema",
        "ConfigMap/",
    ]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    assert len(problems) == len(expected), problems


def test_strict_refuses_unknown_fields_and_lenient_does_not() -> None:
    objects = render(BINDERHUB_SERVICE, BINDER_VALUES, release="binderhub", namespace="hub")
    find(objects, "Deployment")[0]["spec"]["unknownField"] = 1
    assert object_problems(objects, strict=False) == []
    assert [p.split(": ")[1] for p in object_problems(objects)] == ["spec"]


def test_custom_resources_need_their_crd() -> None:
    objects = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    without_crds = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    problems = object_problems(without_crds)
    assert problems and all("no schema" in p for p in problems)
    assert {p.split(":")[0] for p in problems} == {
        "IngressRoute/api-dask-gateway",
        "Middleware/clusters-prefix-dask-gateway",
    }
    assert object_problems(without_crds, crds=find(objects, "CustomResourceDefinition")) == []


@no_charts
def test_schemas_are_the_newest_not_newer_than_the_cluster() -> None:
    assert schema_version("1.33") == "1.33.0"
    assert schema_version("v1.35.2") == "1.35.0"
    assert schema_version("1.99").startswith("1.3")
    with pytest.raises(ValueError):
        schema_version("1.10")


# --- speed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_rendering_stays_fast(case: str) -> None:
    pin, values, release = CASES[case]
    chart_render._render_cached.cache_clear()
    start = time.perf_counter()
    objects = render(pin, values, release=release, namespace="hub")
    validate_objects(objects)
    assert time.perf_counter() - start < 5, "a real (uncached) render and validation"


# --- missing chart files: skip, or fail under CI ------------------------------------------------


def _outcome(call) -> BaseException | None:
    """What `call` raised, pytest's skip and fail outcomes included (they are BaseExceptions)."""
    try:
        call()
    except BaseException as raised:
        return raised
    return None


@no_charts
def test_missing_charts_skip_with_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(charts.CHARTS_ENV, str(tmp_path / "charts"))
    monkeypatch.setenv(charts.SCHEMAS_ENV, str(tmp_path / "schemas"))
    monkeypatch.delenv("CI", raising=False)
    for call in (
        require_chart_files,
        lambda: render(JUPYTERHUB, {}, release="j", namespace="hub"),
        lambda: validate_values(DASK_GATEWAY, {}),
        lambda: merged_values(BINDERHUB_SERVICE, {}),
    ):
        outcome = _outcome(call)
        assert type(outcome) is pytest.skip.Exception, outcome
        assert charts.FETCH_COMMAND in str(outcome)
        assert f"looked in {tmp_path / 'charts'} " in str(outcome)
        assert f" and {tmp_path / 'schemas'} " in str(outcome)


@no_charts
@pytest.mark.parametrize("ci", ["true", "True", "1"])
def test_missing_charts_fail_under_ci(ci: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(charts.CHARTS_ENV, str(tmp_path / "charts"))
    monkeypatch.setenv("CI", ci)
    for call in (
        require_chart_files,
        lambda: render(DASK_GATEWAY, {}, release="d", namespace="hub"),
    ):
        outcome = _outcome(call)
        assert type(outcome) is pytest.fail.Exception, outcome
        assert charts.FETCH_COMMAND in str(outcome)
        assert f"looked in {tmp_path / 'charts'} " in str(outcome)


@no_charts
@pytest.mark.parametrize("ci", [None, "true"])
def test_the_chart_files_fixture_in_a_real_session(ci: str | None, tmp_path) -> None:
    # The whole path: conftest's fixture in a pytest run without the charts, nor the variables,
    # nor anything in the default cache.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for name in ("CI", charts.CHARTS_ENV, charts.SCHEMAS_ENV):
        env.pop(name, None)
    if ci:
        env["CI"] = ci
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"{Path(__file__).name}::test_pins_match_the_chart_sources",
        ],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert charts.FETCH_COMMAND in run.stdout, run.stdout
    assert str(tmp_path / "cache" / "pangeo-binder" / "charts") in run.stdout, run.stdout
    if ci:
        assert run.returncode == 1 and "1 error" in run.stdout, run.stdout
    else:
        assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout


@no_charts
def test_folders_default_to_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(charts.CHARTS_ENV, raising=False)
    monkeypatch.delenv(charts.SCHEMAS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert charts.chart_sources_dir() == tmp_path / "xdg" / "pangeo-binder" / "charts"
    assert charts.chart_schemas_dir() == tmp_path / "xdg" / "pangeo-binder" / "chart-schemas"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for xdg in ("", "relative/cache"):  # unset, or relative: ignored, as the XDG spec says
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert (
            charts.chart_sources_dir() == tmp_path / "home" / ".cache" / "pangeo-binder" / "charts"
        )
        assert charts.chart_schemas_dir() == (
            tmp_path / "home" / ".cache" / "pangeo-binder" / "chart-schemas"
        )
    assert charts.chart_dir(DASK_GATEWAY).name == "dask-gateway-2026.3.0"
    monkeypatch.setenv(charts.SCHEMAS_ENV, "/x")
    assert charts.schema_dir(JUPYTERHUB) == Path("/x/jupyterhub")
    monkeypatch.setenv(charts.CHARTS_ENV, "/y")
    assert charts.chart_dir(JUPYTERHUB) == Path("/y/jupyterhub-4.4.0")


@no_charts
def test_offline_rendering_limits(tmp_path: Path) -> None:
    # What the module docstring of chart_render.py says: lookup finds nothing, the Kubernetes
    # version is Helm's default, and only built-in API groups are known.
    (tmp_path / "templates").mkdir()
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: limits\nversion: 0.1.0\n")
    (tmp_path / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: limits}\ndata:\n"
        "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        '  lookup: {{ lookup "v1" "Secret" .Release.Namespace "hub" | toJson | quote }}\n'
        '  policy: {{ .Capabilities.APIVersions.Has "policy/v1" | quote }}\n'
        '  traefik: {{ .Capabilities.APIVersions.Has "traefik.io/v1alpha1" | quote }}\n'
    )
    rendered = helm_python.Chart.load(tmp_path).render(
        {}, name="r", namespace="hub", is_install=True
    )
    data = yaml.safe_load(rendered["limits/templates/cm.yaml"])["data"]
    assert (data["lookup"], data["policy"], data["traefik"]) == ("{}", "true", "false")
    # Helm's built-in default (v1.36.0 in Helm v4.2.3): it must satisfy the charts' kubeVersion
    # constraints (>=1.30 at most), else they would refuse to render.
    assert tuple(map(int, data["kube"].lstrip("v").split(".")[:2])) >= (1, 30), data["kube"]


def test_names_and_labels_follow_kubernetes_rules() -> None:
    # The OpenAPI schemas do not check these; the API server does.
    objects = render(DASK_GATEWAY, GATEWAY_VALUES, release="dask-gateway", namespace="hub")
    assert object_problems(objects) == []
    find(objects, "Service", "api-dask-gateway")[0]["metadata"]["name"] = "a" * 64
    find(objects, "ConfigMap")[0]["metadata"]["name"] = "Upper_Case"
    find(objects, "ClusterRole")[0]["metadata"]["name"] = "system:dask-gateway"  # allowed
    deployment = find(objects, "Deployment")[0]
    deployment["metadata"]["labels"]["app.kubernetes.io/instance"] = "x" * 64
    deployment["spec"]["template"]["metadata"]["labels"]["bad/key/x"] = "v"
    problems = object_problems(objects)
    assert sorted(p.split(": ")[:2] for p in problems) == [
        ["ConfigMap/Upper_Case", "metadata.name"],
        ["Deployment/controller-dask-gateway", "metadata.labels"],
        ["Deployment/controller-dask-gateway", "spec.template.metadata.labels"],
        ["Service/" + "a" * 64, "metadata.name"],
    ], problems


def test_release_names_follow_helms_rule() -> None:
    with pytest.raises(RenderError, match="release name"):
        render(DASK_GATEWAY, GATEWAY_VALUES, release="r" * 54, namespace="hub")
