"""S3 buckets, the ECR creation template, prod's deletion guards and the AWS budget."""

from __future__ import annotations

import json

import pytest

from harness import Run, run_program, stack_config, with_value

BUCKET = "aws:s3/bucket:Bucket"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
KINDS = ("scratch", "persistent")


@pytest.fixture(params=["staging", "prod"])
def run(request: pytest.FixtureRequest, staging: Run, prod: Run) -> Run:
    return {"staging": staging, "prod": prod}[request.param]


def side(run: Run, kind: str, suffix: str, typ: str) -> dict:
    return run.one(typ, f"aws-storage-{kind}-{suffix}").inputs


def test_buckets_named_per_deployment_and_account(staging: Run, prod: Run) -> None:
    for run, env, public in ((staging, "staging", True), (prod, "prod", False)):
        names = sorted(b.inputs["bucket"] for b in run.of_type(BUCKET))
        assert names == [
            f"pangeo-binder-{env}-123456789012-persistent",
            *([f"pangeo-binder-{env}-123456789012-public"] if public else []),
            f"pangeo-binder-{env}-123456789012-scratch",
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_all_four_public_access_blocks(run: Run, kind: str) -> None:
    block = side(
        run, kind, "public-access", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    )
    assert block["bucket"] == run.one(BUCKET, f"aws-storage-{kind}").inputs["bucket"]
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag


@pytest.mark.parametrize("kind", KINDS)
def test_acls_off_and_encrypted_at_rest(run: Run, kind: str) -> None:
    ownership = side(
        run, kind, "ownership", "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    )
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    encryption = side(
        run,
        kind,
        "encryption",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    assert encryption["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_tls_only_bucket_policy(run: Run, kind: str) -> None:
    arn = run.one(BUCKET, f"aws-storage-{kind}").outputs["arn"]
    policy = json.loads(side(run, kind, "tls-only", "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    insecure = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
    assert insecure["Effect"] == "Deny"
    assert insecure["Principal"] == "*"
    assert insecure["Resource"] == [arn, f"{arn}/*"]
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert all(s["Effect"] == "Deny" for s in policy["Statement"])


def lifecycle(run: Run, kind: str) -> dict[str, dict]:
    rules = side(
        run, kind, "lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )["rules"]
    return {rule["id"]: rule for rule in rules}


def test_scratch_objects_expire_after_configured_days(run: Run) -> None:
    rules = lifecycle(run, "scratch")
    assert rules["expire-scratch"]["expiration"] == {"days": 7}
    assert rules["expire-scratch"]["status"] == "Enabled"
    assert "expire-scratch" not in lifecycle(run, "persistent")
    for kind in KINDS:
        assert "abort-incomplete-uploads" in lifecycle(run, kind)


def test_scratch_expiry_follows_config() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.storage.deleteAfterDays", 3)
    rules = lifecycle(run_program("staging", config), "scratch")
    assert rules["expire-scratch"]["expiration"] == {"days": 3}


def test_persistent_bucket_is_versioned_with_noncurrent_expiry_everywhere(
    staging: Run, prod: Run
) -> None:
    """One `rm -r` is not final in staging either; old versions go after 30 days."""
    for run in (staging, prod):
        versioning = run.one(
            "aws:s3/bucketVersioning:BucketVersioning", "aws-storage-persistent-versioning"
        )
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
        rules = lifecycle(run, "persistent")
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
            "noncurrentDays": 30
        }
        assert rules["remove-expired-delete-markers"]["expiration"] == {
            "expiredObjectDeleteMarker": True
        }
        assert (
            versioning.urn
            in run.one(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "aws-storage-persistent-lifecycle",
            ).dependencies
        )
        assert "expire-noncurrent-versions" not in lifecycle(run, "scratch")


def test_noncurrent_version_days_are_configurable() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.storage.noncurrentVersionDays", 90)
    rules = lifecycle(run_program("staging", config), "persistent")
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 90
    }


def test_only_staging_scratch_can_be_force_destroyed(staging: Run, prod: Run) -> None:
    assert staging.one(BUCKET, "aws-storage-scratch").inputs["forceDestroy"] is True
    assert staging.one(BUCKET, "aws-storage-persistent").inputs["forceDestroy"] is False
    for kind in KINDS:
        assert prod.one(BUCKET, f"aws-storage-{kind}").inputs["forceDestroy"] is False


def test_prod_guards(staging: Run, prod: Run) -> None:
    guarded = {
        ("aws:eks/cluster:Cluster", None): False,
        ("aws:kms/key:Key", None): False,
        (TEMPLATE, "aws-registry-template"): False,
    }
    for (typ, name), retained in guarded.items():
        assert prod.one(typ, name).protect is True, typ
        assert prod.one(typ, name).retain_on_delete is retained, typ
        assert staging.one(typ, name).protect is False, typ
    for kind in KINDS:
        bucket = prod.one(BUCKET, f"aws-storage-{kind}")
        assert (bucket.protect, bucket.retain_on_delete) == (True, True), kind
        staging_bucket = staging.one(BUCKET, f"aws-storage-{kind}")
        assert (staging_bucket.protect, staging_bucket.retain_on_delete) == (False, False)
    assert not [r.name for r in staging.registrations if r.protect]


def test_creation_template_on_push_for_the_deployment_prefix(run: Run) -> None:
    template = run.one(TEMPLATE, "aws-registry-template").inputs
    deployment = run.one("aws:eks/cluster:Cluster").inputs["name"]
    assert template["appliedFors"] == ["CREATE_ON_PUSH"]
    assert template["prefix"] == deployment
    assert template["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    image_prefix = run.stack_outputs["aws"]["imagePrefix"]
    assert image_prefix == f"123456789012.dkr.ecr.us-west-2.amazonaws.com/{deployment}/"


def test_ecr_lifecycle_expires_untagged_and_keeps_recent(run: Run) -> None:
    policy = json.loads(run.one(TEMPLATE, "aws-registry-template").inputs["lifecyclePolicy"])
    untagged, recent = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    }
    assert recent["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    assert {r["action"]["type"] for r in policy["rules"]} == {"expire"}


def test_account_wide_scanning_only_when_opted_in(staging: Run, prod: Run) -> None:
    """The scanning configuration replaces the whole account's (Inspector enhanced scanning
    included): neither stack file claims it, and setting scanOnPush does."""
    scanning_type = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
    assert staging.of_type(scanning_type) == []
    assert prod.of_type(scanning_type) == []
    config = with_value(stack_config("staging"), "clouds.aws.scanOnPush", True)
    (rule,) = run_program("staging", config).one(scanning_type).inputs["rules"]
    assert rule["scanFrequency"] == "SCAN_ON_PUSH"
    assert rule["repositoryFilters"] == [
        {"filter": "pangeo-binder-staging/*", "filterType": "WILDCARD"}
    ]


def test_budget_alerts_at_four_thresholds() -> None:
    config = with_value(
        stack_config("prod"),
        "clouds.aws.budget",
        {"monthlyUsd": 450.5, "emails": ["ops@example.org", "pi@example.org"]},
    )
    run = run_program("prod", config)
    budget = run.one("aws:budgets/budget:Budget").inputs
    assert (budget["budgetType"], budget["timeUnit"]) == ("COST", "MONTHLY")
    assert (budget["limitAmount"], budget["limitUnit"]) == ("450.50", "USD")
    assert sorted(n["threshold"] for n in budget["notifications"]) == [50, 90, 100, 120]
    for notification in budget["notifications"]:
        assert notification["subscriberEmailAddresses"] == ["ops@example.org", "pi@example.org"]
        assert notification["notificationType"] == "ACTUAL"
        assert notification["thresholdType"] == "PERCENTAGE"
