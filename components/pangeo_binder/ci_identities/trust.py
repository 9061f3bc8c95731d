"""Who may assume the CI identities: pure functions from a repository and a job to conditions.

GitHub's OIDC token names the job in its `sub` claim. With GitHub's default subject format
(docs.github.com, "About security hardening with OpenID Connect", read 2026-11-26):

- a job of a `pull_request` workflow without an environment: `repo:OWNER/REPO:pull_request`;
- a job with `environment: NAME`: `repo:OWNER/REPO:environment:NAME`;
- any other job: `repo:OWNER/REPO:ref:refs/heads/BRANCH` (or `:ref:refs/tags/TAG`).

The preview identity trusts the first subject, the deploy identity only the environment
subjects. A fork's own workflows carry the fork's name; a pull request from a fork into this
repository runs with a read-only token and GitHub issues it no OIDC token (and preview.yml skips
it). A repository that customised its subject template (the REST endpoint
`actions/oidc/customization/sub`) must use the default for these conditions to match.

The evaluators at the bottom answer "would this token be accepted?" for the conditions built
here, so tests can check both ways that the right job gets in and every other one does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_HOST = "token.actions.githubusercontent.com"
AWS_AUDIENCE = "sts.amazonaws.com"  # what aws-actions/configure-aws-credentials requests
REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")


def _checked_repository(repository: str) -> str:
    if not REPOSITORY.match(repository):
        raise ValueError(f"not an OWNER/REPO name: {repository!r}")
    return repository


def pull_request_subject(repository: str) -> str:
    """The `sub` of a pull_request job of `repository` that uses no environment."""
    return f"repo:{_checked_repository(repository)}:pull_request"


def environment_subject(repository: str, environment: str) -> str:
    """The `sub` of a job of `repository` that runs in GitHub environment `environment`."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", environment):
        raise ValueError(f"not an environment name: {environment!r}")
    return f"repo:{_checked_repository(repository)}:environment:{environment}"


# GCP: the pool's provider admits tokens of this repository only; each service account lets one
# or more exact subjects impersonate it.

GCP_ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.repository_id": "assertion.repository_id",
    "attribute.event_name": "assertion.event_name",
}


def gcp_attribute_condition(repository: str, repository_id: str | None = None) -> str:
    """The provider's CEL condition: tokens of this repository only (and, when its numeric id is
    known, of this very repository: a deleted and re-created namesake has another id)."""
    terms = [f"assertion.repository == '{_checked_repository(repository)}'"]
    if repository_id is not None:
        if not repository_id.isdigit():
            raise ValueError(f"a repository id is a number: {repository_id!r}")
        terms.append(f"assertion.repository_id == '{repository_id}'")
    return " && ".join(terms)


def gcp_principal(pool_name: str, subject: str) -> str:
    """The IAM member for exactly one OIDC subject of the pool
    (`projects/NUMBER/locations/global/workloadIdentityPools/POOL`)."""
    return f"principal://iam.googleapis.com/{pool_name}/subject/{subject}"


# AWS: the role's trust policy names the account's GitHub OIDC provider, the audience and the
# exact subjects.


def aws_trust_policy(provider_arn: str, subjects: Iterable[str]) -> dict[str, Any]:
    """The assume-role policy letting exactly `subjects` in through the GitHub provider."""
    subjects = sorted(subjects)
    if not subjects:
        raise ValueError("a role must trust at least one subject")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_HOST}:aud": AWS_AUDIENCE,
                        f"{GITHUB_HOST}:sub": subjects,
                    }
                },
            }
        ],
    }


# Evaluators, for tests and for an operator checking a token by hand.

_CEL_TERM = re.compile(r"^assertion\.([a-z_]+) == '([^'\\]*)'$")


def gcp_condition_admits(condition: str, claims: Mapping[str, Any]) -> bool:
    """Evaluate a provider condition of the form built above (`assertion.X == 'v'` terms
    joined by `&&`). Any other CEL is refused rather than guessed at."""
    for term in condition.split(" && "):
        match = _CEL_TERM.match(term.strip())
        if not match:
            raise ValueError(f"unsupported CEL term: {term!r}")
        claim, value = match.groups()
        if str(claims.get(claim)) != value:
            return False
    return True


def gcp_may_impersonate(
    condition: str, pool_name: str, members: Iterable[str], claims: Mapping[str, Any]
) -> bool:
    """Would GCP let a token with `claims` impersonate a service account whose
    workloadIdentityUser members are `members`? The token must pass the provider's condition;
    its `google.subject` (the `sub` claim) must then be one of the members."""
    if claims.get("iss") != GITHUB_ISSUER or not gcp_condition_admits(condition, claims):
        return False
    return gcp_principal(pool_name, str(claims.get("sub"))) in set(members)


def _matches(operator: str, expected: str, actual: str) -> bool:
    if operator == "StringEquals":
        return actual == expected
    if operator == "StringLike":
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in expected)
        return re.fullmatch(pattern, actual) is not None
    raise ValueError(f"unsupported condition operator: {operator}")


def _condition_holds(operator: str, key: str, values: str | list[str], claims: Mapping) -> bool:
    prefix = f"{GITHUB_HOST}:"
    if not key.startswith(prefix):
        raise ValueError(f"unsupported condition key: {key}")
    actual = claims.get(key.removeprefix(prefix))
    if actual is None:  # IAM: a condition on a missing key does not match
        return False
    return any(
        _matches(operator, value, str(actual))
        for value in ([values] if isinstance(values, str) else values)
    )


def aws_policy_admits(
    policy: dict[str, Any] | str, provider_arn: str, claims: Mapping[str, Any]
) -> bool:
    """Would STS accept AssumeRoleWithWebIdentity with a token carrying `claims`, issued by the
    provider `provider_arn`, under this trust policy? Allow statements only (none of ours
    denies); every condition key must match one of its values, as IAM evaluates them."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            raise ValueError("only Allow statements are evaluated")
        if statement.get("Principal", {}).get("Federated") != provider_arn:
            continue
        if statement.get("Action") != "sts:AssumeRoleWithWebIdentity":
            continue
        conditions = statement.get("Condition", {})
        if all(
            _condition_holds(operator, key, values, claims)
            for operator, keys in conditions.items()
            for key, values in keys.items()
        ):
            return True
    return False
