"""Shared fixtures: one mock-engine run of the real program per stack, reused by the tests."""

from __future__ import annotations

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
