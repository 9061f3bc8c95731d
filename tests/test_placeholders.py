"""Warm capacity: user placeholders from config to the chart's StatefulSet, the refusal of more
than the default pool can hold, and their idle cost in the plan."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from chart_render import find, render, validate_values
from conftest import release
from harness import SECRET_KEYS, STACKS, Run, stack_config, with_value
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.config import ConfigError, StackConfig, load_config
from pangeo_binder.hub.placeholders import (
    PER_NODE_ANNOTATION,
    placeholders,
    user_placeholder_values,
)
from pangeo_binder.hub.profiles import profile_list
from pangeo_binder.plan import build
from pangeo_binder.plan.cost import Prices
from pangeo_binder.scheduling import POOL_LABEL
from test_plan import ROOT, TEST_PRICES, lines


def config_with(count: int | None, cloud: str = "gcp") -> StackConfig:
    raw = stack_config("staging")
    if count is not None:
        raw = with_value(raw, f"clouds.{cloud}.hub.userPlaceholders", count)
    return load_config(raw, secret_keys=SECRET_KEYS)


def piece(config: StackConfig, cloud: str = "gcp") -> dict[str, Any]:
    settings = getattr(config.clouds, cloud)
    return user_placeholder_values(cloud, settings.node_pools, config.hub, settings.hub)


def test_none_by_default() -> None:
    config = config_with(None)
    assert config.clouds.gcp is not None and config.clouds.gcp.hub.user_placeholders == 0
    values = piece(config)
    assert values["replicas"] == 0
    # Still sized and pinned like three of them would be: the chart renders the StatefulSet
    # anyway, and `kubectl scale` must start real placeholders.
    assert values["resources"] == piece(config_with(3))["resources"]
    assert values["extraPodSpec"] == piece(config_with(3))["extraPodSpec"]


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_placeholders_are_default_servers_on_the_default_pool(cloud: str) -> None:
    config = config_with(3, cloud)
    settings = getattr(config.clouds, cloud)
    values = piece(config, cloud)
    default = profile_list(cloud, settings.node_pools, config.hub, settings.hub)[0]
    size = next(
        choice["kubespawner_override"]
        for choice in default["profile_options"]["resources"]["choices"].values()
        if choice["default"]
    )
    assert values["replicas"] == 3
    assert values["extraPodSpec"]["nodeSelector"] == {POOL_LABEL: default["slug"]}
    # The same requests as the server they stand in for.
    assert values["resources"]["requests"] == {
        "cpu": size["cpu_guarantee"],
        "memory": size["mem_guarantee"],
    }
    held = placeholders(cloud, settings.node_pools, config.hub, settings.hub)
    assert values["annotations"] == {PER_NODE_ANNOTATION: str(held.per_node)}
    assert held.per_node >= 2  # the default size is a share of a node


@pytest.mark.usefixtures("chart_files")
def test_the_chart_runs_them_pinned_and_sized(staging: Run) -> None:
    config = config_with(5)
    values = copy.deepcopy(release(staging, "gcp", "jupyterhub")["values"])
    # The wiring: jupyterhub_values' scheduling.userPlaceholder is this piece.
    values["scheduling"]["userPlaceholder"] = piece(config)
    validate_values(JUPYTERHUB, values)
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    (statefulset,) = find(objects, "StatefulSet", "user-placeholder")
    spec = statefulset["spec"]["template"]["spec"]
    assert statefulset["spec"]["replicas"] == 5
    assert spec["nodeSelector"] == {POOL_LABEL: "user"}
    assert (
        spec["containers"][0]["resources"] == values["scheduling"]["userPlaceholder"]["resources"]
    )
    # Lowest priority (users preempt them) and packed by the user scheduler.
    classes = {p["metadata"]["name"]: p["value"] for p in find(objects, "PriorityClass")}
    own = classes.pop(spec["priorityClassName"])
    assert classes and all(own < value for value in classes.values())
    assert spec["schedulerName"].endswith("user-scheduler")


def test_more_than_the_pool_can_hold_is_refused_with_its_key() -> None:
    config = config_with(None)
    gcp = config.clouds.gcp
    assert gcp is not None
    held = placeholders("gcp", gcp.node_pools, config.hub, gcp.hub)
    most = held.per_node * gcp.node_pools[held.pool].max_nodes
    assert config_with(most).clouds.gcp.hub.user_placeholders == most  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as raised:
        config_with(most + 1)
    (problem,) = raised.value.problems
    assert problem.path == "clouds.gcp.hub.userPlaceholders"
    assert f"maxNodes ({gcp.node_pools[held.pool].max_nodes})" in problem.message
    assert f"at most {most}" in problem.message


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(-1)
    assert [p.path for p in raised.value.problems] == ["clouds.gcp.hub.userPlaceholders"]


def test_the_plan_prices_the_nodes_they_hold() -> None:
    """The staging plan with the placeholder piece in the jupyterhub release's values: the
    default pool's idle quantity becomes the nodes the placeholders keep up (its machine,
    disk and address lines), the ceiling is unchanged."""
    evaluation = build.evaluate(ROOT, "staging", stacks=STACKS)
    prices = Prices(copy.deepcopy(TEST_PRICES))
    before = build.plan(evaluation, prices)
    config = config_with(None)
    gcp = config.clouds.gcp
    assert gcp is not None
    per_node = placeholders("gcp", gcp.node_pools, config.hub, gcp.hub).per_node
    count = 2 * per_node + 1  # three nodes' worth
    values = piece(config_with(count))
    warmed = copy.deepcopy(evaluation)
    (record,) = [
        r
        for r in warmed["records"]
        if r["type"].startswith("kubernetes:helm.sh/") and r["name"] == "gcp-hub-jupyterhub"
    ]
    record["inputs"]["values"]["scheduling"]["userPlaceholder"] = values
    after = build.plan(warmed, prices)
    idle_before = {x["item"]: x for x in lines(before, "gcp", "idle")}
    idle_after = {x["item"]: x for x in lines(after, "gcp", "idle")}
    added = {item: idle_after[item]["quantity"] for item in set(idle_after) - set(idle_before)}
    assert added == {
        "pool user: n2-highmem-4 (on-demand)": math.ceil(count / per_node),
        "pool user: boot disk 100 GB pd-balanced": 3,
        "pool user: external IPv4 address per node": 3,
    }
    cost = after["clouds"]["gcp"]["cost"]
    assert cost["idleMonthlyUsd"] == pytest.approx(
        before["clouds"]["gcp"]["cost"]["idleMonthlyUsd"]
        + sum(idle_after[item]["monthlyUsd"] for item in added),
        abs=0.02,
    )
    assert cost["ceilingMonthlyUsd"] == before["clouds"]["gcp"]["cost"]["ceilingMonthlyUsd"]
    # AWS has no placeholders in this run: its idle cost is unchanged.
    assert after["clouds"]["aws"]["cost"] == before["clouds"]["aws"]["cost"]
