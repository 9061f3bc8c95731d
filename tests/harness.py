"""The mock engine (`pangeo_binder.testing`) bound to this repository's project.

Tests import everything from here (`from harness import run_program, ...`); the engine itself
is product code, shared with the offline plan and with adopters' own tests.

`run_program` and `stack_config` run the checkout's program with the suite's own stack files
(`STACKS`, tests/stacks/README.md), never the checkout's: a fork that replaces the project's
`Pulumi.staging.yaml` and `Pulumi.prod.yaml` runs the same suite. The checkout's own stacks,
whatever their names, are `OWN_STACKS` (of `OWN`): the tests of test_own_stacks.py run over
them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from pangeo_binder.testing import (
    ADDON_VERSIONS,
    AWS_ACCOUNT,
    AWS_DEPLOYER_ROLE,
    AWS_PREVIEW_ROLE,
    AWS_REGION,
    DELETE,
    EKS_ISSUER,
    NAMESPACE,
    PLANTED_SECRET,
    SECRET_KEYS,
    AwsCaller,
    LiveEks,
    Mocks,
    Project,
    RecordingMonitor,
    Registration,
    Run,
    addon_default_version,
    run_function,
    unwrap_secrets,
    with_value,
)

ROOT = Path(__file__).resolve().parent.parent
# The suite's stack files: the project's staging and prod as the tests know them.
STACKS = ROOT / "tests" / "stacks"
PROJECT = Project(ROOT, stacks=STACKS)
MAIN = PROJECT.program
# The checkout's own stack files (Pulumi.*.yaml at its root), whatever a fork calls them.
OWN = Project(ROOT)
OWN_STACKS = OWN.stack_names()
run_program = PROJECT.run_program
stack_config = PROJECT.stack_config

__all__ = [
    "ADDON_VERSIONS",
    "AWS_ACCOUNT",
    "AWS_DEPLOYER_ROLE",
    "AWS_PREVIEW_ROLE",
    "AWS_REGION",
    "DELETE",
    "EKS_ISSUER",
    "MAIN",
    "NAMESPACE",
    "OWN",
    "OWN_STACKS",
    "PLANTED_SECRET",
    "PROJECT",
    "ROOT",
    "SECRET_KEYS",
    "STACKS",
    "AwsCaller",
    "LiveEks",
    "Mocks",
    "RecordingMonitor",
    "Registration",
    "Run",
    "addon_default_version",
    "run_function",
    "run_program",
    "stack_config",
    "unwrap_secrets",
    "with_value",
]


def copy_checkout(target: Path, keep: Callable[[str], bool] = lambda name: True) -> None:
    """The checkout's files (tracked and new, not ignored) whose path `keep` accepts, copied
    under `target`: what a clone of this working tree would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = ROOT / name
        if source.is_file() and keep(name):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def skip_or_fail(message: str) -> NoReturn:
    """A test that needs a tool or file this machine lacks: skipped with `message` (the command
    that installs it), or failed under CI (`CI=true`), where .ci/run installs everything."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
