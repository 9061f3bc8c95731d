"""EKS managed node groups in both stack files: scheduling, AMIs, capacity, scaling from zero
(autoscaler tags on the ASG that agree with the group), launch templates, the autoscaler."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import (
    SECRET_KEYS,
    LiveEks,
    RecordingMonitor,
    Run,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.aws.node_groups import ScalingPlan, scaling_plan
from pangeo_binder.config import load_config

AWS_NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG_TAG = "aws:autoscaling/tag:Tag"
RELEASE = "kubernetes:helm.sh/v3:Release"
CA = "k8s.io/cluster-autoscaler"
POOLS = ("core", "user", "highmem", "gpu", "dask")


def configured_pools(run: Run) -> tuple[str, ...]:
    """The pools of a run's stack file: staging adds the public Binder's pool."""
    return POOLS + (("public",) if "publicBinderUrl" in run.stack_outputs["aws"] else ())


# What the JupyterHub and Dask charts select on (scheduling.py), per pool of the stack files.
EXPECTED_LABELS = {
    "core": {"hub.jupyter.org/node-purpose": "core", "pangeo-binder.io/pool": "core"},
    "user": {
        "hub.jupyter.org/node-purpose": "user",
        "k8s.dask.org/node-purpose": "scheduler",
        "pangeo-binder.io/pool": "user",
    },
    "highmem": {
        "hub.jupyter.org/node-purpose": "user",
        "k8s.dask.org/node-purpose": "scheduler",
        "pangeo-binder.io/pool": "highmem",
    },
    "dask": {"k8s.dask.org/node-purpose": "worker", "pangeo-binder.io/pool": "dask"},
}
USER_TAINT = {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NO_SCHEDULE"}
DASK_TAINT = {"key": "k8s.dask.org/dedicated", "value": "worker", "effect": "NO_SCHEDULE"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
EXPECTED_TAINTS = {
    "core": [],
    "user": [USER_TAINT],
    "highmem": [USER_TAINT],
    "gpu": [USER_TAINT, GPU_TAINT],
    "dask": [DASK_TAINT],
}


@pytest.fixture(params=["staging", "prod"])
def run(request: pytest.FixtureRequest, staging: Run, prod: Run) -> Run:
    return {"staging": staging, "prod": prod}[request.param]


def group(run: Run, key: str) -> Any:
    return run.one(AWS_NG, f"aws-eks-pool-{key}-group")


def asg_tags(run: Run, key: str) -> dict[str, str]:
    """The tags set on pool `key`'s Auto Scaling group, by key."""
    component = run.one("pangeo-binder:aws:NodeGroup", f"aws-eks-pool-{key}")
    tags = [r for r in run.of_type(ASG_TAG) if r.parent == component.urn]
    asg_name = group(run, key).outputs["resources"][0]["autoscalingGroups"][0]["name"]
    for tag in tags:
        assert tag.inputs["autoscalingGroupName"] == asg_name
        assert tag.inputs["tag"]["propagateAtLaunch"] is False
    result = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in tags}
    assert len(result) == len(tags), "a tag key is set twice"
    return result


def test_every_configured_pool_has_a_group(run: Run) -> None:
    assert sorted(r.name for r in run.of_type(AWS_NG)) == sorted(
        f"aws-eks-pool-{key}-group" for key in configured_pools(run)
    )


@pytest.mark.parametrize("key", ["core", "user", "highmem", "dask"])
def test_labels_follow_the_charts(run: Run, key: str) -> None:
    assert group(run, key).inputs["labels"] == EXPECTED_LABELS[key]


def test_gpu_group_labels_carry_the_accelerator(staging: Run, prod: Run) -> None:
    assert group(staging, "gpu").inputs["labels"] == {
        "hub.jupyter.org/node-purpose": "user",
        "k8s.dask.org/node-purpose": "scheduler",
        "pangeo-binder.io/pool": "gpu",
        "k8s.amazonaws.com/accelerator": "nvidia-t4",
    }
    assert group(prod, "gpu").inputs["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-a10g"


@pytest.mark.parametrize("key", POOLS)
def test_taints_follow_the_charts_and_gpus_are_tainted_explicitly(run: Run, key: str) -> None:
    assert group(run, key).inputs.get("taints", []) == EXPECTED_TAINTS[key]


@pytest.mark.parametrize(
    ("key", "ami"),
    [
        ("core", "AL2023_x86_64_STANDARD"),
        ("user", "AL2023_x86_64_STANDARD"),
        ("highmem", "AL2023_x86_64_STANDARD"),
        ("gpu", "AL2023_x86_64_NVIDIA"),
        ("dask", "AL2023_x86_64_STANDARD"),
    ],
)
def test_ami_types(run: Run, key: str, ami: str) -> None:
    assert group(run, key).inputs["amiType"] == ami


def test_capacity_types_and_instance_types(run: Run) -> None:
    dask = group(run, "dask").inputs
    assert dask["capacityType"] == "SPOT"
    assert dask["instanceTypes"] == ["r5.4xlarge", "r5a.4xlarge", "r6i.4xlarge", "r7i.4xlarge"]
    for key in ("core", "user", "highmem", "gpu"):
        inputs = group(run, key).inputs
        assert inputs["capacityType"] == "ON_DEMAND", key
        assert len(inputs["instanceTypes"]) == 1, key
    assert group(run, "core").inputs["instanceTypes"] == ["t3a.large"]


def test_scaling_bounds_and_desired_size_left_to_the_autoscaler(run: Run) -> None:
    for key in POOLS:
        registration = group(run, key)
        scaling = registration.inputs["scalingConfig"]
        expected_min = 1 if key == "core" else 0
        assert scaling["minSize"] == expected_min, key
        assert scaling["desiredSize"] == expected_min, key
        assert scaling["maxSize"] >= max(1, expected_min), key
        assert registration.ignore_changes == ["scalingConfig.desiredSize"], key
    assert group(run, "dask").inputs["scalingConfig"]["maxSize"] in (100, 200)


def _pool(**changes: Any) -> Any:
    config = stack_config("staging")
    for key, value in changes.items():
        config = with_value(config, f"clouds.aws.nodePools.user.{key}", value)
    return load_config(config, secret_keys=SECRET_KEYS).clouds.aws.node_pools["user"]


@pytest.mark.parametrize(
    ("bounds", "live", "expected"),
    [
        ({"minNodes": 0, "maxNodes": 20}, None, ScalingPlan(0, ignore_desired=True)),
        ({"minNodes": 2, "maxNodes": 20}, None, ScalingPlan(2, ignore_desired=True)),
        ({"minNodes": 0, "maxNodes": 20}, 5, ScalingPlan(5, ignore_desired=True)),
        ({"minNodes": 3, "maxNodes": 20}, 1, ScalingPlan(3, ignore_desired=False)),
        ({"minNodes": 3, "maxNodes": 20}, 3, ScalingPlan(3, ignore_desired=True)),
        ({"minNodes": 0, "maxNodes": 4}, 9, ScalingPlan(4, ignore_desired=False)),
    ],
)
def test_desired_size_follows_only_bounds_that_exclude_it(
    bounds: dict[str, int], live: int | None, expected: ScalingPlan
) -> None:
    """EKS refuses a minimum above the desired size and a maximum below it."""
    assert scaling_plan(_pool(**bounds), live) == expected


GROUP_SUFFIX = "20261125000000000000000001"


def test_raising_min_nodes_on_a_running_cluster_raises_the_desired_size() -> None:
    """The program reads each group's live desired size (through the stack's provider) and
    sends a desired size inside the new bounds; groups inside their bounds stay the
    autoscaler's. A pool whose key prefixes another's (`user`, `user-big`) reads its own."""
    config = stack_config("staging")
    config = with_value(config, "clouds.aws.nodePools.user.minNodes", 2)
    config = with_value(config, "clouds.aws.nodePools.gpu.maxNodes", 2)
    live = LiveEks(
        {
            "pangeo-binder-staging": {
                f"core-{GROUP_SUFFIX}": 1,
                f"user-{GROUP_SUFFIX}": 0,
                f"highmem-{GROUP_SUFFIX}": 0,
                f"gpu-{GROUP_SUFFIX}": 3,
                f"user-big-{GROUP_SUFFIX}": 5,
                f"dask-{GROUP_SUFFIX}": 7,
            },
            "someone-elses-cluster": {f"user-{GROUP_SUFFIX}": 9},
        }
    )
    monitor = RecordingMonitor(live)
    run = run_program("staging", config, monitor)
    expected = {"core": (1, True), "user": (2, False), "highmem": (0, True), "gpu": (2, False)}
    expected["dask"] = (7, True)
    for key, (desired, ignored) in expected.items():
        registration = group(run, key)
        assert registration.inputs["scalingConfig"]["desiredSize"] == desired, key
        ignore = ["scalingConfig.desiredSize"] if ignored else []
        assert registration.ignore_changes == ignore, key
    provider = run.one("pulumi:providers:aws", "aws-provider").urn
    reads = [c for c in run.calls if c.token.startswith("aws:eks/getNodeGroup")]
    assert reads and all(c.provider.startswith(provider) for c in reads)


def test_a_first_deploy_reads_no_node_groups(staging: Run) -> None:
    tokens = [c.token for c in staging.calls]
    assert "aws:eks/getClusters:getClusters" in tokens
    assert "aws:eks/getNodeGroups:getNodeGroups" not in tokens


def test_groups_are_named_by_key_with_a_generated_suffix(run: Run) -> None:
    for key in POOLS:
        inputs = group(run, key).inputs
        assert inputs["nodeGroupNamePrefix"] == f"{key}-"
        assert "nodeGroupName" not in inputs
        assert "remoteAccess" not in inputs, "no SSH access to nodes"


def test_groups_use_their_launch_template(run: Run) -> None:
    for key in POOLS:
        template = run.one(LT, f"aws-eks-pool-{key}-lt")
        launch = group(run, key).inputs["launchTemplate"]
        assert launch["id"] == f"lt-aws-eks-pool-{key}-lt"  # the mock's id for that template
        assert launch["version"] == str(template.outputs["latestVersion"])
        assert template.urn in group(run, key).dependencies


def test_imdsv2_only_with_hop_limit_one(run: Run) -> None:
    for key in POOLS:
        metadata = run.one(LT, f"aws-eks-pool-{key}-lt").inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required", key
        assert metadata["httpPutResponseHopLimit"] == 1, key
        assert metadata["httpEndpoint"] == "enabled", key


def test_gp3_root_volume_of_the_configured_size(run: Run) -> None:
    sizes = {"core": 30, "user": 100, "highmem": 100, "gpu": 100, "dask": 100}
    for key, size in sizes.items():
        (mapping,) = run.one(LT, f"aws-eks-pool-{key}-lt").inputs["blockDeviceMappings"]
        assert mapping["deviceName"] == "/dev/xvda"
        assert mapping["ebs"]["volumeType"] == "gp3"
        assert mapping["ebs"]["volumeSize"] == size
        assert mapping["ebs"]["encrypted"] == "true"
        assert "diskSize" not in group(run, key).inputs  # set by the template, never twice


def _effect(upper: str) -> str:
    return {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute"}[upper]


@pytest.mark.parametrize("key", POOLS)
def test_asg_node_template_agrees_with_the_group(run: Run, key: str) -> None:
    """What the autoscaler reads from the ASG is what the group's nodes will carry; the
    discovery tags are EKS's own and not managed here."""
    inputs = group(run, key).inputs
    expected = {f"{CA}/node-template/label/{k}": v for k, v in inputs["labels"].items()}
    expected |= {
        f"{CA}/node-template/taint/{t['key']}": f"{t['value']}:{_effect(t['effect'])}"
        for t in inputs.get("taints", [])
    }
    if key == "gpu":
        expected[f"{CA}/node-template/resources/nvidia.com/gpu"] = "1"
    assert asg_tags(run, key) == expected


def test_gpu_group_at_zero_advertises_its_gpu_and_taint(staging: Run) -> None:
    tags = asg_tags(staging, "gpu")
    assert tags[f"{CA}/node-template/resources/nvidia.com/gpu"] == "1"
    assert tags[f"{CA}/node-template/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert tags[f"{CA}/node-template/taint/hub.jupyter.org/dedicated"] == "user:NoSchedule"
    assert tags[f"{CA}/node-template/label/hub.jupyter.org/node-purpose"] == "user"


def test_every_group_in_one_zone_by_default(staging: Run, prod: Run) -> None:
    """Home volumes bind to one zone, and dask workers stay in it too: shuffles between
    zones are billed per GB each way. Staging has no NAT, so nodes go in public subnets;
    prod's nodes are private."""
    for run, kind in ((staging, "public"), (prod, "private")):
        first = f"aws-network-{kind}-us-west-2a-id"
        for key in POOLS:
            assert group(run, key).inputs["subnetIds"] == [first], key


def test_configured_zones_pick_the_group_subnets() -> None:
    config = with_value(
        stack_config("prod"), "clouds.aws.nodePools.dask.zones", ["us-west-2b", "us-west-2c"]
    )
    config = with_value(config, "clouds.aws.nodePools.gpu.zones", ["us-west-2c"])
    run = run_program("prod", config)
    assert group(run, "dask").inputs["subnetIds"] == [
        "aws-network-private-us-west-2b-id",
        "aws-network-private-us-west-2c-id",
    ]
    assert group(run, "gpu").inputs["subnetIds"] == ["aws-network-private-us-west-2c-id"]
    assert group(run, "user").inputs["subnetIds"] == ["aws-network-private-us-west-2a-id"]


def test_zone_outside_the_default_vpc_zones_is_refused_at_deploy_time() -> None:
    """Without availabilityZones the VPC takes the account's first three zones, known only
    when the program runs: a pool in the fourth is refused then, naming its key."""
    config = with_value(stack_config("staging"), "clouds.aws.nodePools.dask.zones", ["us-west-2d"])
    with pytest.raises(
        Exception, match=r"clouds\.aws\.nodePools\.dask\.zones: us-west-2d not among"
    ):
        run_program("staging", config)


def test_groups_wait_for_networking_add_ons(run: Run) -> None:
    for key in POOLS:
        deps = group(run, key).dependencies
        for addon in ("vpc-cni", "kube-proxy"):
            assert run.one("aws:eks/addon:Addon", f"aws-eks-{addon}").urn in deps, (key, addon)


def autoscaler_values(run: Run) -> dict[str, Any]:
    return run.one(RELEASE, "aws-autoscaler-release").inputs["values"]


def test_autoscaler_release_is_pinned_and_on_the_cluster(run: Run) -> None:
    release = run.one(RELEASE, "aws-autoscaler-release")
    assert release.inputs["chart"] == "cluster-autoscaler"
    assert release.inputs["version"] == "9.59.0"
    assert release.inputs["name"] == "cluster-autoscaler"
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert release.provider_urn == run.one("pulumi:providers:kubernetes", "aws-eks-k8s").urn


def test_autoscaler_discovers_the_tags_eks_puts_on_the_groups(run: Run) -> None:
    """EKS tags every managed group's ASG `k8s.io/cluster-autoscaler/enabled=true` and
    `k8s.io/cluster-autoscaler/<cluster>=owned`: the autoscaler discovers those, and the
    program leaves them alone (removing a resource of ours would delete EKS's tag)."""
    values = autoscaler_values(run)
    cluster = run.one("aws:eks/cluster:Cluster").inputs["name"]
    assert values["cloudProvider"] == "aws"
    assert values["awsRegion"] == "us-west-2"
    assert values["autoDiscovery"]["clusterName"] == cluster
    assert values["autoDiscovery"]["tags"] == [f"{CA}/enabled", f"{CA}/{cluster}"]
    managed = {t.inputs["tag"]["key"] for t in run.of_type(ASG_TAG)}
    assert managed, "node-template tags are still set"
    for discovery in values["autoDiscovery"]["tags"]:
        assert discovery not in managed
    assert all(key.startswith(f"{CA}/node-template/") for key in managed)


def test_autoscaler_runs_on_core_nodes_with_matching_image(run: Run) -> None:
    values = autoscaler_values(run)
    assert values["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}
    assert values["image"]["tag"] == "v1.35.2"
    role = run.one("aws:iam/role:Role", "aws-autoscaler-role")
    annotations = values["rbac"]["serviceAccount"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}
    assert values["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"


def test_autoscaler_may_resize_only_this_clusters_groups(run: Run) -> None:
    policy = json.loads(
        run.one("aws:iam/rolePolicy:RolePolicy", "aws-autoscaler-role-policy").inputs["policy"]
    )
    scale = next(s for s in policy["Statement"] if s.get("Sid") == "ScaleOwnGroups")
    names = sorted(
        group(run, key).outputs["resources"][0]["autoscalingGroups"][0]["name"]
        for key in configured_pools(run)
    )
    assert scale["Resource"] == [
        f"arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:*:autoScalingGroupName/{n}"
        for n in names
    ]
    cluster = run.one("aws:eks/cluster:Cluster").inputs["name"]
    assert scale["Condition"] == {"StringEquals": {f"aws:ResourceTag/{CA}/{cluster}": "owned"}}
    nodegroups = next(s for s in policy["Statement"] if s.get("Sid") == "DescribeOwnNodegroups")
    assert nodegroups["Resource"] == f"arn:aws:eks:us-west-2:123456789012:nodegroup/{cluster}/*/*"


def test_device_plugin_runs_on_gpu_nodes_through_their_taints(run: Run) -> None:
    release = run.one(RELEASE, "aws-eks-nvidia-device-plugin")
    assert release.inputs["version"] == "0.20.0"
    assert release.inputs["name"] == "nvidia-device-plugin"
    values = release.inputs["values"]
    tolerated = {t["key"] for t in values["tolerations"]}
    for taint in group(run, "gpu").inputs["taints"]:
        assert taint["key"] in tolerated
    (term,) = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    (expression,) = term["matchExpressions"]
    assert expression == {"key": "k8s.amazonaws.com/accelerator", "operator": "Exists"}
    assert expression["key"] in group(run, "gpu").inputs["labels"]
    assert expression["key"] not in group(run, "user").inputs["labels"]


def test_device_plugin_works_with_the_unprivileged_envvar_refused(run: Run) -> None:
    """AL2023 NVIDIA AMIs from v20260423 ignore NVIDIA_VISIBLE_DEVICES in containers without
    CAP_SYS_ADMIN (amazon-eks-ami#2706): the plugin runs privileged, and user pods get their
    GPUs through CDI in the CRI request, which containerd injects itself."""
    values = run.one(RELEASE, "aws-eks-nvidia-device-plugin").inputs["values"]
    assert values["securityContext"] == {"privileged": True}
    assert values["deviceListStrategy"] == "cdi-cri"
    assert "envvar" not in values["deviceListStrategy"].split(",")
