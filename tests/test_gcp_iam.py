"""Least privilege on GCP: no keys, no primitive roles, grants scoped to single resources."""

from __future__ import annotations

import pytest

from harness import Run

PRIMITIVE = {"roles/owner", "roles/editor", "roles/viewer"}
IAM_TYPES = {
    "gcp:projects/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
}


@pytest.fixture(params=["staging", "prod"])
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def run(env: str, staging: Run, prod: Run) -> Run:
    return {"staging": staging, "prod": prod}[env]


def test_no_service_account_keys(run: Run) -> None:
    assert run.of_type("gcp:serviceaccount/key:Key") == []


def test_no_primitive_roles(run: Run) -> None:
    for grant in (r for r in run.registrations if r.type in IAM_TYPES):
        assert grant.inputs["role"] not in PRIMITIVE, grant.name


def test_no_authoritative_bindings(run: Run) -> None:
    """Members only: an authoritative binding or policy would remove grants made elsewhere."""
    assert not [
        r
        for r in run.registrations
        if r.type.endswith(("IAMBinding", "IAMPolicy", "IamBinding", "IamPolicy"))
    ]


def test_only_the_node_identity_has_a_project_role(run: Run, env: str) -> None:
    grants = [r.inputs for r in run.of_type("gcp:projects/iAMMember:IAMMember")]
    assert [(g["role"], g["member"].split("@")[0]) for g in grants] == [
        ("roles/container.defaultNodeServiceAccount", f"serviceAccount:pb-{env}-nodes")
    ]


def test_dedicated_service_accounts(run: Run, env: str) -> None:
    """Four per stack, and staging's public Binder pushes as a fifth of its own."""
    ids = sorted(r.inputs["accountId"] for r in run.of_type("gcp:serviceaccount/account:Account"))
    public = [f"pb-{env}-public"] if env == "staging" else []
    assert ids == sorted(
        [f"pb-{env}-backup", f"pb-{env}-builder", f"pb-{env}-nodes", f"pb-{env}-users", *public]
    )


def test_workload_identity_members_name_one_service_account(run: Run, env: str) -> None:
    bindings = [
        r.inputs
        for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    ]
    # Staging's public Binder's push account, bound to its own namespace's BinderHub.
    public = ["binder-public/binderhub]"] if env == "staging" else []
    assert sorted(b["member"].split("[")[1] for b in bindings) == sorted(
        ["binder/binderhub]", "binder/hub-db-backup]", "binder/user-sa]", *public]
    )
