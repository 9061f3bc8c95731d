"""The alert rules pass `promtool check rules`, and `promtool test rules` fires each one on
input series that should fire it, and not on series that should not. promtool comes from
Debian's `prometheus` package (.ci/run installs it): without it these tests skip, saying so,
and fail under CI=true."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import skip_or_fail
from pangeo_binder.support.alerts import CERT_DAYS, POOL_METRIC_LABEL, alert_rules

POOLS = {"core": 3, "user": 20}
RULES = alert_rules("binder", POOLS)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not found: apt-get install prometheus (Debian) provides it"
        skip_or_fail(message)
    return found


def summary(alert: str, pool: str | None = None) -> dict[str, str]:
    for group in RULES["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert and rule["labels"].get("pool") == pool:
                return rule["annotations"]
    raise KeyError(alert)


def run(promtool: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False)


def write_rules(tmp_path: Path, rules: dict[str, Any] = RULES) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    return path


def test_promtool_checks_the_rules(promtool: str, tmp_path: Path) -> None:
    result = run(promtool, tmp_path, "check", "rules", str(write_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = {"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum(rate(up[5m])"}]}]}
    bad = run(promtool, tmp_path, "check", "rules", str(write_rules(tmp_path, broken)))
    assert bad.returncode != 0


def alert(name: str, labels: dict[str, str], pool: str | None = None) -> dict[str, Any]:
    severity = next(
        r["labels"]["severity"] for g in RULES["groups"] for r in g["rules"] if r["alert"] == name
    )
    extra = {"pool": pool} if pool else {}
    return {
        "exp_labels": {**labels, "severity": severity, **extra},
        "exp_annotations": summary(name, pool),
    }


def unit_tests() -> list[dict[str, Any]]:
    pvc = {"namespace": "binder", "persistentvolumeclaim": "hub-db-dir"}
    day = 86400
    return [
        {  # the hub answers no scrape: down; then a hub that answers is not
            "interval": "1m",
            "input_series": [
                {"series": 'up{job="jupyterhub",instance="hub"}', "values": "0x15"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "JupyterHubDown",
                 "exp_alerts": [alert("JupyterHubDown", {"job": "jupyterhub",
                                                         "instance": "hub"})]},
                {"eval_time": "3m", "alertname": "JupyterHubDown", "exp_alerts": []},
            ],
        },
        {  # no series at all (the scrape job is gone): down too
            "interval": "1m",
            "input_series": [{"series": 'up{job="other"}', "values": "1x15"}],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "JupyterHubDown",
                 "exp_alerts": [alert("JupyterHubDown", {"job": "jupyterhub"})]},
            ],
        },
        {  # a failed spawn a minute; a single failure is no alert
            "interval": "1m",
            "input_series": [
                {"series": 'jupyterhub_server_spawn_duration_seconds_count{status="failure"}',
                 "values": "0+1x40"},
                {"series": 'jupyterhub_server_spawn_duration_seconds_count{status="success"}',
                 "values": "0+5x40"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "SpawnFailuresRising",
                 "exp_alerts": [alert("SpawnFailuresRising", {})]},
                {"eval_time": "3m", "alertname": "SpawnFailuresRising", "exp_alerts": []},
            ],
        },
        {  # 95% full, then a healthy volume elsewhere
            "interval": "1m",
            "input_series": [
                {"series": _series("kubelet_volume_stats_available_bytes", pvc), "values": "5x30"},
                {"series": _series("kubelet_volume_stats_capacity_bytes", pvc),
                 "values": "100x30"},
                {"series": 'kubelet_volume_stats_available_bytes{namespace="binder",'
                           'persistentvolumeclaim="other"}', "values": "1x30"},
                {"series": 'kubelet_volume_stats_capacity_bytes{namespace="binder",'
                           'persistentvolumeclaim="other"}', "values": "100x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "HubDatabaseVolumeNearlyFull",
                 "exp_alerts": [alert("HubDatabaseVolumeNearlyFull", pvc)]},
            ],
        },
        {  # promtool's clock starts at 0: a certificate valid 10 days fires, 30 days does not
            "interval": "1m",
            "input_series": [
                {"series": 'traefik_tls_certs_not_after{cn="hub.example.org"}',
                 "values": f"{10 * day}x200"},
            ],
            "alert_rule_test": [
                {"eval_time": "2h", "alertname": "HttpsCertificateExpiresSoon",
                 "exp_alerts": [alert("HttpsCertificateExpiresSoon", {})]},
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                {"series": 'traefik_tls_certs_not_after{cn="hub.example.org"}',
                 "values": f"{(CERT_DAYS + 16) * day}x200"},
            ],
            "alert_rule_test": [
                {"eval_time": "2h", "alertname": "HttpsCertificateExpiresSoon", "exp_alerts": []},
            ],
        },
        {  # the core pool at its 3 nodes fires; the user pool's one node of 20 does not
            "interval": "1m",
            "input_series": [
                *[{"series": _series("kube_node_labels", {POOL_METRIC_LABEL: "core",
                                                          "node": f"core-{i}"}),
                   "values": "1x30"} for i in range(3)],
                {"series": _series("kube_node_labels", {POOL_METRIC_LABEL: "user",
                                                        "node": "user-0"}), "values": "1x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "NodePoolAtMaxNodes",
                 "exp_alerts": [alert("NodePoolAtMaxNodes", {}, pool="core")]},
            ],
        },
    ]  # fmt: skip


def _series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def test_promtool_fires_each_alert_on_its_input_series(promtool: str, tmp_path: Path) -> None:
    rules = write_rules(tmp_path)
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": unit_tests()}))
    result = run(promtool, tmp_path, "test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_fails_on_a_wrong_expectation(promtool: str, tmp_path: Path) -> None:
    # The harness is not vacuous: expecting no alert where one fires fails.
    rules = write_rules(tmp_path)
    wrong = unit_tests()[:1]
    wrong[0]["alert_rule_test"][0]["exp_alerts"] = []
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": wrong}))
    assert run(promtool, tmp_path, "test", "rules", str(tests)).returncode != 0


def test_every_rule_is_exercised() -> None:
    tested = {t["alertname"] for case in unit_tests() for t in case["alert_rule_test"]}
    assert tested == {r["alert"] for g in RULES["groups"] for r in g["rules"]}


def test_other_parts_add_their_groups() -> None:
    extra = {"name": "hub-backups", "rules": [{"alert": "HubBackupMissed", "expr": "vector(1)"}]}
    assert alert_rules("binder", POOLS, [extra])["groups"][-1] == extra
