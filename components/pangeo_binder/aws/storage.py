"""S3 buckets for hub users and the IRSA role that reaches them."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.identity import Oidc, irsa_role, policy_document
from pangeo_binder.guards import guarded
from pangeo_binder.outputs import BackupWriter

OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
# What anyone gets on the public bucket: the current version of an object, nothing else.
PUBLIC_ACTIONS = ["s3:GetObject"]


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every request not made over TLS 1.2 or later, whoever makes it."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return policy_document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOldTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ]
    )


def public_read_policy(bucket_arn: str) -> str:
    """The public bucket's policy: anyone may get an object, over TLS only; nobody anonymous
    may list the bucket (`s3:ListBucket` is not granted), so what is not linked stays unfound."""
    tls_only = json.loads(tls_only_policy(bucket_arn))["Statement"]
    return policy_document(
        [
            *tls_only,
            {
                "Sid": "PublicReadObjects",
                "Effect": "Allow",
                "Principal": "*",
                "Action": PUBLIC_ACTIONS,
                "Resource": f"{bucket_arn}/*",
            },
        ]
    )


def users_policy(bucket_arns: list[str], fenced: list[str] | None = None) -> str:
    """Objects of the hub buckets, nothing else: no bucket settings, no other bucket. `fenced`
    object ARN patterns (the hub database's backups) are denied outright, so a notebook can
    neither read the hub's database nor tamper with its copies."""
    deny = (
        [{"Sid": "NotBackups", "Effect": "Deny", "Action": "s3:*", "Resource": fenced}]
        if fenced
        else []
    )
    return policy_document(
        [
            *deny,
            {
                "Sid": "ListHubBuckets",
                "Effect": "Allow",
                "Action": BUCKET_ACTIONS,
                "Resource": bucket_arns,
            },
            {
                "Sid": "HubObjects",
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": [f"{arn}/*" for arn in bucket_arns],
            },
        ]
    )


def backup_policy(bucket_arn: str, prefix: str) -> str:
    """The backup writer's policy: put objects under `prefix` of one bucket, nothing else (no
    read, no list, no delete: an overwritten `latest.json` stays as an old version)."""
    return policy_document(
        [
            {
                "Sid": "WriteBackups",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": f"{bucket_arn}/{prefix}*",
            }
        ]
    )


def lifecycle_rules(
    *,
    scratch: bool,
    delete_after_days: int,
    noncurrent_version_days: int,
    backup: BackupWriter | None = None,
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Scratch objects expire; every bucket drops abandoned multipart uploads (billed but
    invisible); the versioned persistent bucket forgets old versions after
    `noncurrentVersionDays`, and drops the delete markers left once they are gone. With
    `backup`, objects under its prefix expire after `retention_days` (becoming old versions,
    gone `noncurrentVersionDays` later)."""
    rule = aws.s3.BucketLifecycleConfigurationRuleArgs
    everything = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules = [
        rule(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=everything,
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=1 if scratch else 7
            ),
        )
    ]
    if scratch:
        rules.append(
            rule(
                id="expire-scratch",
                status="Enabled",
                filter=everything,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=delete_after_days
                ),
            )
        )
    else:
        rules.append(
            rule(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=everything,
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=noncurrent_version_days
                ),
            )
        )
        rules.append(
            rule(
                id="remove-expired-delete-markers",
                status="Enabled",
                filter=everything,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    expired_object_delete_marker=True
                ),
            )
        )
    if backup is not None and not scratch:
        # A rule's filter takes one prefix: one rule per prefix. `expire-backups` keeps its id
        # and follows the current prefix; each earlier prefix's copies age out by its own.
        for rule_id, prefix in [
            ("expire-backups", backup.prefix),
            *((f"expire-legacy-{p.rstrip('/')}", p) for p in backup.legacy_prefixes),
        ]:
            rules.append(
                rule(
                    id=rule_id,
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=backup.retention_days
                    ),
                )
            )
    return rules


class HubStorage(pulumi.ComponentResource):
    """A scratch and a persistent bucket (and, with `public`, a public one), and an IRSA role
    for `<namespace>/user-sa` with object access to those buckets only.

    The persistent bucket is versioned in every environment, so one `rm -r` is not final
    anywhere: deleted and overwritten objects stay recoverable for `noncurrentVersionDays`.

    Every public access block is on, ACLs are disabled (the bucket owner owns every object),
    objects are encrypted with S3-managed keys, and only TLS requests are allowed. Only
    staging's scratch bucket can be destroyed while it holds objects.

    With `backup`, an IRSA role (`backup_role_name`) for
    that Kubernetes account, which may only put objects under the persistent bucket's
    `backup.prefix`, and a lifecycle rule expiring them after `backup.retention_days`.

    The public bucket is versioned and kept like the persistent one; its access block lets a
    public bucket policy through (BlockPublicPolicy, RestrictPublicBuckets off) while ACLs
    stay blocked, and its policy lets anyone get (not list) objects over TLS.
    """

    scratch_bucket_url: pulumi.Output[str]
    persistent_bucket_url: pulumi.Output[str]
    public_bucket_url: pulumi.Output[str] | None
    users_role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        bucket_prefix: str,
        role_name: str,
        delete_after_days: int,
        noncurrent_version_days: int,
        oidc: Oidc,
        kubernetes_service_account: str,
        prod: bool,
        public: bool = False,
        backup: BackupWriter | None = None,
        backup_role_name: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:HubStorage", name, None, opts)
        self.backup_role_arn: pulumi.Output[str] | None = None
        child = pulumi.ResourceOptions(parent=self)
        urls: dict[str, pulumi.Output[str]] = {}
        arns: list[pulumi.Output[str]] = []
        for kind in ["scratch", "persistent"] + (["public"] if public else []):
            scratch = kind == "scratch"
            is_public = kind == "public"
            bucket = aws.s3.Bucket(
                f"{name}-{kind}",
                bucket=f"{bucket_prefix}-{kind}",
                force_destroy=scratch and not prod,
                opts=guarded(child, prod=prod, holds_data=True),
            )
            access_block = aws.s3.BucketPublicAccessBlock(
                f"{name}-{kind}-public-access",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=not is_public,
                ignore_public_acls=True,
                restrict_public_buckets=not is_public,
                opts=child,
            )
            aws.s3.BucketOwnershipControls(
                f"{name}-{kind}-ownership",
                bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                opts=child,
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-{kind}-encryption",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    )
                ],
                opts=child,
            )
            versioning = None
            if not scratch:
                versioning = aws.s3.BucketVersioning(
                    f"{name}-{kind}-versioning",
                    bucket=bucket.id,
                    versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                        status="Enabled"
                    ),
                    opts=child,
                )
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-{kind}-lifecycle",
                bucket=bucket.id,
                rules=lifecycle_rules(
                    scratch=scratch,
                    delete_after_days=delete_after_days,
                    noncurrent_version_days=noncurrent_version_days,
                    backup=backup if kind == "persistent" else None,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[versioning] if versioning is not None else []
                ),
            )
            if is_public:
                # S3 refuses a public policy while the bucket's access block still blocks it.
                aws.s3.BucketPolicy(
                    f"{name}-{kind}-public-read",
                    bucket=bucket.id,
                    policy=bucket.arn.apply(public_read_policy),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
                )
            else:
                aws.s3.BucketPolicy(
                    f"{name}-{kind}-tls-only",
                    bucket=bucket.id,
                    policy=bucket.arn.apply(tls_only_policy),
                    opts=child,
                )
            urls[kind] = pulumi.Output.concat("s3://", bucket.bucket)
            if kind == "persistent" and backup is not None:
                prefix = backup.prefix
                self.backup_role_arn = irsa_role(
                    f"{name}-backup",
                    role_name=backup_role_name,
                    oidc=oidc,
                    service_account=backup.account.ref,
                    description=f"Backups: {prefix} of the persistent bucket only",
                    policy=bucket.arn.apply(lambda arn, p=prefix: backup_policy(arn, p)),
                    opts=child,
                ).arn
            arns.append(bucket.arn)

        role = irsa_role(
            f"{name}-users",
            role_name=role_name,
            oidc=oidc,
            service_account=kubernetes_service_account,
            description="Hub users: scratch and persistent buckets",
            policy=pulumi.Output.all(*arns).apply(
                lambda values: users_policy(
                    list(values),
                    # arns[1] is the persistent bucket's.
                    [f"{values[1]}/{p}*" for p in backup.fenced_prefixes]
                    if backup is not None
                    else None,
                )
            ),
            opts=child,
        )
        self.scratch_bucket_url = urls["scratch"]
        self.persistent_bucket_url = urls["persistent"]
        self.public_bucket_url = urls.get("public")
        self.users_role_arn = role.arn
        self.register_outputs(
            {
                "scratchBucketUrl": self.scratch_bucket_url,
                "persistentBucketUrl": self.persistent_bucket_url,
                **({"publicBucketUrl": self.public_bucket_url} if "public" in urls else {}),
                "usersRoleArn": self.users_role_arn,
            }
        )
