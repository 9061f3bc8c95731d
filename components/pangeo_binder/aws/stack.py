"""One stack's AWS side: provider, VPC, EKS, autoscaler, buckets, registry, budget; typed
outputs for the hub in the same shape as on GCP."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.autoscaler import ClusterAutoscaler
from pangeo_binder.aws.budget import create_budget
from pangeo_binder.aws.cluster import (
    EksCluster,
    admin_principals,
    caller_without_access,
    viewer_principals,
)
from pangeo_binder.aws.config import AwsCloud
from pangeo_binder.aws.hub_address import HubAddress
from pangeo_binder.aws.identity import ROLE_ARN_ANNOTATION, irsa_role
from pangeo_binder.aws.image_cache import ImageCache
from pangeo_binder.aws.network import Network
from pangeo_binder.aws.node_groups import COST_TAG_KEYS
from pangeo_binder.aws.registry import PUBLIC_SUBPREFIX, ImageRegistry, builder_policy, push_login
from pangeo_binder.aws.storage import HubStorage
from pangeo_binder.outputs import CloudOutputs, ReservedAddress, WorkloadServiceAccounts


def default_zones(names: list[str]) -> list[str]:
    """The first three zones the account sees (two where a region offers only two)."""
    return list(names[:3])


def wrong_account(pinned: str | None, caller_account: str) -> str | None:
    """Why the program must stop when `clouds.aws.accountId` pins another account than the
    one the credentials belong to; None when it matches or nothing is pinned."""
    if pinned is None or pinned == caller_account:
        return None
    return (
        f"clouds.aws.accountId is {pinned}, but the AWS credentials this program runs with "
        f"belong to account {caller_account}: nothing was created. Use credentials for "
        f"{pinned} (AWS_PROFILE, aws sso login), or correct accountId"
    )


class AwsStack(pulumi.ComponentResource):
    """Everything one environment needs on AWS, with its own explicit provider (one region).

    Resource names derive from `deployment` (`pangeo_binder.naming.deployment`: e.g.
    `pangeo-binder-staging`, `pangeo-binder-staging-alice`), so two stacks can share an
    account; bucket names add the account id, as S3 names are global.
    `service_accounts` names the Kubernetes service accounts the bucket and registry roles
    trust (IRSA): the caller's, so this layer never reads the hub. `registry_tokens` are the
    image caches' upstream tokens by cache key (`dockerHub`, `ghcr`), secret. `qualifier`
    starts the image caches' prefixes (default: the environment; `pangeo_binder.naming`).
    """

    outputs: CloudOutputs

    def __init__(
        self,
        name: str,
        cloud: AwsCloud,
        *,
        deployment: str,
        environment: str,
        qualifier: str | None = None,
        service_accounts: WorkloadServiceAccounts,
        registry_tokens: dict[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:Stack", name, None, opts)
        prod = environment == "prod"
        provider = aws.Provider(
            f"{name}-provider",
            region=cloud.region,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"managed-by": "pulumi", "deployment": deployment}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, providers=[provider])
        on_provider = pulumi.InvokeOptions(provider=provider)
        # Plain values, not outputs: names, ARNs in policies and the admin entries depend on
        # them. The caller's role ARN (not its assumed-role session ARN) is what EKS needs.
        # The deployer's entry is for deployerRoleArn when set, so a preview under another
        # role (CI's preview role) plans the same entry as the deploy that follows it.
        caller = aws.get_caller_identity(opts=on_provider)
        # Before anything but the provider is registered: credentials left pointing at
        # another account must not build a cluster there.
        wrong = wrong_account(cloud.account_id, caller.account_id)
        if wrong:
            raise ValueError(wrong)
        caller_arn = aws.iam.get_session_context(arn=caller.arn, opts=on_provider).issuer_arn
        deployer_arn = cloud.deployer_role_arn or caller_arn
        account_id = caller.account_id
        # Refuse access lists that would stand in for the deployer before anything is
        # registered: the engine starts creating resources as soon as they are.
        admin_principals(cloud.admin_role_arns, deployer_arn)
        viewer_principals(cloud.viewer_role_arns, deployer_arn)
        problem = caller_without_access(
            caller_arn, cloud.admin_role_arns, cloud.viewer_role_arns, deployer_arn
        )
        if problem:
            pulumi.log.warn(problem, resource=self)
        zones = cloud.availability_zones or default_zones(
            aws.get_availability_zones(
                state="available",
                filters=[
                    aws.GetAvailabilityZonesFilterArgs(
                        name="opt-in-status", values=["opt-in-not-required"]
                    )
                ],
                opts=on_provider,
            ).names
        )

        network = Network(
            f"{name}-network",
            cluster_name=deployment,
            region=cloud.region,
            vpc_cidr=cloud.vpc_cidr,
            zones=zones,
            nat=cloud.nat_mode(environment),
            opts=child,
        )
        cluster = EksCluster(
            f"{name}-eks",
            cloud,
            cluster_name=deployment,
            network=network,
            zones=zones,
            deployer_arn=deployer_arn,
            prod=prod,
            aws_provider=provider,
            opts=child,
        )
        ClusterAutoscaler(
            f"{name}-autoscaler",
            cluster_name=deployment,
            region=cloud.region,
            account_id=account_id,
            kubernetes_version=cloud.kubernetes_version,
            oidc=cluster.oidc,
            group_names=[group.autoscaling_group_name for group in cluster.node_groups.values()],
            provider=cluster.provider,
            opts=child,
        )
        storage = HubStorage(
            f"{name}-storage",
            bucket_prefix=f"{deployment}-{account_id}",
            role_name=f"{deployment}-users",
            delete_after_days=cloud.storage.delete_after_days,
            noncurrent_version_days=cloud.storage.noncurrent_version_days,
            oidc=cluster.oidc,
            kubernetes_service_account=service_accounts.users.ref,
            prod=prod,
            public=cloud.storage.public_bucket,
            backup=service_accounts.backup,
            backup_role_name=f"{deployment}-backup",
            opts=child,
        )
        registry = ImageRegistry(
            f"{name}-registry",
            settings=cloud.registry,
            prefix=deployment,
            region=cloud.region,
            account_id=account_id,
            role_name=f"{deployment}-builder",
            oidc=cluster.oidc,
            kubernetes_service_account=service_accounts.builder.ref,
            scan_on_push=cloud.scan_on_push,
            prod=prod,
            opts=child,
        )
        cache = ImageCache(
            f"{name}-image-cache",
            cloud.image_cache,
            # the image caches' names: the environment unless the caller qualifies them
            qualifier=qualifier or environment,
            region=cloud.region,
            account_id=account_id,
            node_role_name=cluster.node_role_name,
            tokens=registry_tokens or {},
            prod=prod,
            opts=child,
        )
        hub_address = HubAddress(
            f"{name}-hub-address",
            deployment=deployment,
            domain=cloud.hub.domain,
            dns=cloud.hub.dns,
            public_subnet_ids=network.public_subnet_ids,
            prod=prod,
            opts=child,
        )
        public_address = None
        public_builder = None
        if cloud.public_binder is not None and service_accounts.public_builder is not None:
            public = HubAddress(
                f"{name}-public-address",
                deployment=deployment,
                domain=cloud.public_binder.domain,
                dns=cloud.public_binder.dns,
                public_subnet_ids=network.public_subnet_ids,
                prod=prod,
                role="public",
                opts=child,
            )
            public_address = ReservedAddress(public.address, public.proxy_service, public.records)
            # The public BinderHub's own role, pushing under `<deployment>/public/` only: no
            # anonymous build can overwrite an image the hub's users run (the hub's builder,
            # in turn, is denied that prefix).
            public_builder = irsa_role(
                f"{name}-public-builder",
                role_name=f"{deployment}-public-builder",
                oidc=cluster.oidc,
                service_account=service_accounts.public_builder.ref,
                description="Public BinderHub image pushes",
                policy=builder_policy(
                    region=cloud.region,
                    account_id=account_id,
                    prefix=f"{deployment}/{PUBLIC_SUBPREFIX}",
                ),
                opts=child,
            )
        if cloud.budget is not None:
            create_budget(
                f"{name}-budget",
                cloud.budget,
                budget_name=f"{deployment} ({cloud.region})",
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )

        if cloud.cost_allocation_tags:
            for tag in COST_TAG_KEYS:
                aws.costexplorer.CostAllocationTag(
                    f"{name}-cost-tag-{tag.rsplit('/', 1)[-1]}",
                    tag_key=tag,
                    status="Active",
                    opts=pulumi.ResourceOptions(parent=self, provider=provider),
                )

        identities = {"users": storage.users_role_arn, "builder": registry.builder_role_arn}
        if storage.backup_role_arn is not None:
            identities["backup"] = storage.backup_role_arn
        if public_builder is not None:
            identities["publicBuilder"] = public_builder.arn
        self.outputs = CloudOutputs(
            cloud="aws",
            cluster_name=cluster.cluster_name,
            kubernetes_provider=cluster.provider,
            kubeconfig=cluster.kubeconfig,
            scratch_bucket_url=storage.scratch_bucket_url,
            persistent_bucket_url=storage.persistent_bucket_url,
            registry_host=registry.host,
            image_prefix=registry.image_prefix,
            registry_login=push_login(
                registry.host,
                account_id=account_id,
                opts=pulumi.InvokeOutputOptions(parent=self, provider=provider),
            ),
            identity_annotation=ROLE_ARN_ANNOTATION,
            identities=identities,
            hub_address=hub_address.address,
            proxy_service=hub_address.proxy_service,
            hub_dns=hub_address.records,
            public_bucket_url=storage.public_bucket_url,
            image_cache=cache.mapping if cloud.image_cache.cached() else None,
            public_binder_address=public_address,
            public_image_prefix=pulumi.Output.concat(registry.image_prefix, PUBLIC_SUBPREFIX, "/")
            if public_builder is not None
            else None,
        )
        self.register_outputs(self.outputs.exports())
