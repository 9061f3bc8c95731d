"""The `clouds.aws` rules beyond the data-file cases (tests/config_cases/aws.yaml, run by
tests/test_config.py): every rule has a case, defaults that depend on the environment, and
nothing registered when the config is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from harness import DELETE, SECRET_KEYS, RecordingMonitor, run_program, stack_config, with_value
from pangeo_binder.config import load_config

CASES_FILE = Path(__file__).parent / "config_cases" / "aws.yaml"


def aws(stack: str, **changes: Any) -> Any:
    config = stack_config(stack)
    for path, value in changes.items():
        config = with_value(config, f"clouds.aws.{path}", value)
    return load_config(config, secret_keys=SECRET_KEYS).clouds.aws


def test_every_aws_rule_has_a_failing_case() -> None:
    """A rule added without a case (and so without a test of its key path) fails here."""
    cases = yaml.safe_load(CASES_FILE.read_text())
    segments = {part for case in cases for e in case["errors"] for part in e["path"].split(".")}
    for key in (
        "region",
        "availabilityZones",
        "machineType",
        "gpu",
        "spot",
        "instanceTypes",
        "natGateways",
        "kubernetesVersion",
        "adminRoleArns",
        "deployerRoleArn",
        "viewerRoleArns",
        "controlPlaneAccess",
        "noncurrentVersionDays",
        "vpcCidr",
        "emails",
        "monthlyUsd",
        "zones",
    ):
        assert key in segments, key


@pytest.mark.parametrize(
    ("stack", "set_to", "expected"),
    [
        ("staging", None, "none"),
        ("prod", None, "single"),
        ("staging", "single", "single"),
        ("prod", "perAz", "perAz"),
        ("prod", "none", "none"),
    ],
)
def test_nat_default_follows_the_environment(stack: str, set_to: str | None, expected: str) -> None:
    cloud = aws(stack, natGateways=DELETE if set_to is None else set_to)
    assert cloud.nat_gateways == set_to
    assert (
        cloud.nat_mode(load_config(stack_config(stack), secret_keys=SECRET_KEYS).environment)
        == expected
    )


def test_defaults() -> None:
    cloud = aws("staging", controlPlaneAccess=DELETE, availabilityZones=DELETE)
    assert [str(c) for c in cloud.control_plane_access] == ["0.0.0.0/0"]
    assert cloud.availability_zones is None
    assert cloud.kubernetes_version == "1.35"
    assert cloud.admin_role_arns == []
    assert cloud.deployer_role_arn is None
    assert cloud.viewer_role_arns == []
    assert cloud.node_pools["user"].all_instance_types == ["r5.xlarge"]
    assert cloud.node_pools["core"].min_nodes == 1
    assert cloud.node_pools["dask"].spot is True


def test_staging_costs_little_when_idle() -> None:
    cloud = aws("staging")
    assert cloud.nat_mode("staging") == "none"
    pools = cloud.node_pools
    assert {key: pool.min_nodes for key, pool in pools.items()} == {
        "core": 1,
        "user": 0,
        "highmem": 0,
        "gpu": 0,
        "dask": 0,
        "public": 0,  # the public Binder's pool (docs/howto/public-binder.md)
    }
    assert pools["core"].machine_type in {"t3a.large", "t3.large", "m6a.large", "m7a.large"}
    assert pools["core"].disk_size_gb <= 30
    assert pools["highmem"].machine_type.split(".")[0] in {"r5", "r6i", "r7i"}
    assert pools["gpu"].machine_type.split(".")[0] in {"g4dn", "g5"}
    prod = aws("prod").node_pools
    assert set(prod) == set(pools) - {"public"}  # prod runs no public Binder
    assert prod["highmem"].machine_type.split(".")[0] in {"r5", "r6i", "r7i"}
    assert prod["gpu"].machine_type.split(".")[0] in {"g4dn", "g5"}


def test_a_wrong_aws_config_registers_nothing() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.nodePools.core.spot", True)
    config = with_value(config, "clouds.aws.region", "mars-1")
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as caught:
        run_program("staging", config, monitor)
    assert "clouds.aws.region" in str(caught.value)
    assert "clouds.aws.nodePools.core.spot" in str(caught.value)
    assert monitor.registrations == []
