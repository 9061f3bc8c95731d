"""The public bucket (`storage.publicBucket`): world-readable objects on both clouds, written
by hub users only, and the one bucket that may be public."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import release
from harness import Run, run_program, stack_config, with_value
from pangeo_binder.hub.incluster import gateway_options
from pangeo_binder.hub.incluster.image_cache import cached_image

GCS_BUCKET = "gcp:storage/bucket:Bucket"
GCS_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ANONYMOUS = {"allUsers", "allAuthenticatedUsers"}
USERS_EMAIL = "pb-staging-users@pangeo-binder-staging.iam.gserviceaccount.com"


def statements(run: Run, name: str) -> list[dict[str, Any]]:
    return json.loads(run.one(S3_POLICY, name).inputs["policy"])["Statement"]


def test_staging_has_a_public_bucket_on_both_clouds_prod_none(staging: Run, prod: Run) -> None:
    assert staging.one(GCS_BUCKET, "gcp-storage-public").inputs["name"] == (
        "pangeo-binder-staging-public"
    )
    assert staging.one(S3_BUCKET, "aws-storage-public").inputs["bucket"] == (
        "pangeo-binder-staging-123456789012-public"
    )
    assert not [
        r.name
        for r in prod.registrations
        if r.name.startswith(("gcp-storage-public", "aws-storage-public"))
    ]
    assert "publicBucket" not in prod.stack_outputs["gcp"]
    assert "publicBucket" not in prod.stack_outputs["aws"]


def test_gcs_public_bucket_readable_by_anyone_written_by_users(staging: Run) -> None:
    bucket = staging.one(GCS_BUCKET, "gcp-storage-public").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    # Not `enforced`: that would refuse the allUsers binding. `inherited` leaves it to the
    # project and organization.
    assert bucket["publicAccessPrevention"] == "inherited"
    assert "encryption" not in bucket  # Google-managed encryption at rest, as the others
    assert bucket["forceDestroy"] is False
    assert bucket.get("lifecycleRules", []) == []  # published data does not expire
    grants = sorted(
        (g.inputs["role"], g.inputs["member"])
        for g in staging.of_type(GCS_IAM)
        if g.inputs["bucket"] == "pangeo-binder-staging-public"
    )
    # Anyone: read and list objects (Storage Object Viewer), nothing about the bucket itself.
    assert grants == [
        ("roles/storage.objectUser", f"serviceAccount:{USERS_EMAIL}"),
        ("roles/storage.objectViewer", "allUsers"),
    ]


def test_s3_public_bucket_readable_by_anyone_over_tls(staging: Run) -> None:
    block = staging.one(S3_BLOCK, "aws-storage-public-public-access").inputs
    assert block["blockPublicAcls"] is True
    assert block["ignorePublicAcls"] is True
    assert block["blockPublicPolicy"] is False
    assert block["restrictPublicBuckets"] is False
    arn = staging.one(S3_BUCKET, "aws-storage-public").outputs["arn"]
    policy = statements(staging, "aws-storage-public-public-read")
    allows = [s for s in policy if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "PublicReadObjects",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            "Resource": f"{arn}/*",
        }
    ]
    insecure = next(s for s in policy if s["Sid"] == "DenyInsecureTransport")
    assert insecure["Effect"] == "Deny"
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert insecure["Resource"] == [arn, f"{arn}/*"]
    # S3 refuses a public policy until the bucket's access block lets it through.
    block_urn = staging.one(S3_BLOCK, "aws-storage-public-public-access").urn
    assert block_urn in staging.one(S3_POLICY, "aws-storage-public-public-read").dependencies


def test_s3_public_bucket_kept_like_the_persistent_one(staging: Run) -> None:
    def sides(kind: str) -> dict[str, Any]:
        return {
            "ownership": staging.one(
                "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                f"aws-storage-{kind}-ownership",
            ).inputs["rule"],
            "encryption": staging.one(
                "aws:s3/bucketServerSideEncryptionConfiguration:"
                "BucketServerSideEncryptionConfiguration",
                f"aws-storage-{kind}-encryption",
            ).inputs["rules"],
            "versioning": staging.one(
                "aws:s3/bucketVersioning:BucketVersioning", f"aws-storage-{kind}-versioning"
            ).inputs["versioningConfiguration"],
            "lifecycle": staging.one(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                f"aws-storage-{kind}-lifecycle",
            ).inputs["rules"],
        }

    persistent = sides("persistent")
    # The persistent bucket alone holds the hub database's backups (and those under the
    # prefix before `_backups/`), which expire.
    persistent["lifecycle"] = [
        r
        for r in persistent["lifecycle"]
        if r["id"] not in ("expire-backups", "expire-legacy-backups")
    ]
    assert sides("public") == persistent
    assert staging.one(S3_BUCKET, "aws-storage-public").inputs["forceDestroy"] is False


def test_users_role_writes_the_public_bucket(staging: Run) -> None:
    role_policy = next(
        json.loads(r.inputs["policy"])
        for r in staging.of_type("aws:iam/rolePolicy:RolePolicy")
        if "HubObjects" in r.inputs["policy"]
    )
    arn = staging.one(S3_BUCKET, "aws-storage-public").outputs["arn"]
    objects = next(s for s in role_policy["Statement"] if s["Sid"] == "HubObjects")
    assert f"{arn}/*" in objects["Resource"]
    assert "s3:PutObject" in objects["Action"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_only_the_public_bucket_is_public(stack: str, staging: Run, prod: Run) -> None:
    run = {"staging": staging, "prod": prod}[stack]
    for bucket in run.of_type(GCS_BUCKET):
        public = bucket.name == "gcp-storage-public"
        assert (bucket.inputs["publicAccessPrevention"] == "enforced") is not public
    anonymous = [
        g.inputs["bucket"] for g in run.of_type(GCS_IAM) if g.inputs["member"] in ANONYMOUS
    ]
    assert anonymous == (["pangeo-binder-staging-public"] if stack == "staging" else [])
    for kind in ("scratch", "persistent"):
        block = run.one(S3_BLOCK, f"aws-storage-{kind}-public-access").inputs
        assert all(block[flag] is True for flag in block if flag != "bucket"), kind
        for statement in statements(run, f"aws-storage-{kind}-tls-only"):
            assert statement["Principal"] != "*" or statement["Effect"] == "Deny", kind
    allowed_to_anyone = [
        policy.name
        for policy in run.of_type(S3_POLICY)
        if any(
            s["Effect"] == "Allow" and s.get("Principal") == "*"
            for s in json.loads(policy.inputs["policy"])["Statement"]
        )
    ]
    assert allowed_to_anyone == (["aws-storage-public-public-read"] if stack == "staging" else [])


def test_prod_public_bucket_is_protected_and_retained() -> None:
    config = stack_config("prod")
    for cloud in ("gcp", "aws"):
        config = with_value(config, f"clouds.{cloud}.storage.publicBucket", True)
    run = run_program("prod", config)
    for typ, name in ((GCS_BUCKET, "gcp-storage-public"), (S3_BUCKET, "aws-storage-public")):
        bucket = run.one(typ, name)
        assert (bucket.protect, bucket.retain_on_delete) == (True, True), name
    assert run.stack_outputs["aws"]["publicBucket"] == (
        "s3://pangeo-binder-prod-123456789012-public"
    )


def test_stack_output_and_user_environment(staging: Run, prod: Run) -> None:
    for cloud, url in (
        ("gcp", "gs://pangeo-binder-staging-public"),
        ("aws", "s3://pangeo-binder-staging-123456789012-public"),
    ):
        assert staging.stack_outputs[cloud]["publicBucket"] == url
        env = release(staging, cloud, "jupyterhub")["values"]["singleuser"]["extraEnv"]
        assert env["PUBLIC_PERSISTENT_BUCKET"] == f"{url}/$(JUPYTERHUB_USER)"
        prod_env = release(prod, cloud, "jupyterhub")["values"]["singleuser"]["extraEnv"]
        assert "PUBLIC_PERSISTENT_BUCKET" not in prod_env


def settings_of(run: Run, cloud: str) -> dict[str, Any]:
    """What the gateway's options handler reads: the settings entry of the rendered
    dask-gateway values, run as the gateway's config file runs it."""
    entry = release(run, cloud, "dask-gateway")["values"]["gateway"]["extraConfig"]
    namespace: dict[str, Any] = {}
    exec(entry["00-settings"], namespace)
    return namespace["PANGEO_BINDER_DASK"]


def test_dask_workers_get_the_public_prefix(staging: Run, prod: Run) -> None:
    user = SimpleNamespace(name="alice", groups=[], admin=False)
    for run, cloud, expected in (
        (staging, "gcp", "gs://pangeo-binder-staging-public/alice"),
        (staging, "aws", "s3://pangeo-binder-staging-123456789012-public/alice"),
        (prod, "gcp", None),
        (prod, "aws", None),
    ):
        settings = settings_of(run, cloud)
        size = settings["workerSizes"][0]["name"]
        config = gateway_options.cluster_config(
            settings, {"worker_size": size, "image": "", "environment": {}}, user, cached_image
        )
        assert config["environment"].get("PUBLIC_PERSISTENT_BUCKET") == expected
