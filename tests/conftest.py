"""Shared fixtures: one mock-engine run of the real program per stack, reused by the tests."""

from __future__ import annotations

from typing import Any

import pytest

from harness import Run, run_program


@pytest.fixture(scope="session")
def staging() -> Run:
    return run_program("staging")


@pytest.fixture(scope="session")
def prod() -> Run:
    return run_program("prod")


@pytest.fixture(scope="session")
def chart_files() -> None:
    """The pinned charts' sources and schemas are on disk: else skip, or fail under `CI=true`."""
    from chart_render import require_chart_files

    require_chart_files()


# The hub's releases, per stack and cloud (tests/test_hub.py, tests/test_binderhub.py).
HELM = "kubernetes:helm.sh/v4:Chart"
CASES = [(stack, cloud) for stack in ("staging", "prod") for cloud in ("gcp", "aws")]


def release(run: Run, cloud: str, chart: str) -> dict[str, Any]:
    """The inputs of one of the hub's Helm releases (`jupyterhub`, `dask-gateway`, ...)."""
    return run.one(HELM, f"{cloud}-hub-{chart}").inputs


@pytest.fixture(params=CASES, ids=[f"{s}-{c}" for s, c in CASES])
def case(request: pytest.FixtureRequest, staging: Run, prod: Run) -> tuple[Run, str]:
    """Each stack's run with one of its clouds."""
    stack, cloud = request.param
    return (staging if stack == "staging" else prod), cloud
