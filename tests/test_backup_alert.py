"""The hub database backup's alert rules (hub/backup.py) reach Prometheus with the support
stack's own rules, pass `promtool check rules`, and `promtool test rules` fires them when the
last successful backup is older than two periods (or there never was one) and stays quiet on a
CronJob that keeps succeeding. promtool: see tests/test_support_alerts.py (skips without it,
fails under CI=true)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness import Run
from pangeo_binder.hub.backup import LAST_SUCCESS_METRIC, NAME, backup_alert_rules
from pangeo_binder.hub.config import BackupSettings
from test_support_alerts import promtool, run  # noqa: F401  (promtool: a fixture, by name)

SETTINGS = BackupSettings()  # the default schedule, every 6 hours
LATE = 2 * SETTINGS.period_seconds()
SERIES = f'{LAST_SUCCESS_METRIC}{{namespace="binder",cronjob="{NAME}"}}'


def test_the_program_ships_the_backup_rules_to_prometheus(staging: Run) -> None:
    for cloud in ("gcp", "aws"):
        values = staging.one("kubernetes:helm.sh/v4:Chart", f"{cloud}-support-prometheus")
        groups = values.inputs["values"]["serverFiles"]["alerting_rules.yml"]["groups"]
        assert backup_alert_rules("binder", SETTINGS) in groups


def _unit_test(values: str, fires: bool) -> dict[str, Any]:
    """At 13 h, with the last success at `values`: the late alert fires or not."""
    late = [{"alertname": "HubDatabaseBackupLate", "eval_time": "13h", "exp_alerts": []}]
    if fires:
        late[0]["exp_alerts"] = [
            {
                "exp_labels": {"severity": "warning", "namespace": "binder", "cronjob": NAME},
                "exp_annotations": backup_alert_rules("binder", SETTINGS)["rules"][0][
                    "annotations"
                ],
            }
        ]
    return {"interval": "1m", "input_series": [{"series": SERIES, "values": values}],
            "alert_rule_test": late}  # fmt: skip


def test_promtool_checks_and_fires_the_backup_rules(promtool: str, tmp_path: Path) -> None:  # noqa: F811
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [backup_alert_rules("binder", SETTINGS)]}))
    checked = run(promtool, tmp_path, "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    never = {
        "interval": "1m",
        "input_series": [{"series": 'up{job="jupyterhub"}', "values": "1+0x1000"}],
        "alert_rule_test": [
            {"alertname": "HubDatabaseNeverBackedUp", "eval_time": "11h", "exp_alerts": []},
            {
                "alertname": "HubDatabaseNeverBackedUp",
                "eval_time": "13h",
                "exp_alerts": [
                    {
                        # absent() keeps the selector's labels.
                        "exp_labels": {
                            "severity": "warning",
                            "namespace": "binder",
                            "cronjob": NAME,
                        },
                        "exp_annotations": backup_alert_rules("binder", SETTINGS)["rules"][1][
                            "annotations"
                        ],
                    }
                ],
            },
        ],
    }
    cases = [
        _unit_test("0+0x1000", fires=True),  # last success at 0 s: older than LATE at 13 h
        _unit_test("0+60x1000", fires=False),  # succeeds every minute: never late
        never,
    ]
    assert LATE == 12 * 3600  # the cases' times assume the default six-hour schedule
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": cases}))
    result = run(promtool, tmp_path, "test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    # Not vacuous: the quiet case expecting an alert fails.
    cases[1] = _unit_test("0+60x1000", fires=True)
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": cases}))
    assert run(promtool, tmp_path, "test", "rules", str(tests)).returncode != 0
