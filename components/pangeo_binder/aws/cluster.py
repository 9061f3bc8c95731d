"""EKS: the control plane, who may administer it, IRSA, add-ons, node groups and a
Kubernetes provider built from the cluster's outputs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from pangeo_binder.aws import addons
from pangeo_binder.aws.config import AwsCloud, role_name, role_path, same_role
from pangeo_binder.aws.identity import (
    STS_AUDIENCE,
    Oidc,
    attach_policies,
    irsa_role,
    policy_document,
    service_trust_policy,
)
from pangeo_binder.aws.kubeconfig import eks_kubeconfig
from pangeo_binder.aws.network import Network
from pangeo_binder.aws.node_groups import NodeGroup, live_desired_sizes
from pangeo_binder.guards import guarded

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
# Staging keeps who did what (audit) and who authenticated as whom (authenticator). The api,
# controllerManager and scheduler logs are chatty: CloudWatch ingestion is billed per GB and
# a busy API server log can cost more than the control plane itself.
STAGING_LOG_TYPES = ["audit", "authenticator"]
CLUSTER_POLICIES = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
# Join the cluster and pull images; the CNI's ENI permissions go to its own IRSA role.
NODE_POLICIES = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
]
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Read-only, cluster wide, like Kubernetes' `view` role (no Secrets): what a preview reads.
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


def cluster_args(
    cloud: AwsCloud,
    *,
    cluster_name: str,
    prod: bool,
    role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    key_arn: pulumi.Input[str],
) -> aws.eks.ClusterArgs:
    """The control plane. Access is by access entries only (no aws-auth ConfigMap, no implicit
    admin for whoever created it); add-ons are ours to manage, not self-managed copies."""
    return aws.eks.ClusterArgs(
        name=cluster_name,
        version=cloud.kubernetes_version,
        role_arn=role_arn,
        vpc_config=aws.eks.ClusterVpcConfigArgs(
            subnet_ids=subnet_ids,
            endpoint_private_access=True,  # nodes reach the API inside the VPC
            endpoint_public_access=True,
            public_access_cidrs=[str(cidr) for cidr in cloud.control_plane_access],
        ),
        access_config=aws.eks.ClusterAccessConfigArgs(
            authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
        ),
        bootstrap_self_managed_addons=False,
        enabled_cluster_log_types=log_types(prod),
        encryption_config=aws.eks.ClusterEncryptionConfigArgs(
            provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key_arn),
            resources=["secrets"],
        ),
        # At the end of standard support EKS upgrades the cluster instead of billing
        # extended support (six times the control-plane price).
        upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
        deletion_protection=prod,
    )


def log_types(prod: bool) -> list[str]:
    """All five control-plane logs in prod; audit and authenticator in staging (cost)."""
    return list(LOG_TYPES if prod else STAGING_LOG_TYPES)


@dataclass(frozen=True)
class AdminPrincipals:
    """Access entries by resource-name suffix, and which one is the deploying role's."""

    entries: dict[str, str]
    deployer: str


def admin_principals(admin_role_arns: list[str], deployer_arn: str) -> AdminPrincipals:
    """One entry per listed role and one for the deploying role, each named after its role
    (`admin-<name>`), so a principal keeps its resource whether or not it is also listed:
    adding the deployer to the list, or another role deploying, never re-creates an entry
    for a principal that has one (EKS refuses a second entry for a principal).

    A listed ARN never stands in for the deployer's: one with the deployer's account and
    role name but another path names a role that does not exist (IAM role names are unique
    in an account), and trusting it would lock the program out of the cluster it manages.
    That is refused, naming the ARN to list instead.
    """
    entries = {_suffix(arn): arn for arn in admin_role_arns}
    if deployer_arn in admin_role_arns:
        return AdminPrincipals(entries, _suffix(deployer_arn))
    for arn in admin_role_arns:
        if _account(arn) == _account(deployer_arn) and role_name(arn) == role_name(deployer_arn):
            raise ValueError(
                f"clouds.aws.adminRoleArns lists {arn}, but the deploying role is "
                f"{deployer_arn} (path /{role_path(deployer_arn)}): list that ARN"
            )
    # A listed role of the same name in another account keeps its name.
    suffix = _suffix(deployer_arn) if _suffix(deployer_arn) not in entries else "deployer"
    entries[suffix] = deployer_arn
    return AdminPrincipals(entries, suffix)


def viewer_principals(viewer_role_arns: list[str], deployer_arn: str) -> dict[str, str]:
    """Read-only entries by resource-name suffix (`viewer-<name>`). The config keeps them
    apart from adminRoleArns and deployerRoleArn; a viewer running the program without
    deployerRoleArn would be the deployer too, and EKS keeps one entry per principal."""
    for arn in viewer_role_arns:
        if same_role(arn, deployer_arn):
            raise ValueError(
                f"clouds.aws.viewerRoleArns lists {arn}, the role running the program, which "
                "would make it the deploying role (cluster admin) as well: set "
                "clouds.aws.deployerRoleArn to the role that deploys"
            )
    return {f"viewer-{role_name(arn).lower()}": arn for arn in viewer_role_arns}


def caller_without_access(
    caller_arn: str, admin_role_arns: list[str], viewer_role_arns: list[str], deployer_arn: str
) -> str | None:
    """Why the Kubernetes part of this run will be refused by the cluster, if it will: the
    program reads the cluster as the caller, whose role then needs an access entry."""
    if caller_arn in [deployer_arn, *admin_role_arns, *viewer_role_arns]:
        return None
    return (
        f"{caller_arn} runs the program but has no access entry on the cluster (it is not "
        "clouds.aws.deployerRoleArn, nor in adminRoleArns or viewerRoleArns): reading the "
        "cluster's Kubernetes resources will be refused; list it in adminRoleArns to deploy, "
        "in viewerRoleArns to preview"
    )


def _suffix(arn: str) -> str:
    return f"admin-{role_name(arn).lower()}"


def _account(arn: str) -> str:
    return arn.split(":")[4]


def kms_key_policy_for(key_arn: str) -> str:
    """What the cluster role needs to envelope-encrypt secrets with the key."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                "Resource": key_arn,
            }
        ]
    )


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster ready for the hub layer: node groups for every purpose that scale from
    zero, IRSA, encrypted secrets, control-plane logs, and a Kubernetes provider that
    authenticates with `aws eks get-token`."""

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    oidc: Oidc
    node_groups: dict[str, NodeGroup]

    def __init__(
        self,
        name: str,
        cloud: AwsCloud,
        *,
        cluster_name: str,
        network: Network,
        zones: list[str],
        deployer_arn: str,
        prod: bool,
        aws_provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:EksCluster", name, None, opts)
        on_provider = pulumi.InvokeOptions(provider=aws_provider)
        child = pulumi.ResourceOptions(parent=self)

        cluster_role = aws.iam.Role(
            f"{name}-role",
            name=f"{cluster_name}-cluster",
            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
            opts=child,
        )
        role_attachments = attach_policies(f"{name}-role", cluster_role, CLUSTER_POLICIES, child)
        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in {cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30 if prod else 7,
            opts=guarded(child, prod=prod, holds_data=False),
        )
        aws.kms.Alias(
            f"{name}-secrets-key",
            name=f"alias/{cluster_name}-secrets",
            target_key_id=key.key_id,
            opts=child,
        )
        key_grant = aws.iam.RolePolicy(
            f"{name}-role-kms",
            role=cluster_role.name,
            policy=key.arn.apply(kms_key_policy_for),
            opts=child,
        )
        # EKS would create this group itself, keeping logs forever; audit logs grow fast.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=90 if prod else 14,
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            cluster_args(
                cloud,
                cluster_name=cluster_name,
                prod=prod,
                role_arn=cluster_role.arn,
                subnet_ids=[network.private_subnet_ids[zone] for zone in zones],
                key_arn=key.arn,
            ),
            opts=guarded(
                pulumi.ResourceOptions(
                    parent=self, depends_on=[*role_attachments, key_grant, logs]
                ),
                prod=prod,
                holds_data=False,
            ),
        )
        admin_access = self._access_entries(name, cluster, cloud.admin_role_arns, deployer_arn)
        self._viewer_entries(name, cluster, viewer_principals(cloud.viewer_role_arns, deployer_arn))

        issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=[STS_AUDIENCE], opts=child
        )
        self.oidc = Oidc(provider_arn=oidc_provider.arn, issuer_url=issuer)

        node_role = aws.iam.Role(
            f"{name}-nodes",
            name=f"{cluster_name}-nodes",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            opts=child,
        )
        node_attachments = attach_policies(f"{name}-nodes", node_role, NODE_POLICIES, child)
        self.node_role_name = node_role.name

        # Each add-on at the version EKS marks as default for the cluster's Kubernetes minor,
        # looked up on every run: changing kubernetesVersion moves the add-ons with it.
        versions = {
            addon.name: addons.addon_version(addon, cloud.kubernetes_version, on_provider)
            for addon in addons.ADDONS
        }
        installed: dict[str, aws.eks.Addon] = {}
        for addon in (a for a in addons.ADDONS if a.before_nodes):
            installed[addon.name] = self._addon(
                name, cluster_name, cluster, addon, versions[addon.name], []
            )

        live_desired = live_desired_sizes(cluster_name, list(cloud.node_pools), on_provider)
        self.node_groups = {
            key: NodeGroup(
                f"{name}-pool-{key}",
                key,
                pool,
                cluster_name=cluster_name,
                cluster=cluster,
                node_role_arn=node_role.arn,
                subnet_ids=network.node_subnet_ids(cloud.pool_zones(key, zones)),
                depends_on=[*node_attachments, *installed.values()],
                live_desired=live_desired.get(key),
                image_cache=cloud.image_cache,
                opts=child,
            )
            for key, pool in cloud.node_pools.items()
        }
        groups = [group.node_group for group in self.node_groups.values()]
        for addon in (a for a in addons.ADDONS if not a.before_nodes):
            installed[addon.name] = self._addon(
                name, cluster_name, cluster, addon, versions[addon.name], groups
            )

        self.cluster_name = cluster.name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data
            ).apply(lambda parts: eks_kubeconfig(parts[0], cloud.region, parts[1], parts[2]))
        )
        # The program authenticates as the deployer, so its access entry must exist first;
        # hub releases wait for nodes, as a chart with nowhere to run times out.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*admin_access, *groups]),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            **addons.gp3_storage_class(prod),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=[installed["aws-ebs-csi-driver"]])
            ),
        )
        if any(pool.gpu for pool in cloud.node_pools.values()):
            k8s.helm.v3.Release(
                f"{name}-nvidia-device-plugin",
                name="nvidia-device-plugin",
                chart=addons.NVIDIA_CHART,
                version=addons.NVIDIA_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=addons.NVIDIA_CHART_REPO),
                namespace="kube-system",
                values=addons.device_plugin_values(),
                opts=on_cluster,
            )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc.provider_arn,
                "autoscalingGroupNames": {
                    key: group.autoscaling_group_name for key, group in self.node_groups.items()
                },
            }
        )

    def _access_entries(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        admin_role_arns: list[str],
        deployer_arn: str,
    ) -> list[aws.eks.AccessPolicyAssociation]:
        """Cluster admin for each admin role and for the deploying principal (once, if it is
        also listed), each entry named after its role. The deployer's entry was once named
        `deployer`: the alias adopts it instead of creating a second entry for its role."""
        principals = admin_principals(admin_role_arns, deployer_arn)
        associations = []
        for suffix, arn in principals.entries.items():
            opts = pulumi.ResourceOptions(parent=self)
            if suffix == principals.deployer and suffix != "deployer":
                opts = pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=f"{name}-deployer")]
                )
            associations.append(self._entry(f"{name}-{suffix}", cluster, arn, ADMIN_POLICY, opts))
        return associations

    def _viewer_entries(self, name: str, cluster: aws.eks.Cluster, viewers: dict[str, str]) -> None:
        """Read-only access for each viewer role, cluster wide, named after its role."""
        for suffix, arn in viewers.items():
            opts = pulumi.ResourceOptions(parent=self)
            self._entry(f"{name}-{suffix}", cluster, arn, VIEW_POLICY, opts)

    @staticmethod
    def _entry(
        name: str,
        cluster: aws.eks.Cluster,
        principal_arn: str,
        policy_arn: str,
        opts: pulumi.ResourceOptions,
    ) -> aws.eks.AccessPolicyAssociation:
        """One access entry and its cluster-wide access policy."""
        entry = aws.eks.AccessEntry(
            name, cluster_name=cluster.name, principal_arn=principal_arn, type="STANDARD", opts=opts
        )
        return aws.eks.AccessPolicyAssociation(
            name,
            cluster_name=cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=policy_arn,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=opts,
        )

    def _addon(
        self,
        name: str,
        cluster_name: str,
        cluster: aws.eks.Cluster,
        addon: addons.Addon,
        version: str,
        depends_on: list[pulumi.Resource],
    ) -> aws.eks.Addon:
        role = None
        if addon.service_account is not None:
            role = irsa_role(
                f"{name}-{addon.name}",
                role_name=f"{cluster_name}-{addon.name}",
                oidc=self.oidc,
                service_account=addon.service_account,
                description=f"{addon.name} add-on of {cluster_name}",
                managed_policy_arns=[addon.managed_policy] if addon.managed_policy else [],
                opts=pulumi.ResourceOptions(parent=self),
            )
        return aws.eks.Addon(
            f"{name}-{addon.name}",
            cluster_name=cluster.name,
            addon_name=addon.name,
            addon_version=version,
            configuration_values=addons.addon_configuration(addon),
            service_account_role_arn=role.arn if role is not None else None,
            # Adopt whatever a previous install left and keep our settings on upgrades.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
