"""Artifact Registry for BinderHub-built images, and the identity that pushes to it."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.config_shared import RegistrySettings
from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.gcp.identity import workload_identity_binding
from pangeo_binder.guards import guarded
from pangeo_binder.outputs import RegistryLogin

DAY = 24 * 3600
# Artifact Registry's user name for an OAuth access token as the password.
ACCESS_TOKEN_USER = "oauth2accesstoken"


def push_login(host: pulumi.Input[str], opts: pulumi.InvokeOutputOptions) -> RegistryLogin:
    """Log in as whoever runs Pulumi (the deploy identity in CI), with the provider's own access
    token: nothing to create or store, and it lasts about an hour, long enough for one deploy."""
    client = gcp.organizations.get_client_config_output(opts=opts)
    return RegistryLogin(
        address=pulumi.Output.from_input(host),
        username=pulumi.Output.from_input(ACCESS_TOKEN_USER),
        password=pulumi.Output.secret(client.access_token),
    )


def docker_in_region(cloud: GcpCloud) -> dict[str, str]:
    """Where every Docker repository of the stack lives (the build registry and the image
    caches): the cluster's project and region, so nodes pull (and stream) in the region."""
    return {"project": cloud.project, "location": cloud.region, "format": "DOCKER"}


def cleanup_policies(
    settings: RegistrySettings,
) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    """Untagged images go after a day or so; tagged ones after `deleteAfterDays`, except the
    most recent versions of each image, which a KEEP policy protects (KEEP wins over DELETE)."""
    policy = gcp.artifactregistry.RepositoryCleanupPolicyArgs
    condition = gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs
    return [
        policy(
            id="delete-untagged",
            action="DELETE",
            condition=condition(
                tag_state="UNTAGGED", older_than=f"{settings.delete_untagged_after_days * DAY}s"
            ),
        ),
        policy(
            id="delete-old",
            action="DELETE",
            condition=condition(tag_state="ANY", older_than=f"{settings.delete_after_days * DAY}s"),
        ),
        policy(
            id="keep-recent",
            action="KEEP",
            most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=settings.keep_recent_versions
            ),
        ),
    ]


class ImageRegistry(pulumi.ComponentResource):
    """A Docker repository with cleanup policies; BinderHub pushes through workload identity
    as a service account that can write to this repository only. Nodes may pull from it.

    The repository is the unit Artifact Registry's IAM grants name (`RepositoryIamMember`),
    so two builders that must not overwrite each other's images (the hub's and a public
    Binder's) get one `ImageRegistry` each: a repository and a service account apiece, neither
    with any right on the other's repository. `purpose` only words the descriptions."""

    host: pulumi.Output[str]
    image_prefix: pulumi.Output[str]
    builder_service_account_email: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        repository_id: str,
        account_id: str,
        kubernetes_service_account: str,
        node_service_account_email: pulumi.Input[str],
        prod: bool,
        depends_on: list[pulumi.Resource],
        purpose: str = "BinderHub",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:gcp:ImageRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            repository_id=repository_id,
            **docker_in_region(cloud),
            description=f"Images built by {purpose}",
            cleanup_policies=cleanup_policies(cloud.registry),
            cleanup_policy_dry_run=False,
            opts=guarded(child, prod=prod, holds_data=True),
        )
        builder = gcp.serviceaccount.Account(
            f"{name}-builder",
            account_id=account_id,
            project=cloud.project,
            display_name=f"{purpose} image pushes",
            opts=child,
        )
        repo_binding = dict(
            repository=repository.name, location=cloud.region, project=cloud.project
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-builder-writer",
            role="roles/artifactregistry.writer",
            member=builder.member,
            **repo_binding,
            opts=child,
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-nodes-reader",
            role="roles/artifactregistry.reader",
            member=pulumi.Output.concat("serviceAccount:", node_service_account_email),
            **repo_binding,
            opts=child,
        )
        # BinderHub's registry class swaps the metadata server's token, which may have only
        # minutes left, for an hour-long one of this same account (IAM Credentials
        # generateAccessToken needs iam.serviceAccounts.getAccessToken on the account, which
        # roles/iam.serviceAccountTokenCreator grants; an account has no such right on itself
        # by default).
        gcp.serviceaccount.IAMMember(
            f"{name}-builder-token-creator",
            service_account_id=builder.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=builder.member,
            opts=child,
        )
        workload_identity_binding(
            f"{name}-builder-wi",
            account=builder,
            project=cloud.project,
            kubernetes_service_account=kubernetes_service_account,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.host = pulumi.Output.from_input(f"{cloud.region}-docker.pkg.dev")
        self.image_prefix = pulumi.Output.concat(
            self.host, "/", cloud.project, "/", repository.repository_id, "/"
        )
        self.builder_service_account_email = builder.email
        self.register_outputs(
            {
                "host": self.host,
                "imagePrefix": self.image_prefix,
                "builderServiceAccountEmail": self.builder_service_account_email,
            }
        )
