"""The mock engine (`pangeo_binder.testing`) bound to this repository's project.

Tests import everything from here (`from harness import run_program, ...`); the engine itself
is product code, shared with the offline plan and with adopters' own tests.
"""

from __future__ import annotations

from pathlib import Path

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
PROJECT = Project(ROOT)
MAIN = PROJECT.program
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
    "PLANTED_SECRET",
    "PROJECT",
    "ROOT",
    "SECRET_KEYS",
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
