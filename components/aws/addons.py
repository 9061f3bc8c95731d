"""What the cluster needs besides nodes: EKS managed add-ons, the default StorageClass and the
NVIDIA device plugin. Their settings are plain functions the tests read directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.aws.node_groups import GPU_LABEL
from components.scheduling import GPU_TAINT, PURPOSE_TAINTS

# The managed add-on installs these service accounts; IRSA roles trust exactly them.
VPC_CNI_SERVICE_ACCOUNT = "kube-system/aws-node"
EBS_CSI_SERVICE_ACCOUNT = "kube-system/ebs-csi-controller-sa"

NVIDIA_CHART = "nvidia-device-plugin"
NVIDIA_CHART_VERSION = "0.17.1"
NVIDIA_CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"


@dataclass(frozen=True)
class Addon:
    """One EKS managed add-on; `before_nodes` ones must be running for nodes to become Ready."""

    name: str
    before_nodes: bool
    configuration: dict[str, Any] | None = None
    service_account: str | None = None
    managed_policy: str | None = None


def vpc_cni_configuration() -> dict[str, Any]:
    """Network policy enforcement is off by default: without it every NetworkPolicy the hub
    writes (singleuser egress, hub ingress) is accepted and silently ignored."""
    return {"enableNetworkPolicy": "true"}


ADDONS = (
    Addon(
        "vpc-cni",
        before_nodes=True,
        configuration=vpc_cni_configuration(),
        # Its ENI permissions stay off the node role, where every pod's node could use them.
        service_account=VPC_CNI_SERVICE_ACCOUNT,
        managed_policy="arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ),
    Addon("kube-proxy", before_nodes=True),
    # Deployments: they only become healthy once nodes exist.
    Addon("coredns", before_nodes=False),
    Addon(
        "aws-ebs-csi-driver",
        before_nodes=False,
        service_account=EBS_CSI_SERVICE_ACCOUNT,
        managed_policy="arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
    ),
)


def addon_configuration(addon: Addon) -> str | None:
    return json.dumps(addon.configuration, sort_keys=True) if addon.configuration else None


def gp3_storage_class(prod: bool) -> dict[str, Any]:
    """The default StorageClass (hub database, home directories): gp3 is cheaper and faster
    than gp2; volumes are created in the zone of the pod's node; prod keeps volumes whose
    claim is deleted, so a mistaken uninstall loses no one's home directory."""
    return {
        "metadata": {
            "name": "gp3",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volume_binding_mode": "WaitForFirstConsumer",
        "allow_volume_expansion": True,
        "reclaim_policy": "Retain" if prod else "Delete",
    }


def device_plugin_values() -> dict[str, Any]:
    """The AL2023 NVIDIA AMI has the driver and container toolkit but no device plugin, so
    without this DaemonSet no node advertises `nvidia.com/gpu`. It runs only on GPU nodes
    (labelled by their group) and tolerates the purpose taints those nodes also carry."""
    taints = [GPU_TAINT[0]] + [t[0] for t in PURPOSE_TAINTS.values() if t is not None]
    return {
        "tolerations": [
            {"key": key, "operator": "Exists", "effect": "NoSchedule"} for key in taints
        ]
        + [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_LABEL, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "priorityClassName": "system-node-critical",
    }
