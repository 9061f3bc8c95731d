"""GCS buckets and the keyless identity notebook servers use to reach them."""

from __future__ import annotations

import pytest

from harness import Run, run_program, stack_config, with_value

BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
SA_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
USERS_EMAIL = "pb-staging-users@pangeo-binder-staging.iam.gserviceaccount.com"


def buckets(run: Run) -> dict[str, dict]:
    return {r.name.removeprefix("gcp-storage-"): r.inputs for r in run.of_type(BUCKET)}


def test_two_buckets_per_hub_and_the_public_one_where_asked(staging: Run, prod: Run) -> None:
    assert {k: v["name"] for k, v in buckets(prod).items()} == {
        "scratch": "pangeo-binder-prod-scratch",
        "persistent": "pangeo-binder-prod-persistent",
    }
    assert {k: v["name"] for k, v in buckets(staging).items()} == {
        "scratch": "pangeo-binder-staging-scratch",
        "persistent": "pangeo-binder-staging-persistent",
        "public": "pangeo-binder-staging-public",
    }


def test_bucket_names_include_environment_when_project_does_not() -> None:
    config = with_value(stack_config("staging"), "clouds.gcp.project", "pangeo-shared")
    names = {b["name"] for b in buckets(run_program("staging", config)).values()}
    assert names == {
        "pangeo-shared-staging-scratch",
        "pangeo-shared-staging-persistent",
        "pangeo-shared-staging-public",
    }


@pytest.mark.parametrize("kind", ["scratch", "persistent"])
def test_buckets_are_private_and_uniform(kind: str, staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        bucket = buckets(run)[kind]
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
        assert bucket["location"] == "US-CENTRAL1"
        assert "encryption" not in bucket  # Google-managed encryption at rest, always on


def test_scratch_expires_and_skips_soft_delete(staging: Run) -> None:
    scratch = buckets(staging)["scratch"]
    assert scratch["lifecycleRules"] == [{"action": {"type": "Delete"}, "condition": {"age": 7}}]
    assert scratch["softDeletePolicy"] == {"retentionDurationSeconds": 0}


def test_scratch_expiry_follows_config() -> None:
    config = with_value(stack_config("staging"), "clouds.gcp.storage.deleteAfterDays", 3)
    scratch = buckets(run_program("staging", config))["scratch"]
    assert scratch["lifecycleRules"][0]["condition"] == {"age": 3}


def test_persistent_keeps_soft_delete_and_never_expires(staging: Run) -> None:
    persistent = buckets(staging)["persistent"]
    # Only the hub database's backups expire (tests/test_hub_db_backup.py); users' data never.
    assert [r["condition"].get("matchesPrefixes") for r in persistent["lifecycleRules"]] == [
        ["_backups/", "backups/"]
    ]
    assert persistent["softDeletePolicy"] == {"retentionDurationSeconds": 7 * 24 * 3600}


def test_only_staging_scratch_can_be_force_destroyed(staging: Run, prod: Run) -> None:
    assert {k: v["forceDestroy"] for k, v in buckets(staging).items()} == {
        "scratch": True,
        "persistent": False,
        "public": False,
    }
    assert {k: v["forceDestroy"] for k, v in buckets(prod).items()} == {
        "scratch": False,
        "persistent": False,
    }


def test_prod_buckets_are_protected_and_retained(staging: Run, prod: Run) -> None:
    for bucket in prod.of_type(BUCKET):
        assert (bucket.protect, bucket.retain_on_delete) == (True, True), bucket.name
    for bucket in staging.of_type(BUCKET):
        assert (bucket.protect, bucket.retain_on_delete) == (False, False), bucket.name


def test_users_get_object_access_on_the_hub_buckets_only(staging: Run) -> None:
    grants = [
        r.inputs
        for r in staging.of_type(BUCKET_IAM)
        if r.inputs["member"] == f"serviceAccount:{USERS_EMAIL}"
    ]
    assert sorted((g["bucket"], g["role"]) for g in grants) == [
        ("pangeo-binder-staging-persistent", "roles/storage.objectUser"),
        ("pangeo-binder-staging-public", "roles/storage.objectUser"),
        ("pangeo-binder-staging-scratch", "roles/storage.objectUser"),
    ]
    project_grants = [
        r
        for r in staging.of_type("gcp:projects/iAMMember:IAMMember")
        if USERS_EMAIL in r.inputs["member"]
    ]
    assert project_grants == []


def test_user_sa_bound_by_workload_identity(staging: Run) -> None:
    binding = staging.one(SA_IAM, "gcp-storage-users-wi")
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert (
        binding.inputs["member"]
        == "serviceAccount:pangeo-binder-staging.svc.id.goog[binder/user-sa]"
    )
    assert (
        binding.inputs["serviceAccountId"]
        == f"projects/pangeo-binder-staging/serviceAccounts/{USERS_EMAIL}"
    )
    # The workload pool exists only once the cluster does.
    assert staging.one("gcp:container/cluster:Cluster").urn in binding.dependencies


def test_binding_follows_hub_namespace() -> None:
    config = with_value(stack_config("staging"), "hub.namespace", "pangeo")
    binding = run_program("staging", config).one(SA_IAM, "gcp-storage-users-wi")
    assert binding.inputs["member"].endswith("[pangeo/user-sa]")
