"""One stack's GCP side: provider, GKE, buckets, registry, budget; typed outputs for the hub."""

from __future__ import annotations

import re

import pulumi
import pulumi_gcp as gcp

from pangeo_binder import naming
from pangeo_binder.gcp.budget import create_budget
from pangeo_binder.gcp.cluster import GkeCluster
from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.gcp.hub_address import HubAddress
from pangeo_binder.gcp.image_cache import ImageCache
from pangeo_binder.gcp.registry import ImageRegistry, push_login
from pangeo_binder.gcp.services import ProjectApis, after_apis
from pangeo_binder.gcp.storage import HubStorage
from pangeo_binder.outputs import CloudOutputs, ReservedAddress, WorkloadServiceAccounts
from pangeo_binder.policy.context import gcp_bucket_prefix

WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
# Google service account ids: 6-30 characters, a lowercase letter first (IAM's own rule).
ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")


def account_ids(deployment: str) -> dict[str, str]:
    """The stack's Google service account ids, by role, derived from `deployment`; a
    deployment name too long for them is refused before anything is registered."""
    short = deployment.removeprefix("pangeo-binder-")
    ids = {role: f"pb-{short}-{role}" for role in ("nodes", "users", "builder", "backup")}
    bad = sorted(value for value in ids.values() if not ACCOUNT_ID.match(value))
    if bad:
        raise ValueError(
            f"deployment {deployment!r} gives Google service account ids {bad} that IAM "
            "refuses (6-30 characters of a-z, 0-9 and -, a letter first): choose a shorter "
            "deployment name"
        )
    return ids


def public_builder_account_id(deployment: str) -> str:
    """The public Binder's push account id. Shorter than the builder's (`-public` against
    `-builder`), so any deployment whose other ids IAM accepts gives a valid one too; asked
    for only when a public Binder is configured, so it never refuses a stack without one."""
    account = f"pb-{deployment.removeprefix('pangeo-binder-')}-public"
    if not ACCOUNT_ID.match(account):
        raise ValueError(f"deployment {deployment!r} gives the public builder id {account!r}")
    return account


class GcpStack(pulumi.ComponentResource):
    """Everything one environment needs on GCP, with its own explicit provider.

    Resource names derive from `deployment` (`pangeo_binder.naming.deployment`: e.g.
    `pangeo-binder-staging`, `pangeo-binder-staging-alice`), so two stacks can share a
    project without colliding. `service_accounts` names the
    Kubernetes service accounts bound to the bucket and registry identities: the caller's
    (the hub passes `HubSettings.workload_service_accounts()`), so this layer never reads the hub.
    `registry_tokens` are the image caches' upstream tokens by cache key (`dockerHub`), secret.
    `qualifier` starts the image caches' repository names (default: the environment;
    `pangeo_binder.naming.qualifier` gives the stack's name for a stack not named after it).
    """

    outputs: CloudOutputs

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        deployment: str,
        environment: str,
        qualifier: str | None = None,
        service_accounts: WorkloadServiceAccounts,
        registry_tokens: dict[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        ids = account_ids(deployment)
        super().__init__("pangeo-binder:gcp:Stack", name, None, opts)
        prod = environment == "prod"
        provider = gcp.Provider(
            f"{name}-provider",
            project=cloud.project,
            region=cloud.region,
            zone=cloud.zone,
            default_labels={"managed-by": "pulumi", "deployment": deployment},
            opts=pulumi.ResourceOptions(parent=self),
        )
        apis = ProjectApis(
            f"{name}-apis", cloud, opts=pulumi.ResourceOptions(parent=self, providers=[provider])
        )
        # Everything below waits for the APIs it calls (see pangeo_binder/gcp/services.py).
        needs_apis = [after_apis(list(apis.services.values()))]
        child = pulumi.ResourceOptions(
            parent=self, providers=[provider], transformations=needs_apis
        )
        # one naming rule, which the policies read to know the declared public bucket
        bucket_prefix = gcp_bucket_prefix(cloud.project, deployment.removeprefix(naming.PREFIX))

        cluster = GkeCluster(
            f"{name}-gke",
            cloud,
            cluster_name=deployment,
            node_account_id=ids["nodes"],
            prod=prod,
            opts=child,
        )
        storage = HubStorage(
            f"{name}-storage",
            cloud,
            bucket_prefix=bucket_prefix,
            account_id=ids["users"],
            kubernetes_service_account=service_accounts.users.ref,
            prod=prod,
            depends_on=[cluster],
            backup=service_accounts.backup,
            backup_account_id=ids["backup"],
            opts=child,
        )
        registry = ImageRegistry(
            f"{name}-registry",
            cloud,
            repository_id=f"{deployment}-images",
            account_id=ids["builder"],
            kubernetes_service_account=service_accounts.builder.ref,
            node_service_account_email=cluster.node_service_account_email,
            prod=prod,
            depends_on=[cluster],
            opts=child,
        )
        cache = ImageCache(
            f"{name}-image-cache",
            cloud,
            # the image caches' names: the environment unless the caller qualifies them
            qualifier=qualifier or environment,
            node_service_account_email=cluster.node_service_account_email,
            tokens=registry_tokens or {},
            opts=child,
        )
        hub_address = HubAddress(
            f"{name}-hub-address", cloud, deployment=deployment, prod=prod, opts=child
        )
        public_address = None
        public_registry = None
        if cloud.public_binder is not None and service_accounts.public_builder is not None:
            public = HubAddress(
                f"{name}-public-address",
                cloud,
                deployment=deployment,
                prod=prod,
                public=True,
                opts=child,
            )
            public_address = ReservedAddress(public.address, public.proxy_service, public.records)
            # The public BinderHub's own repository and push account: anonymous builds can
            # write nothing the hub's users run, and the hub's builder nothing of theirs.
            public_registry = ImageRegistry(
                f"{name}-public-registry",
                cloud,
                repository_id=f"{deployment}-public-images",
                account_id=public_builder_account_id(deployment),
                kubernetes_service_account=service_accounts.public_builder.ref,
                node_service_account_email=cluster.node_service_account_email,
                prod=prod,
                depends_on=[cluster],
                purpose="Public BinderHub",
                opts=child,
            )
        if cloud.budget is not None:
            # The budgets API needs a quota project when called with user credentials. Only
            # the budget's own provider bills calls to the project: on the main provider it
            # would make every call need Service Usage Consumer.
            billing = gcp.Provider(
                f"{name}-billing-provider",
                project=cloud.project,
                region=cloud.region,
                user_project_override=True,
                billing_project=cloud.project,
                opts=pulumi.ResourceOptions(parent=self, transformations=needs_apis),
            )
            create_budget(
                f"{name}-budget",
                cloud.budget,
                project=cloud.project,
                display_name=f"{deployment} ({cloud.project})",
                after=list(apis.services.values()),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=billing, transformations=needs_apis
                ),
            )

        identities = {
            "users": storage.user_service_account_email,
            "builder": registry.builder_service_account_email,
        }
        if storage.backup_service_account_email is not None:
            identities["backup"] = storage.backup_service_account_email
        if public_registry is not None:
            identities["publicBuilder"] = public_registry.builder_service_account_email
        self.outputs = CloudOutputs(
            cloud="gcp",
            cluster_name=cluster.cluster_name,
            kubernetes_provider=cluster.provider,
            kubeconfig=cluster.kubeconfig,
            scratch_bucket_url=storage.scratch_bucket_url,
            persistent_bucket_url=storage.persistent_bucket_url,
            registry_host=registry.host,
            image_prefix=registry.image_prefix,
            registry_login=push_login(
                registry.host, pulumi.InvokeOutputOptions(parent=self, provider=provider)
            ),
            identity_annotation=WORKLOAD_IDENTITY_ANNOTATION,
            identities=identities,
            hub_address=hub_address.address,
            proxy_service=hub_address.proxy_service,
            hub_dns=hub_address.records,
            public_bucket_url=storage.public_bucket_url,
            image_cache=cache.mapping if cloud.image_cache.cached() else None,
            public_binder_address=public_address,
            public_image_prefix=public_registry.image_prefix if public_registry else None,
        )
        self.register_outputs(self.outputs.exports())
