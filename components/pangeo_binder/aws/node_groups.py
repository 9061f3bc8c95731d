"""EKS managed node groups that scale from zero: plain functions for their arguments and
autoscaler tags, and a thin component per group.

A group at zero has no node for the cluster autoscaler to copy, so it plans from the group's
Auto Scaling group tags (`k8s.io/cluster-autoscaler/node-template/...`) and from
`eks:DescribeNodegroup`. EKS does not copy node group tags to the ASG, so the node-template
tags go on the ASG itself, and they are computed from the same labels and taints the node
group gets. The two discovery tags (`k8s.io/cluster-autoscaler/enabled` and
`k8s.io/cluster-autoscaler/<cluster>`) are EKS's own: it puts them on every managed group's
ASG, and a resource of ours for them would delete EKS's tag when it is removed.

EKS refuses a minimum above the current desired size ("minimum capacity can't be greater
than desired size") and a maximum below it, and the desired size is the autoscaler's (ignored
by the program). So before planning a group the program reads its live desired size, and
when a changed minimum or maximum leaves it outside the new bounds the desired size follows
to the nearest bound on that run (`scaling_plan`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import yaml

from pangeo_binder import machines
from pangeo_binder.aws.config import GP3_BASE_THROUGHPUT, AwsImageCache, AwsNodePool
from pangeo_binder.scheduling import Taint, node_labels, node_taints

AUTOSCALER = "k8s.io/cluster-autoscaler"
# The cluster autoscaler's AWS provider treats nodes with this label as GPU nodes, so it
# waits for the device plugin instead of judging a fresh GPU node useless.
GPU_LABEL = "k8s.amazonaws.com/accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
ROOT_DEVICE = "/dev/xvda"  # the root volume of AL2023 EKS AMIs
# The autoscaler owns the size once the group exists.
IGNORED_SIZE = ["scalingConfig.desiredSize"]
# nodeadm turns FastImagePull into the SOCI snapshotter only on nodes with at least 4 vCPUs
# and 7 GiB, and silently ignores it below (amazon-eks-ami, nodeadm's UseSOCISnapshotter,
# read 2026-12). Shapes are nominal, as in data/machine_shapes.yaml.
FAST_PULL_MIN_VCPUS = 4
FAST_PULL_MIN_MEMORY_GIB = 7
GP3_BASE_IOPS = 3000
# gp3 provisions at most 0.25 MiB/s per IOPS.
GP3_IOPS_PER_MIBPS = 4
MIME_BOUNDARY = "PANGEO-BINDER-NODECONFIG"


def parallel_pull(pool: AwsNodePool, cache: AwsImageCache | None) -> bool:
    """Whether the group pulls with SOCI parallel pull: user and dask groups (where users
    wait for multi-GB images) whose every instance type qualifies. Core nodes pull small
    images; a mixed group with one small type would get it on some nodes and not others."""
    if cache is None or not cache.parallel_pull or pool.purpose not in ("user", "dask"):
        return False
    shapes = [machines.shape("aws", kind) for kind in pool.all_instance_types]
    return all(
        shape is not None
        and shape.vcpus >= FAST_PULL_MIN_VCPUS
        and shape.memory_gib >= FAST_PULL_MIN_MEMORY_GIB
        for shape in shapes
    )


def fast_pull_user_data() -> str:
    """Base64 MIME user data with one nodeadm NodeConfig part turning on FastImagePull. EKS
    merges it with its own NodeConfig (cluster endpoint, CA) for managed AL2023 groups."""
    node_config = yaml.safe_dump(
        {
            "apiVersion": "node.eks.aws/v1alpha1",
            "kind": "NodeConfig",
            "spec": {"featureGates": {"FastImagePull": True}},
        },
        sort_keys=False,
    )
    text = (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\n\n'
        f"--{MIME_BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n\n"
        f"{node_config}\n"
        f"--{MIME_BOUNDARY}--\n"
    )
    return base64.b64encode(text.encode()).decode()


def root_volume(
    pool: AwsNodePool, throughput: int | None
) -> aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs:
    """gp3 root volume of the configured size; with `throughput` (MiB/s) raised above the
    included 125, and IOPS raised above the included 3000 only when the throughput needs it."""
    performance = {}
    if throughput is not None and throughput > GP3_BASE_THROUGHPUT:
        performance = {
            "throughput": throughput,
            "iops": max(GP3_BASE_IOPS, throughput * GP3_IOPS_PER_MIBPS),
        }
    return aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
        volume_size=pool.disk_size_gb,
        volume_type="gp3",
        encrypted="true",
        delete_on_termination="true",
        **performance,
    )


def ami_type(pool: AwsNodePool) -> str:
    """AL2023 for every group; the NVIDIA variant (driver and container toolkit) for GPUs."""
    arch = "ARM_64" if pool.arm64 else "x86_64"
    return f"AL2023_{arch}_{'NVIDIA' if pool.gpu else 'STANDARD'}"


def group_labels(key: str, pool: AwsNodePool) -> dict[str, str]:
    labels = node_labels(key, pool)
    if pool.gpu:
        labels[GPU_LABEL] = pool.gpu.type
    return labels


def group_taints(pool: AwsNodePool) -> list[Taint]:
    """EKS does not taint GPU nodes itself, so GPU groups carry `nvidia.com/gpu` explicitly."""
    return node_taints(pool, taint_gpus=True)


def autoscaler_tags(key: str, pool: AwsNodePool) -> dict[str, str]:
    """The node template: labels, taints and GPUs of the group's nodes. Not the discovery
    tags, which EKS manages on the ASG itself."""
    tags: dict[str, str] = {}
    for label, value in group_labels(key, pool).items():
        tags[f"{AUTOSCALER}/node-template/label/{label}"] = value
    for taint in group_taints(pool):
        tags[f"{AUTOSCALER}/node-template/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    if pool.gpu:
        tags[f"{AUTOSCALER}/node-template/resources/{GPU_RESOURCE}"] = str(pool.gpu.count)
    return tags


def tag_suffix(tag_key: str) -> str:
    """A stable resource-name suffix for one ASG tag."""
    rest = tag_key.removeprefix(f"{AUTOSCALER}/")
    return re.sub(r"[^a-z0-9]+", "-", rest.lower()).strip("-")


@dataclass(frozen=True)
class ScalingPlan:
    """The desired size to send, and whether the program leaves it to the autoscaler."""

    desired_size: int
    ignore_desired: bool


def scaling_plan(pool: AwsNodePool, live_desired: int | None) -> ScalingPlan:
    """A new group starts at its minimum. An existing group keeps the autoscaler's desired
    size unless the configured bounds exclude it: then it follows to the bound (a raised
    minimum brings up that many nodes now; a lowered maximum removes the extra ones), since
    EKS would refuse the new bounds with the old desired size."""
    if live_desired is None:
        return ScalingPlan(pool.min_nodes, ignore_desired=True)
    bounded = min(max(live_desired, pool.min_nodes), pool.max_nodes)
    return ScalingPlan(bounded, ignore_desired=bounded == live_desired)


def group_name_pattern(key: str) -> str:
    """Names EKS gives the group of pool `key` (`<key>-` and a 26-digit suffix), so that
    pool `gpu` does not claim the groups of a pool `gpu-big`."""
    return rf"{re.escape(key)}-\d{{26}}"


def live_desired_sizes(
    cluster_name: str, keys: list[str], opts: pulumi.InvokeOptions
) -> dict[str, int]:
    """The current desired size of each pool's group, for the groups that exist. During a
    replacement two groups of one pool can exist; the larger size is kept."""
    if cluster_name not in (aws.eks.get_clusters(opts=opts).names or []):
        return {}
    names = aws.eks.get_node_groups(cluster_name=cluster_name, opts=opts).names or []
    sizes: dict[str, int] = {}
    for key in keys:
        for group in (n for n in names if re.fullmatch(group_name_pattern(key), n)):
            found = aws.eks.get_node_group(
                cluster_name=cluster_name, node_group_name=group, opts=opts
            )
            desired = found.scaling_configs[0].desired_size
            sizes[key] = max(desired, sizes.get(key, desired))
    return sizes


COST_TAG_KEYS = ("pangeo-binder.io/hub", "pangeo-binder.io/pool", "pangeo-binder.io/purpose")


def cost_tags(key: str, pool: AwsNodePool, cluster_name: str) -> dict[str, str]:
    """The cost allocation tags of a group's instances and volumes: which hub, pool, purpose."""
    return dict(zip(COST_TAG_KEYS, (cluster_name, key, pool.purpose), strict=True))


def launch_template_args(
    key: str, pool: AwsNodePool, cluster_name: str, cache: AwsImageCache | None = None
) -> aws.ec2.LaunchTemplateArgs:
    """gp3 root volume of the configured size, and IMDSv2 only with a hop limit of 1: a
    container is one hop further than the node, so user pods cannot reach the node's
    credentials (their AWS access comes from IRSA). Groups with parallel pull
    (`parallel_pull`) get FastImagePull in their user data and the cache settings' volume
    throughput: parallel pull writes layers as fast as the disk takes them."""
    tags = {"Name": f"{cluster_name}-{key}", **cost_tags(key, pool, cluster_name)}
    fast = parallel_pull(pool, cache)
    return aws.ec2.LaunchTemplateArgs(
        name_prefix=f"{cluster_name}-{key}-",
        description=f"Nodes of the {key} group of {cluster_name}",
        update_default_version=True,
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=ROOT_DEVICE,
                ebs=root_volume(pool, cache.pull_throughput_mibps if fast and cache else None),
            )
        ],
        user_data=fast_pull_user_data() if fast else None,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
            instance_metadata_tags="disabled",
        ),
        # Instances and volumes are created by the ASG, outside the provider's default tags.
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
            for kind in ("instance", "volume")
        ],
    )


def node_group_args(
    key: str,
    pool: AwsNodePool,
    *,
    cluster_name: pulumi.Input[str],
    kubernetes_version: pulumi.Input[str],
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    launch_template_id: pulumi.Input[str],
    launch_template_version: pulumi.Input[str],
    desired_size: int,
) -> aws.eks.NodeGroupArgs:
    """The group is named `<key>-<suffix>` so a replacement is created before the old group
    is removed; the desired size comes from `scaling_plan`."""
    return aws.eks.NodeGroupArgs(
        cluster_name=cluster_name,
        node_group_name_prefix=f"{key}-",
        version=kubernetes_version,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        ami_type=ami_type(pool),
        capacity_type="SPOT" if pool.spot else "ON_DEMAND",
        instance_types=pool.all_instance_types,
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(
            min_size=pool.min_nodes, max_size=pool.max_nodes, desired_size=desired_size
        ),
        labels=group_labels(key, pool),
        taints=[
            aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.upper_effect)
            for t in group_taints(pool)
        ],
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
            id=launch_template_id, version=launch_template_version
        ),
        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
        tags={"pangeo-binder.io/pool": key},
    )


class NodeGroup(pulumi.ComponentResource):
    """One managed node group with its launch template and its ASG's autoscaler tags."""

    node_group: aws.eks.NodeGroup
    autoscaling_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        key: str,
        pool: AwsNodePool,
        *,
        cluster_name: str,
        cluster: aws.eks.Cluster,
        node_role_arn: pulumi.Input[str],
        subnet_ids: list[pulumi.Input[str]],
        depends_on: list[pulumi.Resource],
        live_desired: int | None = None,
        image_cache: AwsImageCache | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:NodeGroup", name, None, opts)
        plan = scaling_plan(pool, live_desired)
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ec2.LaunchTemplate(
            f"{name}-lt", launch_template_args(key, pool, cluster_name, image_cache), opts=child
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-group",
            node_group_args(
                key,
                pool,
                cluster_name=cluster.name,
                kubernetes_version=cluster.version,
                node_role_arn=node_role_arn,
                subnet_ids=subnet_ids,
                launch_template_id=template.id,
                launch_template_version=template.latest_version.apply(str),
                desired_size=plan.desired_size,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                ignore_changes=IGNORED_SIZE if plan.ignore_desired else [],
            ),
        )
        self.autoscaling_group_name = self.node_group.resources.apply(
            lambda resources: resources[0].autoscaling_groups[0].name
        )
        for tag_key, value in autoscaler_tags(key, pool).items():
            aws.autoscaling.Tag(
                f"{name}-asg-{tag_suffix(tag_key)}",
                autoscaling_group_name=self.autoscaling_group_name,
                tag=aws.autoscaling.TagTagArgs(key=tag_key, value=value, propagate_at_launch=False),
                opts=child,
            )
        self.register_outputs({"autoscalingGroupName": self.autoscaling_group_name})
