"""GCS buckets for hub users and the keyless identity that reaches them."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.gcp.identity import workload_identity_binding
from pangeo_binder.guards import guarded
from pangeo_binder.outputs import BackupWriter

# Read, write, delete and list objects; nothing about the bucket itself (no IAM, no deletion).
OBJECT_ROLE = "roles/storage.objectUser"
# What anyone on the internet gets on the public bucket: Storage Object Viewer, the role
# Google's "make data public" guide grants allUsers on uniform-access buckets. It includes
# storage.objects.list, so anonymous readers can list names (the docs say so). The legacy
# object roles, which would read without listing, are ACL equivalents that we did not confirm
# a uniform-access bucket accepts; a custom role with storage.objects.get alone would need the
# deployer to hold roles/iam.roleAdmin.
PUBLIC_READ_ROLE = "roles/storage.objectViewer"
PUBLIC_MEMBER = "allUsers"
SOFT_DELETE_KEPT_SECONDS = 7 * 24 * 3600  # GCS's own default, stated so it is visible


def backup_lifecycle_rule(backup: BackupWriter) -> gcp.storage.BucketLifecycleRuleArgs:
    """Backups under `backup.prefix` (and copies left under earlier releases' prefixes) are
    deleted `retention_days` after they were written (soft delete keeps them 7 more days)."""
    return gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
            age=backup.retention_days, matches_prefixes=list(backup.fenced_prefixes)
        ),
    )


def backup_condition(bucket_name: str, prefix: str) -> gcp.storage.BucketIAMMemberConditionArgs:
    """IAM condition: objects whose name starts with `prefix`, in this bucket only. Bucket-level
    calls (listing) carry the bucket's own name, which never matches, so they are refused."""
    return gcp.storage.BucketIAMMemberConditionArgs(
        title=f"only {prefix}",
        description=f"Objects under {prefix} of {bucket_name} only",
        expression=(
            f'resource.name.startsWith("projects/_/buckets/{bucket_name}/objects/{prefix}")'
        ),
    )


def outside_backups(
    bucket_name: str, prefixes: tuple[str, ...]
) -> gcp.storage.BucketIAMMemberConditionArgs:
    """IAM condition for the users' grant on the persistent bucket: anything but the backups
    (every prefix copies are or were written under), so a notebook can neither read the
    hub's database nor tamper with its copies (listing the bucket, a bucket-level call,
    still matches)."""
    inside = " || ".join(backup_condition(bucket_name, p).expression for p in prefixes)
    named = ", ".join(prefixes)
    return gcp.storage.BucketIAMMemberConditionArgs(
        title=f"not {named}",
        description=f"Everything but {named} of {bucket_name}",
        expression=f"!({inside})" if len(prefixes) > 1 else f"!{inside}",
    )


def bucket_args(
    cloud: GcpCloud,
    *,
    bucket_name: str,
    scratch: bool,
    prod: bool,
    public: bool = False,
    backup: BackupWriter | None = None,
) -> gcp.storage.BucketArgs:
    """One bucket: uniform access, Google-managed encryption at rest, never public unless it
    is the public bucket (`public`), whose public access prevention is left to the project
    (`inherited`) so the `allUsers` binding can take effect.

    Scratch objects expire after `deleteAfterDays` and skip soft delete (it would bill deleted
    temporary data for another week); persistent buckets keep GCS's 7-day soft delete so a
    mistaken `rm` can be undone. Only staging's scratch bucket can be destroyed while it holds
    objects: users' persistent data is never deleted by a `pulumi destroy`.
    """
    return gcp.storage.BucketArgs(
        name=bucket_name,
        project=cloud.project,
        location=cloud.region.upper(),
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="inherited" if public else "enforced",
        force_destroy=scratch and not prod,
        lifecycle_rules=[
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=cloud.storage.delete_after_days
                ),
            )
        ]
        if scratch
        else ([backup_lifecycle_rule(backup)] if backup is not None else []),
        soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
            retention_duration_seconds=0 if scratch else SOFT_DELETE_KEPT_SECONDS
        ),
    )


class HubStorage(pulumi.ComponentResource):
    """A scratch and a persistent bucket (and, with `storage.publicBucket`, a public one), and
    a Google service account for notebook servers with object access to those buckets only,
    bound to `<namespace>/user-sa`. Only the public bucket grants anything to `allUsers`.

    With `backup`, a second Google service account (`backup_account_id`) bound to that
    Kubernetes account, with object access to the persistent bucket's `backup.prefix` only (an
    IAM condition), and a lifecycle rule deleting backups after `backup.retention_days`."""

    scratch_bucket_url: pulumi.Output[str]
    persistent_bucket_url: pulumi.Output[str]
    public_bucket_url: pulumi.Output[str] | None
    user_service_account_email: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        bucket_prefix: str,
        account_id: str,
        kubernetes_service_account: str,
        prod: bool,
        depends_on: list[pulumi.Resource],
        backup: BackupWriter | None = None,
        backup_account_id: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:gcp:HubStorage", name, None, opts)
        self.backup_service_account_email: pulumi.Output[str] | None = None
        users = gcp.serviceaccount.Account(
            f"{name}-users",
            account_id=account_id,
            project=cloud.project,
            display_name="Hub users: scratch and persistent buckets",
            opts=pulumi.ResourceOptions(parent=self),
        )
        urls: dict[str, pulumi.Output[str]] = {}
        kinds = ["scratch", "persistent"] + (["public"] if cloud.storage.public_bucket else [])
        for kind in kinds:
            bucket = gcp.storage.Bucket(
                f"{name}-{kind}",
                bucket_args(
                    cloud,
                    bucket_name=f"{bucket_prefix}-{kind}",
                    scratch=kind == "scratch",
                    prod=prod,
                    public=kind == "public",
                    backup=backup if kind == "persistent" else None,
                ),
                opts=guarded(pulumi.ResourceOptions(parent=self), prod=prod, holds_data=True),
            )
            gcp.storage.BucketIAMMember(
                f"{name}-{kind}-users",
                bucket=bucket.name,
                role=OBJECT_ROLE,
                member=users.member,
                condition=outside_backups(f"{bucket_prefix}-{kind}", backup.fenced_prefixes)
                if kind == "persistent" and backup is not None
                else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
            if kind == "public":
                gcp.storage.BucketIAMMember(
                    f"{name}-{kind}-anyone",
                    bucket=bucket.name,
                    role=PUBLIC_READ_ROLE,
                    member=PUBLIC_MEMBER,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            urls[kind] = bucket.url
            if kind == "persistent" and backup is not None:
                self.backup_service_account_email = self._backup_identity(
                    name,
                    cloud,
                    backup,
                    backup_account_id,
                    bucket,
                    f"{bucket_prefix}-{kind}",
                    depends_on,
                )
        workload_identity_binding(
            f"{name}-users-wi",
            account=users,
            project=cloud.project,
            kubernetes_service_account=kubernetes_service_account,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.scratch_bucket_url = urls["scratch"]
        self.persistent_bucket_url = urls["persistent"]
        self.public_bucket_url = urls.get("public")
        self.user_service_account_email = users.email
        self.register_outputs(
            {
                "scratchBucketUrl": self.scratch_bucket_url,
                "persistentBucketUrl": self.persistent_bucket_url,
                **({"publicBucketUrl": self.public_bucket_url} if "public" in urls else {}),
                "userServiceAccountEmail": self.user_service_account_email,
            }
        )

    def _backup_identity(
        self,
        name: str,
        cloud: GcpCloud,
        backup: BackupWriter,
        account_id: str,
        bucket: gcp.storage.Bucket,
        bucket_name: str,
        depends_on: list[pulumi.Resource],
    ) -> pulumi.Output[str]:
        """The backup writer's Google service account: object access under the prefix only.
        Object User (not Creator) because `latest.json` is overwritten, which GCS counts as a
        delete; the condition keeps even that inside the prefix."""
        account = gcp.serviceaccount.Account(
            f"{name}-backup",
            account_id=account_id,
            project=cloud.project,
            display_name=f"Backups: {backup.prefix} of the persistent bucket only",
            opts=pulumi.ResourceOptions(parent=self),
        )
        gcp.storage.BucketIAMMember(
            f"{name}-persistent-backup",
            bucket=bucket.name,
            role=OBJECT_ROLE,
            member=account.member,
            condition=backup_condition(bucket_name, backup.prefix),
            opts=pulumi.ResourceOptions(parent=self),
        )
        workload_identity_binding(
            f"{name}-backup-wi",
            account=account,
            project=cloud.project,
            kubernetes_service_account=backup.account.ref,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        return account.email
