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
