"""Who reaches the EKS cluster when CI previews and deploys under two roles: the deployer's
entry pinned by `deployerRoleArn`, read-only entries for `viewerRoleArns`, and the same plan
whichever of the two roles runs the program."""

from __future__ import annotations

import logging
import re

import pytest

from harness import (
    AWS_DEPLOYER_ROLE,
    AWS_PREVIEW_ROLE,
    AwsCaller,
    RecordingMonitor,
    Run,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.aws.cluster import caller_without_access, viewer_principals

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
OPS_ROLE = "arn:aws:iam::123456789012:role/ops/HubOperators"
SSO_READER = (
    "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/us-west-2/"
    "AWSReservedSSO_ReadOnly_0123abcd"
)
PREVIEW = AwsCaller(AWS_PREVIEW_ROLE, session="preview-123")


def ci_config(deployer: str | None = AWS_DEPLOYER_ROLE) -> dict:
    """Staging as the README's CI setup configures it: ci-identities' deploy role pins the
    deployer's entry, its preview role and an SSO read-only role are viewers."""
    config = stack_config("staging")
    config = with_value(config, "clouds.aws.adminRoleArns", [OPS_ROLE])
    config = with_value(config, "clouds.aws.viewerRoleArns", [AWS_PREVIEW_ROLE, SSO_READER])
    if deployer is not None:
        config = with_value(config, "clouds.aws.deployerRoleArn", deployer)
    return config


@pytest.fixture(scope="module")
def ci_deploy() -> Run:
    """The deploy job: `pulumi up` as the deploy role."""
    return run_program("staging", ci_config())


@pytest.fixture(scope="module")
def ci_preview() -> Run:
    """A pull request's preview: the same program as the preview role."""
    return run_program("staging", ci_config(), RecordingMonitor(caller=PREVIEW))


def entries(run: Run) -> dict[str, str]:
    return {r.name: r.inputs["principalArn"] for r in run.of_type(ENTRY)}


def test_the_harness_runs_as_the_caller_it_is_given(ci_preview: Run) -> None:
    """The program asks for the role behind the preview role's session, as STS names it."""
    (context,) = [c for c in ci_preview.calls if c.token.endswith("getSessionContext")]
    assert context.args["arn"] == (
        "arn:aws:sts::123456789012:assumed-role/pangeo-binder-ci-preview/preview-123"
    )


def test_viewer_roles_get_cluster_wide_read_only_entries(ci_deploy: Run) -> None:
    assert entries(ci_deploy) == {
        "aws-eks-admin-huboperators": OPS_ROLE,
        "aws-eks-admin-pangeo-deployer": AWS_DEPLOYER_ROLE,
        "aws-eks-viewer-pangeo-binder-ci-preview": AWS_PREVIEW_ROLE,
        "aws-eks-viewer-awsreservedsso_readonly_0123abcd": SSO_READER,
    }
    policies = {r.name: r.inputs["policyArn"] for r in ci_deploy.of_type(ASSOCIATION)}
    assert policies == {
        "aws-eks-admin-huboperators": ADMIN_POLICY,
        "aws-eks-admin-pangeo-deployer": ADMIN_POLICY,
        "aws-eks-viewer-pangeo-binder-ci-preview": VIEW_POLICY,
        "aws-eks-viewer-awsreservedsso_readonly_0123abcd": VIEW_POLICY,
    }
    for name, arn in (
        ("aws-eks-viewer-pangeo-binder-ci-preview", AWS_PREVIEW_ROLE),
        ("aws-eks-viewer-awsreservedsso_readonly_0123abcd", SSO_READER),
    ):
        entry = ci_deploy.one(ENTRY, name)
        assert entry.inputs["clusterName"] == "pangeo-binder-staging"
        assert entry.inputs["type"] == "STANDARD"
        assert entry.alias_names == []
        association = ci_deploy.one(ASSOCIATION, name)
        assert association.inputs["principalArn"] == arn
        assert association.inputs["accessScope"] == {"type": "cluster"}
        assert association.inputs["clusterName"] == "pangeo-binder-staging"


def test_the_kubernetes_provider_waits_for_admin_entries_only(ci_deploy: Run) -> None:
    """The program talks to the cluster as an admin; read-only entries are not on its path."""
    provider = ci_deploy.one("pulumi:providers:kubernetes", "aws-eks-k8s")
    admin = ci_deploy.one(ASSOCIATION, "aws-eks-admin-pangeo-deployer")
    viewer = ci_deploy.one(ASSOCIATION, "aws-eks-viewer-pangeo-binder-ci-preview")
    assert admin.urn in provider.dependencies
    assert viewer.urn not in provider.dependencies


def test_a_preview_under_the_preview_role_plans_what_the_deploy_does(
    ci_deploy: Run, ci_preview: Run
) -> None:
    """With deployerRoleArn set, the caller changes nothing: the deployer's entry (and every
    other resource) has the same name, inputs and aliases, so the preview's diff is empty
    where the deploy role's would be and the preview role never plans to become admin."""
    deployer = "aws-eks-admin-pangeo-deployer"
    for typ in (ENTRY, ASSOCIATION):
        deployed, previewed = ci_deploy.one(typ, deployer), ci_preview.one(typ, deployer)
        assert previewed.inputs == deployed.inputs
        assert previewed.alias_names == deployed.alias_names == ["aws-eks-deployer"]
    assert entries(ci_preview) == entries(ci_deploy)

    def plan(run: Run) -> dict:
        return {(r.type, r.name): (r.inputs, r.alias_names) for r in run.registrations}

    assert plan(ci_preview) == plan(ci_deploy)


def test_an_operator_deploying_by_hand_keeps_the_deployers_entry() -> None:
    """`make up` as an operator listed in adminRoleArns: the deploy role keeps its entry."""
    operator = AwsCaller(OPS_ROLE, session="alice")
    run = run_program("staging", ci_config(), RecordingMonitor(caller=operator))
    assert entries(run)["aws-eks-admin-pangeo-deployer"] == AWS_DEPLOYER_ROLE
    assert entries(run)["aws-eks-admin-huboperators"] == OPS_ROLE
    assert len(entries(run)) == 4


def test_without_deployer_role_arn_the_entry_follows_the_caller() -> None:
    """Unset, the role running the program is the deployer, as before: a preview as another
    role plans the deployer's entry for that role instead."""
    config = with_value(stack_config("staging"), "clouds.aws.adminRoleArns", [OPS_ROLE])
    run = run_program("staging", config, RecordingMonitor(caller=PREVIEW))
    assert entries(run) == {
        "aws-eks-admin-huboperators": OPS_ROLE,
        "aws-eks-admin-pangeo-binder-ci-preview": AWS_PREVIEW_ROLE,
    }


def test_a_viewer_running_without_deployer_role_arn_is_refused_before_anything() -> None:
    """It would be the deployer (admin) and a viewer at once, two entries for one principal
    that EKS refuses; the message names the key that fixes it."""
    monitor = RecordingMonitor(caller=PREVIEW)
    with pytest.raises(
        Exception, match=re.escape("set clouds.aws.deployerRoleArn to the role that deploys")
    ):
        run_program("staging", ci_config(deployer=None), monitor)
    assert [r.type for r in monitor.registrations if r.custom and r.type.startswith("aws:")] == []


def test_a_caller_without_an_entry_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    stranger = AwsCaller("arn:aws:iam::123456789012:role/someone-else", session="s")
    with caplog.at_level(logging.WARNING):
        run_program("staging", ci_config(), RecordingMonitor(caller=stranger))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "arn:aws:iam::123456789012:role/someone-else runs the program but has no access entry" in w
        for w in warnings
    ), warnings


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (AWS_DEPLOYER_ROLE, None),
        (OPS_ROLE, None),
        (AWS_PREVIEW_ROLE, None),
        ("arn:aws:iam::123456789012:role/someone-else", "has no access entry"),
        # The same name under another path is another ARN, with no entry of its own.
        ("arn:aws:iam::123456789012:role/ci/pangeo-binder-ci-preview", "has no access entry"),
    ],
)
def test_caller_without_access(caller: str, expected: str | None) -> None:
    problem = caller_without_access(caller, [OPS_ROLE], [AWS_PREVIEW_ROLE], AWS_DEPLOYER_ROLE)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_viewer_principals_named_after_their_role() -> None:
    assert viewer_principals([AWS_PREVIEW_ROLE, SSO_READER], AWS_DEPLOYER_ROLE) == {
        "viewer-pangeo-binder-ci-preview": AWS_PREVIEW_ROLE,
        "viewer-awsreservedsso_readonly_0123abcd": SSO_READER,
    }
    with pytest.raises(
        ValueError, match=re.escape("lists arn:aws:iam::123456789012:role/pangeo-binder-ci-preview")
    ):
        viewer_principals([AWS_PREVIEW_ROLE], AWS_PREVIEW_ROLE)
