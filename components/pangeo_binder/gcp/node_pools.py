"""GKE node pool arguments from a pool's config: a plain function the tests read directly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.config_shared import NodePool
from pangeo_binder.scheduling import node_labels, node_taints

# Node counts belong to the cluster autoscaler once the pool exists.
IGNORED_COUNTS = ["initialNodeCount", "nodeCount"]

# Newer machine series boot only from Hyperdisk; everything else uses pd-balanced (SSD-backed,
# far cheaper than pd-ssd, much faster image pulls than pd-standard).
HYPERDISK_ONLY = (
    "a3-ultragpu", "a4-", "a4x-", "c4-", "c4a-", "c4d-", "c4n-", "e4-", "e4a-", "g4-", "h4d-",
    "m4-", "n4-", "n4a-", "n4d-", "x4-", "z4d-",
)  # fmt: skip


def boot_disk_type(machine_type: str) -> str:
    return "hyperdisk-balanced" if machine_type.startswith(HYPERDISK_ONLY) else "pd-balanced"


@dataclass(frozen=True)
class PoolPlan:
    """Everything about one GKE pool except the cluster it joins."""

    name_prefix: str
    node_locations: list[str] | None
    initial_node_count: int
    autoscaling: gcp.container.NodePoolAutoscalingArgs
    node_config: gcp.container.NodePoolNodeConfigArgs
    management: gcp.container.NodePoolManagementArgs
    upgrade_settings: gcp.container.NodePoolUpgradeSettingsArgs


def plan_pool(
    key: str,
    pool: NodePool,
    service_account: pulumi.Input[str],
    zones: list[str] | None = None,
) -> PoolPlan:
    """The GKE arguments for pool `key`, placed in `zones` (`GcpCloud.pool_zones`).

    The pool is named `<key>-<generated suffix>` so a replacement (a new machine type) can be
    created before the old pool is removed. Totals, not per-zone counts, bound the autoscaler,
    so a regional cluster does not triple the minimum; location policy ANY lets it use whichever
    of the pool's zones has capacity (spot and GPUs often run out in one zone).
    """
    config = gcp.container.NodePoolNodeConfigArgs(
        machine_type=pool.machine_type,
        disk_size_gb=pool.disk_size_gb,
        disk_type=boot_disk_type(pool.machine_type),
        image_type="COS_CONTAINERD",
        spot=pool.spot,
        labels=node_labels(key, pool),
        # GCE labels on the VMs: the billing export attributes each node's cost to its pool.
        resource_labels={"pangeo-binder-pool": key, "pangeo-binder-purpose": pool.purpose},
        taints=[
            gcp.container.NodePoolNodeConfigTaintArgs(
                key=t.key, value=t.value, effect=t.upper_effect
            )
            # The GPU taint is declared: GKE adds it itself only to a GPU pool joining a
            # cluster with non-GPU pools, so pools created together may lack it. One report of
            # GKE refusing a duplicate nvidia.com/gpu taint (hashicorp/terraform-provider-google
            # #7928, 2020) did not reproduce for the maintainers on create; watch the first up.
            for t in node_taints(pool, taint_gpus=True)
        ],
        service_account=service_account,
        oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
        workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
            mode="GKE_METADATA"
        ),
        shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
            enable_secure_boot=True, enable_integrity_monitoring=True
        ),
        metadata={"disable-legacy-endpoints": "true"},
        # Image streaming: user and dask nodes start containers before the whole image is pulled.
        gcfs_config=gcp.container.NodePoolNodeConfigGcfsConfigArgs(enabled=pool.purpose != "core"),
        guest_accelerators=_accelerators(pool),
    )
    return PoolPlan(
        name_prefix=f"{key}-",
        node_locations=zones,
        # Per zone: enough that the pool starts at its minimum (GKE's default for a regional
        # cluster is three zones), so two core nodes start as two, not as one the autoscaler
        # may never add to while nothing is pending.
        initial_node_count=math.ceil(pool.min_nodes / (len(zones) if zones else 3)),
        autoscaling=gcp.container.NodePoolAutoscalingArgs(
            total_min_node_count=pool.min_nodes,
            total_max_node_count=pool.max_nodes,
            location_policy="ANY",
        ),
        node_config=config,
        management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
        # Surge upgrades add a node before draining one, so capacity never drops mid-upgrade.
        upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(
            strategy="SURGE", max_surge=1, max_unavailable=0
        ),
    )


def _accelerators(pool: NodePool) -> list[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs]:
    if pool.gpu is None:
        return []
    return [
        gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=pool.gpu.type,
            count=pool.gpu.count,
            # GKE installs the driver itself; no DaemonSet of ours to keep in step. DEFAULT is
            # the driver GKE pairs with the node version; LATEST could change the driver under
            # running notebooks on a node auto-upgrade.
            gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                gpu_driver_version="DEFAULT"
            ),
        )
    ]
