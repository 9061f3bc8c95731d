"""IAM without keys: IRSA roles a single Kubernetes service account can assume, and the
policy documents they carry. Documents are built by plain functions the tests read directly."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

STS_AUDIENCE = "sts.amazonaws.com"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"


def policy_document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def service_trust_policy(service: str) -> str:
    """Trust for an AWS service principal (eks.amazonaws.com, ec2.amazonaws.com)."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ]
    )


def irsa_trust_policy(provider_arn: str, issuer_url: str, service_account: str) -> str:
    """Only `namespace/name` may assume the role, with the STS audience: both conditions are
    needed, or any pod of the cluster (or any audience) could present its token."""
    namespace, name = service_account.split("/", 1)
    issuer = issuer_url.removeprefix("https://")
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{name}",
                        f"{issuer}:aud": STS_AUDIENCE,
                    }
                },
            }
        ]
    )


@dataclass(frozen=True)
class Oidc:
    """The cluster's IRSA identity provider, as the roles' trust policies need it."""

    provider_arn: pulumi.Output[str]
    issuer_url: pulumi.Output[str]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def irsa_role(
    name: str,
    *,
    role_name: str,
    oidc: Oidc,
    service_account: str,
    description: str,
    managed_policy_arns: list[str] | None = None,
    policy: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A role for exactly one Kubernetes service account (`namespace/name`), with AWS-managed
    policies attached one resource each and an optional inline policy."""
    role = aws.iam.Role(
        name,
        name=role_name,
        description=description,
        assume_role_policy=pulumi.Output.all(oidc.provider_arn, oidc.issuer_url).apply(
            lambda parts: irsa_trust_policy(parts[0], parts[1], service_account)
        ),
        max_session_duration=3600,
        opts=opts,
    )
    attach_policies(name, role, managed_policy_arns or [], opts)
    if policy is not None:
        aws.iam.RolePolicy(f"{name}-policy", role=role.name, policy=policy, opts=opts)
    return role


def attach_policies(
    name: str, role: aws.iam.Role, policy_arns: list[str], opts: pulumi.ResourceOptions
) -> list[aws.iam.RolePolicyAttachment]:
    """One attachment per AWS-managed policy, named after the policy (never a list index)."""
    return [
        aws.iam.RolePolicyAttachment(
            f"{name}-{_slug(arn.rsplit('/', 1)[-1])}", role=role.name, policy_arn=arn, opts=opts
        )
        for arn in policy_arns
    ]
