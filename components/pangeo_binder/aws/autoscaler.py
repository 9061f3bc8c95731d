"""The cluster autoscaler: a pinned Helm release on the core nodes, discovering its groups by
tag, allowed to resize only this cluster's Auto Scaling groups (IRSA, no keys)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from pangeo_binder import catalog
from pangeo_binder.aws.identity import ROLE_ARN_ANNOTATION, Oidc, irsa_role, policy_document
from pangeo_binder.aws.node_groups import AUTOSCALER
from pangeo_binder.scheduling import PURPOSE_LABELS

CHART = "cluster-autoscaler"
# The current chart (kubernetes/autoscaler cluster-autoscaler-chart-9.59.0, 2026-07-21;
# looked up 2026-11-26). Its default image is ignored: the tag follows the cluster's minor.
CHART_VERSION = "9.59.0"
CHART_REPO = "https://kubernetes.github.io/autoscaler"
RELEASE = "cluster-autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"

# Read-only calls without resource-level permissions: AWS accepts only "*" for them.
DESCRIBE_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
]
SCALE_ACTIONS = [
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
]


def autoscaler_values(
    *, cluster_name: str, region: str, kubernetes_version: str, role_arn: pulumi.Input[str]
) -> dict[str, Any]:
    """Chart values. The image minor matches the cluster's, as upstream requires; the
    least-waste expander picks the cheapest fitting group; local storage (emptyDir in Dask
    workers) does not pin a node forever."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {
            "clusterName": cluster_name,
            "tags": [f"{AUTOSCALER}/enabled", f"{AUTOSCALER}/{cluster_name}"],
        },
        "fullnameOverride": RELEASE,
        "image": {"tag": catalog.aws().cluster_autoscaler_image(kubernetes_version)},
        "rbac": {
            "create": True,
            "serviceAccount": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {ROLE_ARN_ANNOTATION: role_arn},
            },
        },
        "nodeSelector": dict(PURPOSE_LABELS["core"]),
        "priorityClassName": "system-cluster-critical",
        # The chart leaves resources empty (BestEffort on the core node); this is the
        # example its values.yaml gives, with room above it for memory.
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
        "extraArgs": {
            "balance-similar-node-groups": True,
            "expander": "least-waste",
            "skip-nodes-with-local-storage": False,
            "scale-down-unneeded-time": "10m",
            "scale-down-delay-after-add": "10m",
        },
    }


def autoscaler_policy(
    *, cluster_name: str, region: str, account_id: str, group_names: list[str]
) -> str:
    """Resize and terminate only this cluster's groups, named one by one and tagged as
    owned by the cluster; describe node groups of this cluster only."""
    return policy_document(
        [
            {"Sid": "Describe", "Effect": "Allow", "Action": DESCRIBE_ACTIONS, "Resource": "*"},
            {
                "Sid": "ScaleOwnGroups",
                "Effect": "Allow",
                "Action": SCALE_ACTIONS,
                "Resource": [
                    f"arn:aws:autoscaling:{region}:{account_id}:autoScalingGroup:*:"
                    f"autoScalingGroupName/{group}"
                    for group in sorted(group_names)
                ],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{AUTOSCALER}/{cluster_name}": "owned"}
                },
            },
            {
                "Sid": "DescribeOwnNodegroups",
                "Effect": "Allow",
                "Action": ["eks:DescribeNodegroup"],
                "Resource": f"arn:aws:eks:{region}:{account_id}:nodegroup/{cluster_name}/*/*",
            },
        ]
    )


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler release and its IRSA role."""

    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        region: str,
        account_id: str,
        kubernetes_version: str,
        oidc: Oidc,
        group_names: list[pulumi.Output[str]],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:ClusterAutoscaler", name, None, opts)
        role = irsa_role(
            f"{name}-role",
            role_name=f"{cluster_name}-autoscaler",
            oidc=oidc,
            service_account=f"{NAMESPACE}/{SERVICE_ACCOUNT}",
            description=f"Cluster autoscaler of {cluster_name}",
            policy=pulumi.Output.all(*group_names).apply(
                lambda names: autoscaler_policy(
                    cluster_name=cluster_name,
                    region=region,
                    account_id=account_id,
                    group_names=list(names),
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            values=autoscaler_values(
                cluster_name=cluster_name,
                region=region,
                kubernetes_version=kubernetes_version,
                role_arn=role.arn,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.role_arn = role.arn
        self.register_outputs({"roleArn": self.role_arn})
