"""IAM on AWS: every role trusts exactly one principal, nothing is broader than it needs,
and no long-lived key exists anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import EKS_ISSUER, Run, run_program, stack_config, with_value
from pangeo_binder.aws.identity import irsa_trust_policy

ROLE = "aws:iam/role:Role"
ISSUER = EKS_ISSUER.removeprefix("https://")
OIDC_ARN = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"

# IRSA role -> the one service account allowed to assume it.
IRSA = {
    "aws-storage-users": "binder:user-sa",
    "aws-registry-builder": "binder:binderhub",
    "aws-storage-backup": "binder:hub-db-backup",
    "aws-autoscaler-role": "kube-system:cluster-autoscaler",
    "aws-eks-vpc-cni": "kube-system:aws-node",
    "aws-eks-aws-ebs-csi-driver": "kube-system:ebs-csi-controller-sa",
}
PUBLIC_IRSA = {"aws-public-builder": "binder-public:binderhub"}
SERVICE_ROLES = {"aws-eks-role": "eks.amazonaws.com", "aws-eks-nodes": "ec2.amazonaws.com"}
# Calls AWS only authorises on "*" (no resource-level permissions), all read-only or login.
STAR_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
}
ALLOWED_MANAGED = {
    "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
}


@pytest.fixture(params=["staging", "prod"])
def run(request: pytest.FixtureRequest, staging: Run, prod: Run) -> Run:
    return {"staging": staging, "prod": prod}[request.param]


def trust(run: Run, name: str) -> dict[str, Any]:
    return json.loads(run.one(ROLE, name).inputs["assumeRolePolicy"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allow_statements(run: Run) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every policy document the program writes."""
    found = []
    for resource in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(resource.inputs["policy"])["Statement"]:
            if statement["Effect"] == "Allow":
                found.append((resource.name, statement))
    return found


@pytest.mark.parametrize(("role", "subject"), IRSA.items())
def test_irsa_trust_names_the_exact_service_account(run: Run, role: str, subject: str) -> None:
    (statement,) = trust(run, role)["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:sub": f"system:serviceaccount:{subject}",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    }


def test_every_role_is_either_irsa_or_a_service_role(run: Run) -> None:
    # Staging's public Binder has its own builder role, trusted by its namespace's account.
    public = set(PUBLIC_IRSA) if "publicBinderUrl" in run.stack_outputs["aws"] else set()
    assert {r.name for r in run.of_type(ROLE)} == set(IRSA) | set(SERVICE_ROLES) | public
    for role, subject in PUBLIC_IRSA.items() if public else ():
        condition = trust(run, role)["Statement"][0]["Condition"]["StringEquals"]
        assert [v for k, v in condition.items() if k.endswith(":sub")] == [
            f"system:serviceaccount:{subject}"
        ]
    for role, service in SERVICE_ROLES.items():
        (statement,) = trust(run, role)["Statement"]
        assert statement["Principal"] == {"Service": service}
        assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]


def test_trust_follows_hub_namespace_and_builder_account() -> None:
    config = with_value(stack_config("staging"), "hub.namespace", "hub2")
    config = with_value(config, "hub.builderServiceAccount", "builder")
    run = run_program("staging", config)
    users = trust(run, "aws-storage-users")["Statement"][0]["Condition"]["StringEquals"]
    builder = trust(run, "aws-registry-builder")["Statement"][0]["Condition"]["StringEquals"]
    assert users[f"{ISSUER}:sub"] == "system:serviceaccount:hub2:user-sa"
    assert builder[f"{ISSUER}:sub"] == "system:serviceaccount:hub2:builder"


def test_trust_policy_function_checks_both_subject_and_audience() -> None:
    policy = json.loads(irsa_trust_policy("arn:p", "https://oidc.example/id/X", "ns/sa"))
    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {
        "oidc.example/id/X:sub": "system:serviceaccount:ns:sa",
        "oidc.example/id/X:aud": "sts.amazonaws.com",
    }


def test_only_minimal_managed_policies(run: Run) -> None:
    attached = {
        r.inputs["policyArn"]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached == ALLOWED_MANAGED
    for policy in attached:
        assert "AdministratorAccess" not in policy and "PowerUser" not in policy
        assert "FullAccess" not in policy


def test_node_role_has_only_join_and_pull(run: Run) -> None:
    node_role = run.one(ROLE, "aws-eks-nodes").urn
    attached = {
        r.inputs["policyArn"]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if "aws-eks-nodes" in r.name
    }
    assert attached == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    }
    assert not [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.parent == node_role]
    # Beyond them, one inline policy: a first pull through the image caches
    # (tests/test_image_cache.py checks its actions and resources).
    name = run.one(ROLE, "aws-eks-nodes").outputs["name"]
    inline = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == name]
    assert [r.name for r in inline] == ["aws-image-cache-nodes-first-pull"]


def test_no_iam_users_or_access_keys(run: Run) -> None:
    types = {r.type for r in run.registrations}
    for forbidden in (
        "aws:iam/user:User",
        "aws:iam/accessKey:AccessKey",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    ):
        assert forbidden not in types


def test_no_wildcard_actions_and_star_only_for_unscoped_reads(run: Run) -> None:
    statements = allow_statements(run)
    assert len(statements) >= 6
    for name, statement in statements:
        actions = as_list(statement["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (name, action)
            assert "*" not in action, (name, action)
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= STAR_RESOURCE_ALLOWED, (name, actions)


def test_users_reach_their_two_buckets_only(run: Run) -> None:
    policy = json.loads(
        run.one("aws:iam/rolePolicy:RolePolicy", "aws-storage-users-policy").inputs["policy"]
    )
    buckets = sorted(b.outputs["arn"] for b in run.of_type("aws:s3/bucket:Bucket"))
    allowed = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    resources = sorted(r for s in allowed for r in as_list(s["Resource"]))
    assert resources == sorted(buckets + [f"{arn}/*" for arn in buckets])
    # The one Deny: the hub database's backups, new and old (tests/test_hub_db_backup.py).
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    persistent = next(a for a in buckets if a.endswith("-persistent")).split(":::")[1]
    assert [r.split(":::")[1] for r in as_list(deny["Resource"])] == [
        persistent + "/_backups/*",
        persistent + "/backups/*",
    ]
    actions = {a for s in policy["Statement"] for a in as_list(s["Action"])}
    assert not {a for a in actions if "Policy" in a or "Acl" in a or "DeleteBucket" in a}


def test_builder_pushes_under_its_prefix_only(run: Run) -> None:
    deployment = run.one("aws:eks/cluster:Cluster").inputs["name"]
    policy = json.loads(
        run.one("aws:iam/rolePolicy:RolePolicy", "aws-registry-builder-policy").inputs["policy"]
    )
    push = next(s for s in policy["Statement"] if s.get("Sid") == "PushUnderPrefix")
    assert push["Resource"] == f"arn:aws:ecr:us-west-2:123456789012:repository/{deployment}/*"
    assert {"ecr:PutImage", "ecr:CompleteLayerUpload", "ecr:CreateRepository"} <= set(
        push["Action"]
    )
    assert "ecr:DeleteRepository" not in push["Action"]
    assert "ecr:BatchDeleteImage" not in push["Action"]
