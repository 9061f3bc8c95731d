"""Every input key the program sends exists in the provider SDK's schema.

The mock engine accepts anything; a real `pulumi preview` rejects a misspelt field. Walking the
recorded inputs against the SDKs' `*Args` classes makes that failure happen here instead.
"""

from __future__ import annotations

import pytest

from harness import AWS_DEPLOYER_ROLE, AWS_PREVIEW_ROLE, Run, run_program, stack_config, with_value
from sdk_schema import args_class, unknown_keys


def full_config(stack: str) -> dict:
    """The stack file plus the optional features, so their resources are checked too."""
    config = with_value(
        stack_config(stack),
        "clouds.gcp.budget",
        {
            "monthlyUsd": 300,
            "billingAccount": "012345-6789AB-CDEF01",
            "emails": ["ops@example.org"],
            "pubsubTopic": "projects/pangeo-ops/topics/budget",
        },
    )
    config = with_value(config, "clouds.aws.deployerRoleArn", AWS_DEPLOYER_ROLE)
    config = with_value(config, "clouds.aws.viewerRoleArns", [AWS_PREVIEW_ROLE])
    return with_value(
        config,
        "clouds.gcp.maintenance.exclusions",
        [{"name": "exams", "start": "2026-12-01T00:00:00Z", "end": "2026-12-20T00:00:00Z"}],
    )


@pytest.fixture(scope="module", params=["staging", "prod"])
def full_run(request: pytest.FixtureRequest) -> Run:
    return run_program(request.param, full_config(request.param))


def test_every_input_key_is_declared_by_the_sdk(full_run: Run) -> None:
    checked = 0
    problems = []
    for resource in full_run.registrations:
        cls = args_class(resource.type)
        if cls is None:
            assert resource.type.startswith("pangeo-binder:"), resource.type
            continue
        checked += 1
        problems += unknown_keys(resource.inputs, cls, f"{resource.type} {resource.name}")
    assert problems == []
    assert checked >= 25


def test_the_walk_finds_misspelt_keys_at_any_depth() -> None:
    cls = args_class("gcp:container/nodePool:NodePool")
    inputs = {
        "namePrefix": "user-",
        "nodeConfigs": {},
        "nodeConfig": {
            "machineType": "e2-standard-2",
            "taints": [{"key": "a", "efect": "NO_SCHEDULE"}],
        },
        "autoscaling": {"totalMaxNodes": 3},
    }
    assert unknown_keys(inputs, cls, "pool") == [
        "pool.nodeConfigs",
        "pool.nodeConfig.taints[0].efect",
        "pool.autoscaling.totalMaxNodes",
    ]


def test_free_form_maps_are_not_walked() -> None:
    cls = args_class("gcp:container/nodePool:NodePool")
    assert unknown_keys({"nodeConfig": {"labels": {"anything/goes": "x"}}}, cls, "pool") == []


def test_token_resolution() -> None:
    assert args_class("gcp:container/cluster:Cluster").__name__ == "ClusterArgs"
    assert args_class("kubernetes:helm.sh/v3:Release").__module__.startswith(
        "pulumi_kubernetes.helm.v3"
    )
    # Both SDKs name a resource's inputs `<Name>InitArgs` where `<Name>Args` is taken.
    assert (
        args_class("kubernetes:storage.k8s.io/v1:StorageClass").__name__ == "StorageClassInitArgs"
    )
    assert (
        args_class("aws:s3/bucketVersioning:BucketVersioning").__name__
        == "BucketVersioningInitArgs"
    )
    assert args_class("pulumi:providers:kubernetes").__module__.startswith("pulumi_kubernetes")
    assert args_class("pangeo-binder:gcp:Stack") is None
