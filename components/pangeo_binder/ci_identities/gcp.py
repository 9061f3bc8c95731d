"""GCP: a workload identity pool with a GitHub provider for this repository, and the preview and
deploy service accounts GitHub Actions impersonate (no key is ever created)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.ci_identities import trust
from pangeo_binder.ci_identities.config import GcpCiIdentities

IMPERSONATE = "roles/iam.workloadIdentityUser"


class GcpCiIdentitiesStack(pulumi.ComponentResource):
    """Pool, provider, two service accounts, who may impersonate them, and their roles.

    Outputs: `workload_identity_provider` (the full provider name google-github-actions/auth
    takes), `preview_service_account` and `deploy_service_account` (emails).
    """

    def __init__(
        self,
        name: str,
        config: GcpCiIdentities,
        *,
        repository: str,
        repository_id: str | None,
        deploy_environments: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:ci:GcpIdentities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider_opts = pulumi.ResourceOptions(parent=self, protect=True)

        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=config.project,
            workload_identity_pool_id=config.pool_id,
            display_name="GitHub Actions",
            description=f"GitHub Actions of {repository}",
            opts=provider_opts,
        )
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            project=config.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=config.provider_id,
            display_name="GitHub",
            attribute_mapping=trust.GCP_ATTRIBUTE_MAPPING,
            attribute_condition=trust.gcp_attribute_condition(repository, repository_id),
            oidc={"issuer_uri": trust.GITHUB_ISSUER},
            opts=provider_opts,
        )

        subjects = {
            "preview": [trust.pull_request_subject(repository)],
            "deploy": [trust.environment_subject(repository, e) for e in deploy_environments],
        }
        account_ids = {"preview": config.preview_account_id, "deploy": config.deploy_account_id}
        roles = {"preview": config.preview_roles, "deploy": config.deploy_roles}
        state_roles = {
            "preview": "roles/storage.objectViewer",
            "deploy": "roles/storage.objectAdmin",
        }
        key_roles = {
            "preview": "roles/cloudkms.cryptoKeyDecrypter",
            "deploy": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        }
        self.members: dict[str, pulumi.Output[list[str]]] = {}
        emails = {}
        for kind in ("preview", "deploy"):
            account = gcp.serviceaccount.Account(
                f"{name}-{kind}",
                project=config.project,
                account_id=account_ids[kind],
                display_name=f"GitHub Actions {kind} ({repository})",
                opts=child,
            )
            emails[kind] = account.email
            members = [
                pool.name.apply(lambda p, s=s: trust.gcp_principal(p, s)) for s in subjects[kind]
            ]
            self.members[kind] = pulumi.Output.all(*members)
            for subject, member in zip(subjects[kind], members, strict=True):
                gcp.serviceaccount.IAMMember(
                    f"{name}-{kind}-impersonate-{subject.rsplit(':', 1)[-1]}",
                    service_account_id=account.name,
                    role=IMPERSONATE,
                    member=member,
                    opts=child,
                )
            for project in config.target_projects:
                for role in roles[kind]:
                    gcp.projects.IAMMember(
                        f"{name}-{kind}-{project}-{role.rsplit('/', 1)[-1]}",
                        project=project,
                        role=role,
                        member=account.member,
                        opts=child,
                    )
            if config.state_bucket:
                gcp.storage.BucketIAMMember(
                    f"{name}-{kind}-state",
                    bucket=config.state_bucket,
                    role=state_roles[kind],
                    member=account.member,
                    opts=child,
                )
            if config.secrets_key:
                gcp.kms.CryptoKeyIAMMember(
                    f"{name}-{kind}-secrets",
                    crypto_key_id=config.secrets_key,
                    role=key_roles[kind],
                    member=account.member,
                    opts=child,
                )

        self.workload_identity_provider = provider.name
        self.preview_service_account = emails["preview"]
        self.deploy_service_account = emails["deploy"]
        self.register_outputs(
            {
                "workloadIdentityProvider": provider.name,
                "previewServiceAccount": emails["preview"],
                "deployServiceAccount": emails["deploy"],
            }
        )
