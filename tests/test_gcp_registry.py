"""Artifact Registry for BinderHub-built images and its push identity."""

from __future__ import annotations

from harness import Run

REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPO_IAM = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
# The build registry; the image caches are repositories too (tests/test_image_cache.py).
BUILD = "gcp-registry-repository"
DAY = 86400


def test_docker_repository_in_the_cluster_region(staging: Run) -> None:
    repo = staging.one(REPOSITORY, BUILD).inputs
    assert (repo["format"], repo["location"], repo["repositoryId"]) == (
        "DOCKER",
        "us-central1",
        "pangeo-binder-staging-images",
    )
    assert repo["cleanupPolicyDryRun"] is False


def test_cleanup_policies_default_and_configured(staging: Run, prod: Run) -> None:
    def policies(run: Run) -> dict[str, dict]:
        return {p["id"]: p for p in run.one(REPOSITORY, BUILD).inputs["cleanupPolicies"]}

    staging_policies = policies(staging)
    assert staging_policies["delete-untagged"] == {
        "id": "delete-untagged",
        "action": "DELETE",
        "condition": {"tagState": "UNTAGGED", "olderThan": f"{1 * DAY}s"},
    }
    assert staging_policies["delete-old"]["condition"] == {
        "tagState": "ANY",
        "olderThan": f"{30 * DAY}s",
    }
    assert staging_policies["keep-recent"] == {
        "id": "keep-recent",
        "action": "KEEP",
        "mostRecentVersions": {"keepCount": 10},
    }
    assert policies(prod)["delete-old"]["condition"]["olderThan"] == f"{60 * DAY}s"


def test_builder_can_write_to_this_repository_only(staging: Run) -> None:
    grants = [
        r.inputs
        for r in staging.of_type(REPO_IAM)
        if r.inputs["repository"] == "pangeo-binder-staging-images"
    ]
    builder = "serviceAccount:pb-staging-builder@pangeo-binder-staging.iam.gserviceaccount.com"
    nodes = "serviceAccount:pb-staging-nodes@pangeo-binder-staging.iam.gserviceaccount.com"
    assert sorted((g["member"], g["role"]) for g in grants) == [
        (builder, "roles/artifactregistry.writer"),
        (nodes, "roles/artifactregistry.reader"),
    ]
    for grant in grants:
        assert (grant["repository"], grant["location"]) == (
            "pangeo-binder-staging-images",
            "us-central1",
        )


def test_builder_bound_to_binderhub_service_account(staging: Run) -> None:
    binding = staging.one(
        "gcp:serviceaccount/iAMMember:IAMMember", "gcp-registry-builder-wi"
    ).inputs
    assert binding["member"] == "serviceAccount:pangeo-binder-staging.svc.id.goog[binder/binderhub]"
    assert binding["role"] == "roles/iam.workloadIdentityUser"


def test_builder_may_mint_its_own_tokens_and_nothing_else(staging: Run) -> None:
    """BinderHub trades the metadata server's token for an hour-long one of the same account
    (IAM Credentials generateAccessToken): token creator on itself, no one else's. Staging's
    public BinderHub has its own push account, which likewise mints only its own."""
    grants = sorted(
        (
            r.inputs
            for r in staging.of_type("gcp:serviceaccount/iAMMember:IAMMember")
            if r.inputs["role"] == "roles/iam.serviceAccountTokenCreator"
        ),
        key=lambda grant: grant["member"],
    )
    assert grants == [
        {
            "serviceAccountId": f"projects/pangeo-binder-staging/serviceAccounts/{account}",
            "role": "roles/iam.serviceAccountTokenCreator",
            "member": f"serviceAccount:{account}",
        }
        for account in (
            "pb-staging-builder@pangeo-binder-staging.iam.gserviceaccount.com",
            "pb-staging-public@pangeo-binder-staging.iam.gserviceaccount.com",
        )
    ]


def test_prod_registry_protected_and_retained(staging: Run, prod: Run) -> None:
    assert (prod.one(REPOSITORY, BUILD).protect, prod.one(REPOSITORY, BUILD).retain_on_delete) == (
        True,
        True,
    )
    assert (
        staging.one(REPOSITORY, BUILD).protect,
        staging.one(REPOSITORY, BUILD).retain_on_delete,
    ) == (
        False,
        False,
    )


def test_registry_outputs(staging: Run) -> None:
    gcp = staging.stack_outputs["gcp"]
    assert gcp["registry"] == "us-central1-docker.pkg.dev"
    assert (
        gcp["imagePrefix"]
        == "us-central1-docker.pkg.dev/pangeo-binder-staging/pangeo-binder-staging-images/"
    )
