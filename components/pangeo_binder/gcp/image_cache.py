"""Artifact Registry remote repositories: in-region caches of Docker Hub, quay.io and ghcr.io.

A node pulls `<region>-docker.pkg.dev/<project>/<cache>/<path>:<tag>`; Artifact Registry
fetches the image from upstream on the first pull and serves its copy after that. The nodes'
service account reads each cache (roles/artifactregistry.reader on the repository, nothing
project-wide): reading a remote repository is what makes it fetch, Artifact Registry's own
service agent does the upstream request.

What we relied on (read 2026-12): GKE's image streaming page lists "standard or remote
repositories in Artifact Registry" among its requirements, so images pulled through these
caches stream on the user and dask pools like the build registry's; the repositories are in
the cluster's region, as streaming and in-region traffic want. Docker Hub upstream credentials
are a user name and a Secret Manager secret version that the Artifact Registry service agent
(`service-<project number>@gcp-sa-artifactregistry.iam.gserviceaccount.com`) must be able to
access (Artifact Registry, "Configure remote repository authentication to Docker Hub").
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.config_shared import CACHE_UPSTREAMS
from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.gcp.registry import docker_in_region

DAY = 24 * 3600
# Upstreams Artifact Registry knows by name, and the others by URL.
PUBLIC_REPOSITORIES = {"dockerHub": "DOCKER_HUB"}
UPSTREAM_URLS = {"quay": "https://quay.io", "ghcr": "https://ghcr.io"}
# Per image, this many most recent versions stay cached whatever their age.
KEEP_RECENT = 3


def cache_cleanup(delete_after_days: int) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    """Cached versions go `delete_after_days` after they were cached (a later pull fetches them
    again), except each image's most recent few, which KEEP protects (KEEP wins over DELETE)."""
    policy = gcp.artifactregistry.RepositoryCleanupPolicyArgs
    return [
        policy(
            id="delete-old",
            action="DELETE",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="ANY", older_than=f"{delete_after_days * DAY}s"
            ),
        ),
        policy(
            id="keep-recent",
            action="KEEP",
            most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=KEEP_RECENT
            ),
        ),
    ]


def remote_config(
    key: str, *, username: str | None = None, password_version: pulumi.Input[str] | None = None
) -> gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs:
    """The upstream of cache `key`, with a login when a secret version is given."""
    args = gcp.artifactregistry
    if key in PUBLIC_REPOSITORIES:
        docker = args.RepositoryRemoteRepositoryConfigDockerRepositoryArgs(
            public_repository=PUBLIC_REPOSITORIES[key]
        )
        common = None
    else:
        docker = None
        common = args.RepositoryRemoteRepositoryConfigCommonRepositoryArgs(uri=UPSTREAM_URLS[key])
    credentials = None
    if password_version is not None:
        credentials = args.RepositoryRemoteRepositoryConfigUpstreamCredentialsArgs(
            username_password_credentials=(
                args.RepositoryRemoteRepositoryConfigUpstreamCredentialsUsernamePasswordCredentialsArgs(
                    username=username, password_secret_version=password_version
                )
            )
        )
    return args.RepositoryRemoteRepositoryConfigArgs(
        description=f"Cache of {CACHE_UPSTREAMS[key]}",
        docker_repository=docker,
        common_repository=common,
        upstream_credentials=credentials,
    )


class ImageCache(pulumi.ComponentResource):
    """One remote repository per cached upstream, readable by the nodes.

    `mapping` is what `CloudOutputs.image_cache` carries: upstream host -> cache prefix.
    """

    mapping: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        qualifier: str,
        node_service_account_email: pulumi.Input[str],
        tokens: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:gcp:ImageCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = cloud.image_cache
        host = f"{cloud.region}-docker.pkg.dev/{cloud.project}"
        prefixes: dict[str, pulumi.Output[str]] = {}
        for key in settings.cached():
            repo_id = settings.name(key, qualifier)
            login: dict[str, pulumi.Input[str]] = {}
            depends: list[pulumi.Resource] = []
            if key == "dockerHub" and settings.docker_hub_username and key in tokens:
                version, access = self._password(f"{name}-{key}", cloud, repo_id, tokens[key])
                login = {"username": settings.docker_hub_username, "password_version": version}
                depends = [access]
            repository = gcp.artifactregistry.Repository(
                f"{name}-{key}",
                repository_id=repo_id,
                **docker_in_region(cloud),
                mode="REMOTE_REPOSITORY",
                description=f"In-region cache of {CACHE_UPSTREAMS[key]}",
                remote_repository_config=remote_config(key, **login),
                cleanup_policies=cache_cleanup(settings.delete_after_days),
                cleanup_policy_dry_run=False,
                # Not protected in prod: a cache holds nothing that a pull cannot fetch again.
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-{key}-nodes-reader",
                repository=repository.name,
                location=cloud.region,
                project=cloud.project,
                role="roles/artifactregistry.reader",
                member=pulumi.Output.concat("serviceAccount:", node_service_account_email),
                opts=child,
            )
            prefixes[CACHE_UPSTREAMS[key]] = pulumi.Output.concat(
                host, "/", repository.repository_id
            )
        self.mapping = pulumi.Output.all(**prefixes) if prefixes else pulumi.Output.from_input({})
        self.register_outputs({"mapping": self.mapping})

    def _password(
        self, name: str, cloud: GcpCloud, repo_id: str, token: pulumi.Input[str]
    ) -> tuple[pulumi.Output[str], gcp.secretmanager.SecretIamMember]:
        """A Secret Manager secret in the region holding the token, which only Artifact
        Registry's service agent may read; returns its version's name and that grant."""
        child = pulumi.ResourceOptions(parent=self)
        secret = gcp.secretmanager.Secret(
            f"{name}-token",
            secret_id=f"{repo_id}-token",
            project=cloud.project,
            replication=gcp.secretmanager.SecretReplicationArgs(
                user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                    replicas=[
                        gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                            location=cloud.region
                        )
                    ]
                )
            ),
            opts=child,
        )
        version = gcp.secretmanager.SecretVersion(
            f"{name}-token-version",
            secret=secret.id,
            secret_data=pulumi.Output.secret(token),
            opts=child,
        )
        project = gcp.organizations.get_project_output(
            project_id=cloud.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        access = gcp.secretmanager.SecretIamMember(
            f"{name}-token-reader",
            secret_id=secret.secret_id,
            project=cloud.project,
            role="roles/secretmanager.secretAccessor",
            member=project.number.apply(
                lambda number: (
                    f"serviceAccount:service-{number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
                )
            ),
            opts=child,
        )
        return version.name, access
