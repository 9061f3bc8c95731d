"""Names that must not change by accident, and must not collide.

(a) The project's own staging and prod keep every URN and every physical name: the files under
    `tests/data/` were recorded from the program before stack-qualified names existed
    (`tests/record_names.py`, run on that commit's checkout), and re-recorded only for an
    intended change (the public Binder's own registry and push identity: new resources, and
    the removed binding `gcp-public-builder-wi`); the program of today must give every
    recorded line (it may add resources: an addition deletes nothing).
(b) Two stacks of one environment (`staging` and `staging-alice`) in one GCP project and AWS
    account share no name that the cloud requires to be unique there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import PROJECT, Run, run_program, stack_config
from pangeo_binder import naming
from pangeo_binder.config import ConfigError, build_repository, load_config
from pangeo_binder.policy.context import context_from_config, context_from_stack_file
from record_names import PHYSICAL_NAMES, lines, physical_names

DATA = Path(__file__).parent / "data"
stack_file = PROJECT.stack_file

# Resource types whose names are not unique in a project or account, with why, so that a new
# type must be placed in one list or the other: inside a cluster (each stack has its own),
# under a parent named by the stack, ids the cloud picks, or additive bindings.
SCOPED = (
    "kubernetes:",  # inside the stack's own cluster
    "random:",
    "pulumi:providers:",
    "docker-build:",  # pushes to the stack's own repository
    "gcp:projects/service:Service",  # API enablement, shared on purpose: never disabled
    "gcp:projects/iAMMember:IAMMember",  # additive bindings of the stack's own accounts
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:secretmanager/secretVersion:SecretVersion",
    "gcp:container/nodePool:NodePool",  # per cluster
    "gcp:dns/recordSet:RecordSet",  # the stack's own domain
    "gcp:monitoring/",  # display names, not unique
    "aws:ec2/",  # ids the cloud picks; Name tags are not unique
    "aws:autoscaling/tag:Tag",
    "aws:iam/rolePolicy:RolePolicy",  # per role
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",  # the cluster's own issuer URL
    "aws:eks/nodeGroup:NodeGroup",  # per cluster
    "aws:eks/addon:Addon",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:s3/bucket",  # bucket sub-resources: per bucket (the Bucket itself is listed)
    "aws:kms/key:Key",  # ids the cloud picks
    "aws:route53/record:Record",  # the stack's own domain
)


def recorded(stack: str) -> list[str]:
    return (DATA / f"urns-{stack}.txt").read_text().splitlines()


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_projects_own_stacks_keep_every_urn_and_physical_name(
    stack: str, staging: Run, prod: Run
) -> None:
    """Every recorded URN and physical name is still there: a rename would delete and
    recreate (or orphan) what it names. New resources are additions and delete nothing; the
    record is re-taken with tests/record_names.py when a change intends to remove one."""
    run = {"staging": staging, "prod": prod}[stack]
    expected, now = recorded(stack), lines(run.registrations)
    assert sum(line.startswith("name ") for line in expected) > 25  # the record is real
    missing = sorted(set(expected) - set(now))
    assert missing == [], "a recorded URN or name is gone: alias it, or re-record it on purpose"


@pytest.fixture(scope="module")
def alice() -> Run:
    """Staging's own config (same GCP project, same AWS account) under another stack name,
    named after its stack as init writes it."""
    return run_program("staging-alice", {**stack_config("staging"), "resourceNames": "stack"})


def test_every_registered_type_has_its_naming_reviewed(staging: Run, prod: Run) -> None:
    types = {r.type for run in (staging, prod) for r in run.custom()}
    unreviewed = sorted(t for t in types if t not in PHYSICAL_NAMES and not t.startswith(SCOPED))
    assert unreviewed == []


def test_two_stacks_of_one_environment_share_no_unique_name(staging: Run, alice: Run) -> None:
    ours = {(t, v) for t, _, v in physical_names(staging.registrations)}
    theirs = {(t, v) for t, _, v in physical_names(alice.registrations)}
    assert len(theirs) == len(ours) > 25
    assert ours & theirs == set()
    # what they are called instead: the stack's name where the environment was
    assert ("gcp:container/cluster:Cluster", "pangeo-binder-staging-alice") in theirs
    assert ("aws:iam/role:Role", "pangeo-binder-staging-alice-users") in theirs
    assert ("gcp:serviceaccount/account:Account", "pb-staging-alice-builder") in theirs
    assert ("gcp:artifactregistry/repository:Repository", "staging-alice-quay") in theirs
    # and the URNs stay the same logical names (Pulumi's URNs carry the stack already)
    assert sorted(
        r.urn.replace("urn:pulumi:staging-alice::", "urn:pulumi:staging::")
        for r in alice.registrations
    ) == (sorted(r.urn for r in staging.registrations))


def test_the_names_outside_the_program_follow_the_stack(tmp_path: Path, alice: Run) -> None:
    """ci-identities' push prefix, the config's build-repository rule and the policies'
    public bucket derive the same names as the program."""
    assert build_repository("aws", "staging", "staging") == "pangeo-binder-staging"
    assert build_repository("aws", "staging", "staging-alice") == "pangeo-binder-staging-alice"
    assert build_repository("gcp", "prod") == "pangeo-binder-prod-images"
    copy = tmp_path / "Pulumi.staging-alice.yaml"
    copy.write_text(
        stack_file("staging")
        .read_text()
        .replace("config:\n", "config:\n  pangeo-binder:resourceNames: stack\n", 1)
    )
    public = context_from_stack_file(copy).public_buckets
    buckets = [v for t, _, v in physical_names(alice.registrations) if t.endswith("/bucket:Bucket")]
    declared = sorted(b for b in buckets if any(re.fullmatch(p, b) for p in public))
    assert declared == [
        "pangeo-binder-staging-alice-123456789012-public",
        "pangeo-binder-staging-staging-alice-public",
    ]
    assert naming.deployment("prod", "prod") == naming.deployment("prod") == "pangeo-binder-prod"


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ("Alice_Staging", "use lowercase letters, digits and hyphens"),
        ("staging-alice-experiment", "at most 30 characters; choose a stack name of at most 19"),
    ],
)
def test_a_stack_name_the_clouds_refuse_is_a_config_error(stack: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(
            {**stack_config("staging"), "resourceNames": "stack"},
            secret_keys=("secrets",),
            stack=stack,
        )
    assert [p.path for p in error.value.problems] == ["(stack name)"]
    assert message in str(error.value)


@pytest.mark.parametrize("setting", [None, "environment"])
def test_a_stack_without_resource_names_stack_keeps_the_names_from_before(
    staging: Run, setting: str | None
) -> None:
    """A stack deployed before names could follow the stack, whose name is not its
    environment's (a fork's `mygcp` of environment staging), keeps every physical name on
    upgrade: the key's default is `environment`, so nothing it holds is replaced."""
    config = {**stack_config("staging"), **({"resourceNames": setting} if setting else {})}
    kept = run_program("staging-alice", config)
    assert sorted(physical_names(kept.registrations)) == sorted(
        physical_names(staging.registrations)
    )
    # the policies read the same public bucket names from such a stack file, and the config
    # check the same build repository
    assert (
        context_from_config(config, "staging-alice").public_buckets
        == context_from_config(config, "staging").public_buckets
    )
    assert build_repository("gcp", "staging", None) == "pangeo-binder-staging-images"
