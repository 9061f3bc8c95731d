"""Every Grafana dashboard the support stack ships renders (the community's from their jsonnet,
ours from Python), has a fixed unique uid, and every PromQL expression in it parses with a real
PromQL parser once Grafana's variables are substituted. Rendering is cached (once per run)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from harness import skip_or_fail
from pangeo_binder.support import dashboards
from pangeo_binder.support.alerts import alert_rules
from pangeo_binder.support.cost_dashboard import COST_UID, cost_dashboard
from pangeo_binder.support.support import all_dashboards, dashboard_config_maps

# What Grafana puts in place of its variables, by kind: a duration where one is expected.
DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1d", "interval": "1m"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@pytest.fixture(scope="session")
def rendered() -> dict[str, tuple[str, dict[str, Any]]]:
    message = dashboards.missing_message()
    if message is not None:
        skip_or_fail(message)
    return all_dashboards()


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each custom variable's current value (`show_requests` is 0 or 1, used as a number)."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        current = (variable.get("current") or {}).get("value")
        if variable.get("type") in ("custom", "constant") and isinstance(current, str):
            values[variable["name"]] = current
    return values


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """The expression as Grafana sends it: durations for interval variables, custom
    variables' current values, a value for the rest (inside label matchers, strings)."""
    values = {**DURATIONS, **(values or {})}

    def value(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        return values.get(name, "x")

    return VARIABLE.sub(value, expr)


def expressions(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, expr) for every Prometheus query in a dashboard: panel targets, nested rows,
    and query variables (`label_values(...)`/`query_result(...)` wrap a PromQL selector)."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            yield f"{where}/{node.get('refId', '')}", node["expr"]
        query = node.get("query")
        if node.get("type") == "query" and isinstance(query, dict | str):
            text = query.get("query", "") if isinstance(query, dict) else query
            inner = re.fullmatch(r"\s*(?:label_values|query_result)\((.*?)(?:,\s*\w+)?\)\s*", text)
            if inner and inner.group(1).strip():
                yield f"{where}/variable {node.get('name')}", inner.group(1)
        for key, value in node.items():
            title = value.get("title", key) if isinstance(value, dict) else key
            yield from expressions(value, f"{where}/{title}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from expressions(value, f"{where}[{index}]")


def test_every_dashboard_renders_with_a_fixed_unique_uid(rendered) -> None:
    files = {p.stem for p in dashboards.dashboard_files()}
    assert files == {
        "activity", "cluster", "group", "homedirs", "jupyterhub", "support", "usage-report",
        "user",
    }  # fmt: skip
    assert set(rendered) == files | {"cost"}
    uids = [d["uid"] for _, d in rendered.values()]
    assert len(set(uids)) == len(uids)
    assert all(0 < len(uid) <= 40 for uid in uids)
    assert rendered["cost"][1]["uid"] == COST_UID
    assert rendered["jupyterhub"][1]["uid"] == "jh-jupyterhub"
    for name, (_, dashboard) in rendered.items():
        assert dashboard["title"] and dashboard["panels"], name


def test_every_expression_parses(rendered) -> None:
    seen = 0
    problems = []
    for name, (_, dashboard) in sorted(rendered.items()):
        found = list(expressions(dashboard, name))
        assert found, f"{name} has no PromQL"
        values = variable_values(dashboard)
        for where, expr in found:
            seen += 1
            try:
                promql_parser.parse(substitute(expr, values))
            except Exception as error:  # the parser raises ValueError with the position
                problems.append(f"{where}: {error}\n{substitute(expr, values)}")
    assert not problems, "\n\n".join(problems)
    assert seen > 50


def test_the_alert_rules_parse() -> None:
    rules = alert_rules("binder", {"core": 3, "user": 20})
    for group in rules["groups"]:
        for rule in group["rules"]:
            promql_parser.parse(rule["expr"])


def test_a_broken_expression_is_caught() -> None:
    # The parser refuses what Prometheus would: the check above is not vacuous.
    with pytest.raises(Exception):  # noqa: B017
        promql_parser.parse(substitute('sum(rate(x{a="$hub"}[$__rate_interval])'))
    assert substitute('rate(x{n=~"$hub"}[$__rate_interval])') == 'rate(x{n=~"x"}[5m])'
    assert substitute("${hub_name:regex} [[user]]") == "x x"


def test_the_cost_dashboard_reads_opencost_and_the_user_annotation() -> None:
    text = str(cost_dashboard())
    for metric in (
        "container_cpu_allocation",
        "node_ram_hourly_cost",
        "node_total_hourly_cost",
        "kube_pod_annotations",
        "annotation_hub_jupyter_org_username",
        "label_pangeo_binder_io_pool",
        "jupyterhub_user_group_info",
    ):
        assert metric in text


def test_dashboards_fit_their_config_maps(rendered) -> None:
    for manifest in dashboard_config_maps(rendered):
        size = sum(len(v.encode()) for v in manifest["data"].values())
        assert size < 900_000, manifest["metadata"]["name"]  # a ConfigMap holds at most 1 MiB


def test_rendering_is_cached_on_disk(rendered, tmp_path: Path, monkeypatch) -> None:
    # A second render reads the cache: a jsonnet evaluation would take seconds.
    calls = []
    monkeypatch.setattr(dashboards, "render_file", lambda *a: calls.append(a) or {})
    again = dashboards.render_all()
    assert calls == [] and again["jupyterhub"]["uid"] == "jh-jupyterhub"


def test_missing_dashboards_name_the_fetch_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(dashboards.DASHBOARDS_ENV, str(tmp_path))
    message = dashboards.missing_message()
    assert message and str(tmp_path) in message
    assert "python -m pangeo_binder.support.dashboards" in message and "make dashboards" in message
    assert "charts fetch" not in message  # that command fetches the charts only
    with pytest.raises(FileNotFoundError):
        dashboards.render_all()


def test_the_dashboards_fetch_command_takes_its_folder(tmp_path: Path, monkeypatch) -> None:
    """`--dashboards DIR` (what `python -m pangeo_binder.charts fetch --dashboards` was) fills
    that folder, not $PANGEO_BINDER_DASHBOARDS's; a present tree is kept without a download."""
    monkeypatch.setenv(dashboards.DASHBOARDS_ENV, str(tmp_path / "env"))
    present = tmp_path / "chosen" / dashboards.JUPYTERHUB_DASHBOARDS.dirname / "dashboards"
    present.mkdir(parents=True)
    urls: list[object] = []
    monkeypatch.setattr(dashboards.urllib.request, "urlopen", lambda *a, **k: urls.append(a))
    assert dashboards.main(["--dashboards", str(tmp_path / "chosen")]) == 0
    assert urls == [] and not (tmp_path / "env").exists()
