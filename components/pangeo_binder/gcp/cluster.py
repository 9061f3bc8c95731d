"""GKE: a VPC-native network, the cluster, its node pools and a Kubernetes provider for it."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from pangeo_binder.gcp.config import GcpCloud, Maintenance
from pangeo_binder.gcp.kubeconfig import gke_kubeconfig
from pangeo_binder.gcp.node_pools import IGNORED_COUNTS, plan_pool
from pangeo_binder.guards import guarded

# Enough for logs, metrics and pulling images; bundled by Google for exactly this use.
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
PODS_RANGE = "pods"
SERVICES_RANGE = "services"


def maintenance_policy(maintenance: Maintenance) -> gcp.container.ClusterMaintenancePolicyArgs:
    """Upgrades only inside the recurring window and never inside an exclusion."""
    return gcp.container.ClusterMaintenancePolicyArgs(
        recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
            start_time=_rfc3339(maintenance.window_start),
            end_time=_rfc3339(maintenance.window_end),
            recurrence=maintenance.recurrence,
        ),
        maintenance_exclusions=[
            gcp.container.ClusterMaintenancePolicyMaintenanceExclusionArgs(
                exclusion_name=exclusion.name,
                start_time=_rfc3339(exclusion.start),
                end_time=_rfc3339(exclusion.end),
                exclusion_options=gcp.container.ClusterMaintenancePolicyMaintenanceExclusionExclusionOptionsArgs(
                    scope=exclusion.scope
                ),
            )
            for exclusion in maintenance.exclusions
        ],
    )


def authorized_networks(cloud: GcpCloud) -> gcp.container.ClusterMasterAuthorizedNetworksConfigArgs:
    """Who may reach the public endpoint (`controlPlaneAccess`); nodes use the internal path."""
    return gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
        cidr_blocks=[
            gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                cidr_block=str(cidr), display_name=f"controlPlaneAccess {i}"
            )
            for i, cidr in enumerate(cloud.control_plane_access)
        ]
    )


def _rfc3339(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def cluster_args(
    cloud: GcpCloud,
    *,
    cluster_name: str,
    prod: bool,
    network: pulumi.Input[str],
    subnetwork: pulumi.Input[str],
    node_service_account: pulumi.Input[str],
) -> gcp.container.ClusterArgs:
    """The cluster itself; its pools are separate resources so a pool change never touches it."""
    return gcp.container.ClusterArgs(
        name=cluster_name,
        project=cloud.project,
        location=cloud.location,
        network=network,
        subnetwork=subnetwork,
        networking_mode="VPC_NATIVE",
        ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
            cluster_secondary_range_name=PODS_RANGE,
            services_secondary_range_name=SERVICES_RANGE,
        ),
        # The default pool only exists while the cluster is created; it gets our node identity
        # too, so not even that pool runs as the broad default compute account.
        remove_default_node_pool=True,
        initial_node_count=1,
        node_config=gcp.container.ClusterNodeConfigArgs(
            service_account=node_service_account,
            oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
            workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(
                mode="GKE_METADATA"
            ),
            shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_integrity_monitoring=True
            ),
        ),
        # GKE cost allocation: the billing export breaks the cluster's cost down by namespace
        # and Kubernetes labels (pods' hub.jupyter.org/username, the nodes' pool).
        cost_management_config=gcp.container.ClusterCostManagementConfigArgs(enabled=True),
        release_channel=gcp.container.ClusterReleaseChannelArgs(
            channel=cloud.maintenance.release_channel
        ),
        maintenance_policy=maintenance_policy(cloud.maintenance),
        workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
            workload_pool=f"{cloud.project}.svc.id.goog"
        ),
        # Dataplane V2 enforces NetworkPolicy natively (no Calico add-on to run).
        datapath_provider="ADVANCED_DATAPATH",
        enable_shielded_nodes=True,
        enable_legacy_abac=False,
        master_authorized_networks_config=authorized_networks(cloud),
        master_auth=gcp.container.ClusterMasterAuthArgs(
            client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(
                issue_client_certificate=False
            )
        ),
        # `enabled` is node auto-provisioning, which we do not use: pools are declared.
        cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
            enabled=False, autoscaling_profile="OPTIMIZE_UTILIZATION"
        ),
        # The provider defaults to true; staging must be destroyable, prod must not be.
        deletion_protection=prod,
    )


class GkeCluster(pulumi.ComponentResource):
    """A GKE cluster ready for the hub layer: pools for every purpose, workload identity, a
    least-privilege node identity, and a Kubernetes provider that authenticates by exec."""

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_service_account_email: pulumi.Output[str]
    node_pool_names: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        cluster_name: str,
        node_account_id: str,
        prod: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:gcp:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        network = gcp.compute.Network(
            f"{name}-network",
            name=cluster_name,
            project=cloud.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            name=cluster_name,
            project=cloud.project,
            region=cloud.region,
            network=network.id,
            ip_cidr_range=str(cloud.subnet_cidr),
            private_ip_google_access=True,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=PODS_RANGE, ip_cidr_range=str(cloud.pods_cidr)
                ),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(
                    range_name=SERVICES_RANGE, ip_cidr_range=str(cloud.services_cidr)
                ),
            ],
            opts=child,
        )

        node_sa = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=node_account_id,
            project=cloud.project,
            display_name=f"GKE nodes of {cluster_name}",
            opts=child,
        )
        node_role = gcp.projects.IAMMember(
            f"{name}-nodes-role",
            project=cloud.project,
            role=NODE_ROLE,
            member=node_sa.member,
            opts=child,
        )

        cluster = gcp.container.Cluster(
            f"{name}-cluster",
            cluster_args(
                cloud,
                cluster_name=cluster_name,
                prod=prod,
                network=network.id,
                subnetwork=subnet.id,
                node_service_account=node_sa.email,
            ),
            opts=guarded(
                pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[node_role],
                    # Settings of the temporary default pool: changing them must never
                    # replace the cluster.
                    ignore_changes=["nodeConfig", "initialNodeCount"],
                ),
                prod=prod,
                holds_data=False,
            ),
        )

        pools: dict[str, gcp.container.NodePool] = {}
        for key, pool in cloud.node_pools.items():
            plan = plan_pool(key, pool, node_sa.email, cloud.pool_zones(key))
            pools[key] = gcp.container.NodePool(
                f"{name}-pool-{key}",
                cluster=cluster.name,
                project=cloud.project,
                location=cloud.location,
                name_prefix=plan.name_prefix,
                node_locations=plan.node_locations,
                initial_node_count=plan.initial_node_count,
                autoscaling=plan.autoscaling,
                node_config=plan.node_config,
                management=plan.management,
                upgrade_settings=plan.upgrade_settings,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=IGNORED_COUNTS),
            )

        self.cluster_name = cluster.name
        self.node_service_account_email = node_sa.email
        self.node_pool_names = {key: pool.name for key, pool in pools.items()}
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate
            ).apply(lambda parts: gke_kubeconfig(*parts))
        )
        # Hub releases wait for the pools: a chart installed into a cluster without nodes
        # would time out waiting for its pods.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(pools.values())),
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "nodeServiceAccountEmail": self.node_service_account_email,
                "nodePoolNames": self.node_pool_names,
            }
        )
