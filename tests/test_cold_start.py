"""The cold-start model (benchmarks/cold_start.py) on both stack files: figures for every user
pool, each step with its source, and the operator's own figures taking their place."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from harness import STACKS, stack_config

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "cold_start.py"


@pytest.fixture(scope="module")
def model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cold_start", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["cold_start"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def figures() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "benchmarks" / "cold_start.yaml").read_text())


def user_pools(stack: str) -> set[tuple[str, str]]:
    clouds = stack_config(stack)["clouds"]
    return {
        (cloud, key)
        for cloud, settings in clouds.items()
        for key, pool in settings["nodePools"].items()
        if pool.get("purpose") == "user"
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_user_pool_gets_figures_each_with_a_source(model: ModuleType, stack: str) -> None:
    found = model.estimates(model.stack_settings(stack, STACKS), figures())
    assert {(e.cloud, e.pool) for e in found} == user_pools(stack)
    for estimate in found:
        assert estimate.seconds > 0
        assert estimate.steps[-1].what == "server start"
        for step in estimate.steps:
            assert step.source.strip(), (estimate.pool, step.what)
            # An estimate says so in its source too, not only in the flag.
            assert not step.estimate or "estimate" in step.source, step.source
    for cloud, pool in user_pools(stack):
        per_image: dict[str, dict[str, float]] = {}
        for e in found:
            if (e.cloud, e.pool) == (cloud, pool):
                per_image.setdefault(e.image, {})[e.path] = e.seconds
        for image, waits in per_image.items():
            # The cache never makes it slower; streaming and parallel pull faster still.
            assert waits["cache"] < waits["internet"], (cloud, pool, image)
            if cloud == "gcp":
                assert waits["streamed"] < waits["cache"]
            if "cache+soci" in waits:
                assert waits["cache+soci"] < waits["cache"]
            if "warm" in waits:
                assert waits["warm"] == figures()["serverStart"]["seconds"]


def test_warm_only_where_placeholders_wait_and_soci_only_on_big_enough_nodes(
    model: ModuleType,
) -> None:
    found = model.estimates(model.stack_settings("staging", STACKS), figures())
    warm = {(e.cloud, e.pool) for e in found if e.path == "warm"}
    assert warm == {("gcp", "user"), ("aws", "user")}
    soci = {e.pool for e in found if e.path == "cache+soci"}
    # staging's AWS user pools: r5.xlarge (4 vCPU, 32 GiB), r6i.8xlarge, g4dn.xlarge (4, 16).
    assert soci == {"user", "highmem", "gpu"}
    small = dict(figures(), pull={**figures()["pull"]})
    small["pull"]["sociParallel"] = {**small["pull"]["sociParallel"], "minVcpus": 8}
    found = model.estimates(model.stack_settings("staging", STACKS), small)
    assert {e.pool for e in found if e.path == "cache+soci"} == {"highmem"}


def test_the_operators_figures_replace_ours(
    model: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = figures()
    mine["nodeBoot"]["gcp"] = {"seconds": 77, "estimate": False, "source": "measured 2026-12-01"}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine))
    argv = ["--stack", "staging", "--root", str(STACKS), "--figures", str(path)]
    assert model.main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    boots = [
        step
        for row in rows
        if row["cloud"] == "gcp"
        for step in row["steps"]
        if step["what"] == "node boot"
    ]
    assert boots and all(
        step
        == {"what": "node boot", "seconds": 77, "source": "measured 2026-12-01", "estimate": False}
        for step in boots
    )
    assert model.main(["--stack", "prod", "--root", str(STACKS)]) == 0
    text = capsys.readouterr().out
    assert "Sources:" in text and "gcp pool user" in text and "aws pool user" in text
