"""What the cluster needs besides nodes: EKS managed add-ons, the default StorageClass and the
NVIDIA device plugin. Their settings are plain functions the tests read directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.node_groups import GPU_LABEL
from pangeo_binder.scheduling import GPU_TAINT, PURPOSE_TAINTS

# The managed add-on installs these service accounts; IRSA roles trust exactly them.
VPC_CNI_SERVICE_ACCOUNT = "kube-system/aws-node"
EBS_CSI_SERVICE_ACCOUNT = "kube-system/ebs-csi-controller-sa"

NVIDIA_CHART = "nvidia-device-plugin"
# The current release (NVIDIA/k8s-device-plugin v0.20.0, in the chart index on 2026-08-20;
# looked up 2026-11-26).
NVIDIA_CHART_VERSION = "0.20.0"
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


def addon_version(addon: Addon, kubernetes_version: str, opts: pulumi.InvokeOptions) -> str:
    """The version EKS marks as the default for this Kubernetes minor (not the most recent:
    that one moves whenever AWS publishes a build, turning every `pulumi up` into an add-on
    upgrade). Pinned explicitly, so a control-plane upgrade brings the add-ons along instead
    of leaving the versions installed for the previous minor."""
    return aws.eks.get_addon_version(
        addon_name=addon.name,
        kubernetes_version=kubernetes_version,
        most_recent=False,
        opts=opts,
    ).version


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


# How GPUs reach containers on the AL2023 NVIDIA AMIs. Since AMI release v20260423 the
# NVIDIA container toolkit's `accept-nvidia-visible-devices-envvar-when-unprivileged` is false
# (awslabs/amazon-eks-ami#2706, closed 2026-05-06): the runtime ignores NVIDIA_VISIBLE_DEVICES
# in containers without CAP_SYS_ADMIN. Two things follow, as NVIDIA's maintainer explains in
# NVIDIA/k8s-device-plugin#856 ("must run with CAP_SYS_ADMIN or privileged"):
# - the plugin itself gets the driver libraries through that variable, so it runs privileged
#   (the chart adds SYS_ADMIN on its own only for volume-mounts or MIG strategies);
# - the default `envvar` list strategy would hand user pods (unprivileged) a variable the
#   runtime ignores, so they would see no GPU. `cdi-cri` passes the allocated devices in the
#   CRI's CDIDevices field and containerd injects them itself: the AMI's containerd runs with
#   `enable_cdi = true` (amazon-eks-ami nodeadm, containerd config), and the plugin writes the
#   CDI specs to /var/run/cdi, which the chart mounts. Reviewed 2026-11-26.
DEVICE_LIST_STRATEGY = "cdi-cri"


def device_plugin_values() -> dict[str, Any]:
    """The AL2023 NVIDIA AMI has the driver and container toolkit but no device plugin, so
    without this DaemonSet no node advertises `nvidia.com/gpu`. It runs only on GPU nodes
    (labelled by their group), tolerates the purpose taints those nodes also carry, runs
    privileged and hands devices to user pods through CDI (see DEVICE_LIST_STRATEGY)."""
    taints = [GPU_TAINT[0]] + [t[0] for t in PURPOSE_TAINTS.values() if t is not None]
    return {
        "deviceListStrategy": DEVICE_LIST_STRATEGY,
        "securityContext": {"privileged": True},
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
