"""checkov's Kubernetes checks over every object the pinned charts render for both stacks.

Every Helm release the real program registers (each `helm.v4.Chart` of the recorded run, for
both stacks and clouds: read from the recording, so a release added later is checked too) is
rendered once per session with the values the program built (tests/chart_render.py: Helm's own
library, offline), each object is written to a file of its own (so a finding names its object
exactly), and checkov runs once over all of them, offline. Its findings are compared with the
reviewed baseline, tests/checkov-baseline.yaml: a finding it does not list fails the suite with
the check id and the object, and so does a baseline entry that matches no finding any more (so
the baseline shrinks as fixes land). Every entry carries a reason. How to review one:
CONTRIBUTING.md, "The checkov baseline".

checkov lives in a locked environment of its own (tests/checkov-tools, installed by `make
checkov-tools`, which `make test` runs): its pins conflict with ours. Without it the test skips
with that command, or fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_render import find, render
from conftest import HELM, release
from harness import ROOT, Run, skip_or_fail
from pangeo_binder.charts import BINDERHUB_SERVICE, JUPYTERHUB, PINS, ChartPin

pytestmark = pytest.mark.usefixtures("chart_files")

TOOLS = ROOT / "tests" / "checkov-tools"
CHECKOV = TOOLS / ".venv" / "bin" / "checkov"
BASELINE = ROOT / "tests" / "checkov-baseline.yaml"
PINNED = {(pin.name, pin.version): pin for pin in PINS}
# checkov reaches out unless told not to: the Prisma Cloud policy mapping and guide links
# (BC_SKIP_MAPPING, --skip-download) and the PyPI update check (CKV_SKIP_PACKAGE_UPDATE_CHECK,
# read by checkov/common/util/banner.py) are switched off, so the run is offline and repeatable.
OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
    "LOG_LEVEL": "ERROR",
}


def require_checkov() -> Path:
    """checkov's own environment, or skip with the command that installs it (fail under CI)."""
    if CHECKOV.exists():
        return CHECKOV
    message = f"checkov is not installed in {TOOLS}: run `make checkov-tools`"
    skip_or_fail(message)


def helm_releases(run: Run) -> list[tuple[str, ChartPin, dict[str, Any]]]:
    """Every `helm.v4.Chart` the program registered: (resource name, its pin, its inputs). A chart
    that charts.py does not pin cannot be rendered offline, and fails here rather than escape."""
    found = []
    for registration in run.of_type(HELM):
        inputs = registration.inputs
        pin = PINNED.get((inputs["chart"], inputs["version"]))
        assert pin, f"{registration.name}: {inputs['chart']} {inputs['version']} is not in PINS"
        found.append((registration.name, pin, inputs))
    return found


def object_key(release_name: str, obj: dict[str, Any]) -> str:
    """How the baseline names an object: `release/Kind/name` (the same in every stack)."""
    return f"{release_name}/{obj['kind']}/{obj['metadata']['name']}"


def write_objects(runs: dict[str, Run], folder: Path) -> dict[str, str]:
    """Every rendered object in a file of its own; returns file name -> object key."""
    files: dict[str, str] = {}
    for stack, run in runs.items():
        for resource, pin, inputs in helm_releases(run):
            objects = render(
                pin, inputs["values"], release=inputs["name"], namespace=inputs["namespace"]
            )
            for index, obj in enumerate(objects):
                key = object_key(inputs["name"], obj)
                safe = re.sub(r"[^A-Za-z0-9.-]", "_", key)
                name = f"{stack}-{resource}-{index:03d}-{safe}.yaml"
                (folder / name).write_text(yaml.safe_dump(obj, sort_keys=False))
                files[name] = key
    return files


def run_checkov(checkov: Path, folder: Path) -> dict[str, Any]:
    """checkov's Kubernetes framework over `folder`, offline, its JSON report."""
    env = {**os.environ, **OFFLINE_ENV}
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
            "--soft-fail",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="session")
def checkov_report(
    staging: Run, prod: Run, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One checkov run over both stacks' rendered objects: its findings and counts."""
    checkov = require_checkov()
    folder = tmp_path_factory.mktemp("rendered")
    runs = {"staging": staging, "prod": prod}
    files = write_objects(runs, folder)
    report = run_checkov(checkov, folder)
    failed = report["results"]["failed_checks"]
    found = {(check["check_id"], files[Path(check["file_path"]).name]) for check in failed}
    return {
        "files": files,
        "releases": [
            (stack, resource, inputs["name"])
            for stack, run in runs.items()
            for resource, _, inputs in helm_releases(run)
        ],
        "found": found,
        "failed": len(failed),
        "passed": report["summary"]["passed"],
        "names": {check["check_id"]: check["check_name"] for check in failed},
    }


def load_baseline(path: Path = BASELINE) -> list[dict[str, Any]]:
    """The reviewed entries: a check id, its objects, and the reason they are accepted."""
    entries = yaml.safe_load(path.read_text())["accepted"]
    for entry in entries:
        assert set(entry) == {"check", "objects", "reason"}, entry
        assert re.fullmatch(r"CKV2?_K8S_\d+", entry["check"]), entry["check"]
        assert entry["objects"] and entry["reason"].strip(), entry["check"]
    return entries


def accepted(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(entry["check"], key) for entry in entries for key in entry["objects"]}


def test_every_baseline_entry_has_a_reason_and_no_pair_is_listed_twice() -> None:
    entries = load_baseline()
    pairs = [(entry["check"], key) for entry in entries for key in entry["objects"]]
    assert [pair for pair, n in Counter(pairs).items() if n > 1] == []
    for entry in entries:
        reason = entry["reason"].strip()
        assert len(reason) > 20 and "\n" not in reason, entry["check"]


def test_checkov_ran_over_every_rendered_object(checkov_report: dict[str, Any]) -> None:
    files = checkov_report["files"]
    releases = checkov_report["releases"]
    # Every release the program registers rendered objects that checkov read.
    for stack, resource, _ in releases:
        prefix = f"{stack}-{resource}-"
        assert any(f.startswith(prefix) for f in files), (stack, resource)
    # Each stack and cloud renders the hub, the proxy, BinderHub and the gateway; staging (both
    # clouds) the public Binder's own hub and BinderHub beside them; the support stack too.
    for key in ("jupyterhub/Deployment/hub", "jupyterhub/Deployment/proxy"):
        assert sum(1 for k in files.values() if k == key) == 4, key
    names = {name for _, _, name in releases}
    assert {"binderhub-service", "dask-gateway", "public-jupyterhub", "prometheus"} <= names
    assert checkov_report["passed"] > 1000  # the checks ran, not only parsed


def test_no_finding_outside_the_baseline(checkov_report: dict[str, Any]) -> None:
    new = sorted(checkov_report["found"] - accepted(load_baseline()))
    names = checkov_report["names"]
    assert new == [], "new checkov findings (fix them, or review and add to {}):\n{}".format(
        BASELINE.relative_to(ROOT),
        "\n".join(f"  {check} {key}: {names.get(check, '')}" for check, key in new),
    )


def test_no_baseline_entry_outlives_its_finding(checkov_report: dict[str, Any]) -> None:
    stale = sorted(accepted(load_baseline()) - checkov_report["found"])
    assert stale == [], "baseline entries that match no finding any more (remove them):\n" + (
        "\n".join(f"  {check} {key}" for check, key in stale)
    )


def test_a_dropped_entry_and_an_invented_one_are_both_caught(
    checkov_report: dict[str, Any], tmp_path: Path
) -> None:
    """The two comparisons above, on a baseline with one real finding removed and one invented:
    each reports exactly its pair."""
    data = yaml.safe_load(BASELINE.read_text())
    first = data["accepted"][0]
    dropped = (first["check"], first["objects"].pop(0))
    invented = (first["check"], "jupyterhub/Deployment/no-such-object")
    first["objects"].append(invented[1])
    edited = tmp_path / "baseline.yaml"
    edited.write_text(yaml.safe_dump(data))
    pairs = accepted(load_baseline(edited))
    assert checkov_report["found"] - pairs == {dropped}
    assert pairs - checkov_report["found"] == {invented}


def pod_spec(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (workload,) = find(objects, kind, name)
    return workload["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_our_security_settings_reach_the_pods_with_the_charts_own(
    stack: str, cloud: str, request: pytest.FixtureRequest
) -> None:
    """The values that closed baseline entries, on the rendered pods: Helm merges them into the
    charts' own contexts, which must survive (a replaced map would drop `drop: [ALL]`)."""
    run: Run = request.getfixturevalue(stack)
    binder = release(run, cloud, "binderhub-service")
    objects = render(
        BINDERHUB_SERVICE, binder["values"], release=binder["name"], namespace=binder["namespace"]
    )
    spec = pod_spec(objects, "Deployment", "binderhub")
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 1000,
    }
    # The build daemon stays as the chart makes it: privileged root, no pod context.
    daemon = pod_spec(objects, "DaemonSet", "docker-api")
    assert daemon["containers"][0]["securityContext"] == {"privileged": True, "runAsUser": 0}
    assert "securityContext" not in daemon

    hub = release(run, cloud, "jupyterhub")
    objects = render(JUPYTERHUB, hub["values"], release=hub["name"], namespace=hub["namespace"])
    spec = pod_spec(objects, "StatefulSet", "user-placeholder")
    (pause,) = spec["containers"]
    # Sized with a CPU request and a memory limit whatever the replica count (0 in both stacks).
    assert pause["resources"]["requests"]["cpu"] > 0
    assert pause["resources"]["limits"]["memory"] == pause["resources"]["requests"]["memory"]
    assert pause["securityContext"]["readOnlyRootFilesystem"] is True
    assert pause["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pause["securityContext"]["runAsUser"] == 65534
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_public_hubs_core_pods_are_sized_and_the_proxy_holds_no_token(
    cloud: str, staging: Run
) -> None:
    """The public Binder's own JupyterHub (staging): requests and memory limits like the
    authenticated hub's, no API token in the proxy, a pod context on the proxy and autohttps."""
    inputs = staging.one(HELM, f"{cloud}-public-binder-jupyterhub").inputs
    objects = render(
        JUPYTERHUB, inputs["values"], release=inputs["name"], namespace=inputs["namespace"]
    )
    for name in ("hub", "proxy", "autohttps"):
        for container in pod_spec(objects, "Deployment", name)["containers"]:
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["limits"]["memory"], container
    proxy = pod_spec(objects, "Deployment", "proxy")
    assert proxy["automountServiceAccountToken"] is False
    for name in ("proxy", "autohttps"):
        spec = pod_spec(objects, "Deployment", name)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert all(c["securityContext"]["runAsNonRoot"] for c in spec["containers"]), name
    # The public BinderHub is built from the hub's values: it carries the same fixes.
    inputs = staging.one(HELM, f"{cloud}-public-binder-binderhub-service").inputs
    objects = render(
        BINDERHUB_SERVICE, inputs["values"], release=inputs["name"], namespace=inputs["namespace"]
    )
    spec = pod_spec(objects, "Deployment", "binderhub")
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def rendered(run: Run, release_name: str) -> list[dict[str, Any]]:
    """The objects of the first registered release named `release_name` (any cloud)."""
    _, pin, inputs = next(r for r in helm_releases(run) if r[2]["name"] == release_name)
    return render(pin, inputs["values"], release=inputs["name"], namespace=inputs["namespace"])


def test_the_support_pods_drop_what_they_do_not_need(staging: Run) -> None:
    """The support stack's fixes on its rendered pods, merged into the charts' own contexts:
    Prometheus and its reloader read-only without capabilities, node-exporter without them,
    OpenCost without them or privilege escalation, and Grafana's reading of Secrets confined
    to its own namespace."""
    objects = rendered(staging, "prometheus")
    server = pod_spec(objects, "Deployment", "prometheus-server")
    assert server["securityContext"]["runAsUser"] == 65534  # the chart's, kept
    assert server["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {c["name"] for c in server["containers"]} == {
        "prometheus-server",
        "prometheus-server-configmap-reload",
    }
    for container in server["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
    exporter = pod_spec(objects, "DaemonSet", "prometheus-prometheus-node-exporter")
    assert exporter["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert exporter["securityContext"]["runAsNonRoot"] is True
    (container,) = exporter["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    objects = rendered(staging, "opencost")
    opencost = pod_spec(objects, "Deployment", "opencost")
    assert opencost["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = opencost["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }

    objects = rendered(staging, "grafana")
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "support"
    grafana = pod_spec(objects, "Deployment", "grafana")
    sidecar = next(c for c in grafana["containers"] if "dashboard" in c["name"])
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["NAMESPACE"] == "support" and env["RESOURCE"] == "configmap"
