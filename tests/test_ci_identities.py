"""The CI identities (ci-identities/): who may assume the preview and the deploy identity.

The trust conditions are checked both ways with sample GitHub OIDC claims: the intended job gets
in; a fork's workflow, another repository, a branch push, the wrong environment, the wrong
audience do not. Then the real ci-identities program runs under the mock engine and the same
claims are evaluated against what it registered.
"""

from __future__ import annotations

import fnmatch
import json
import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from ci_checkout import FORK, OWN, write_checkout
from harness import ROOT, Mocks, RecordingMonitor, Run
from pangeo_binder import ci_stacks
from pangeo_binder.ci_identities import trust
from pangeo_binder.ci_identities.aws import image_push_policy
from pangeo_binder.ci_identities.config import NAMESPACE, CiConfigError, load_ci_config
from pangeo_binder.ci_identities.reference import render as render_reference
from sdk_schema import args_class, unknown_keys

PROGRAM = ROOT / "ci-identities" / "__main__.py"
REPO = "pangeo-data/pangeo-binder"
POOL = "projects/123456789012/locations/global/workloadIdentityPools/github-actions"
OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def claims(sub: str, repository: str = REPO, **extra: Any) -> dict[str, Any]:
    """A GitHub Actions OIDC token's claims (the ones the conditions read)."""
    return {
        "iss": trust.GITHUB_ISSUER,
        "aud": trust.AWS_AUDIENCE,
        "sub": sub,
        "repository": repository,
        "repository_id": "42",
        **extra,
    }


PR = claims(f"repo:{REPO}:pull_request")
STAGING = claims(f"repo:{REPO}:environment:staging")
PROD = claims(f"repo:{REPO}:environment:prod")
REFUSED_EVERYWHERE = {
    "a fork's own pull_request workflow": claims(
        "repo:mallory/pangeo-binder:pull_request", repository="mallory/pangeo-binder"
    ),
    "a fork's own staging environment": claims(
        "repo:mallory/pangeo-binder:environment:staging", repository="mallory/pangeo-binder"
    ),
    "another repository of the owner": claims(
        "repo:pangeo-data/other:environment:prod", repository="pangeo-data/other"
    ),
    "a prefix-named repository": claims(
        f"repo:{REPO}-fork:environment:prod", repository=f"{REPO}-fork"
    ),
    "a branch push": claims(f"repo:{REPO}:ref:refs/heads/main"),
    "a tag push": claims(f"repo:{REPO}:ref:refs/tags/v1"),
    "another environment": claims(f"repo:{REPO}:environment:dev"),
    "a re-created namesake (another id)": claims(
        f"repo:{REPO}:environment:prod", repository_id="999"
    ),
}
WHO = {"preview": [PR], "deploy": [STAGING, PROD]}


def expected(kind: str, token: dict[str, Any]) -> bool:
    return any(token is allowed for allowed in WHO[kind])


CASES = [
    ("pull request", PR),
    ("staging", STAGING),
    ("prod", PROD),
    *REFUSED_EVERYWHERE.items(),
]


# The pure functions.


def test_subjects() -> None:
    assert trust.pull_request_subject(REPO) == f"repo:{REPO}:pull_request"
    assert trust.environment_subject(REPO, "prod") == f"repo:{REPO}:environment:prod"
    for bad in ("pangeo-data", "a/b/c", "a/b:environment:prod", ""):
        with pytest.raises(ValueError):
            trust.pull_request_subject(bad)
    with pytest.raises(ValueError):
        trust.environment_subject(REPO, "prod:x")


def gcp_members(kind: str) -> list[str]:
    subjects = (
        [trust.pull_request_subject(REPO)]
        if kind == "preview"
        else [trust.environment_subject(REPO, e) for e in ("staging", "prod")]
    )
    return [trust.gcp_principal(POOL, s) for s in subjects]


@pytest.mark.parametrize("kind", ["preview", "deploy"])
@pytest.mark.parametrize(("case", "token"), CASES, ids=[c for c, _ in CASES])
def test_gcp_trust_both_ways(kind: str, case: str, token: dict[str, Any]) -> None:
    condition = trust.gcp_attribute_condition(REPO, "42")
    allowed = trust.gcp_may_impersonate(condition, POOL, gcp_members(kind), token)
    assert allowed == expected(kind, token), case


@pytest.mark.parametrize("kind", ["preview", "deploy"])
@pytest.mark.parametrize(("case", "token"), CASES, ids=[c for c, _ in CASES])
def test_aws_trust_both_ways(kind: str, case: str, token: dict[str, Any]) -> None:
    subjects = [
        trust.pull_request_subject(REPO)
        if kind == "preview"
        else trust.environment_subject(REPO, e)
        for e in (["-"] if kind == "preview" else ["staging", "prod"])
    ]
    policy = trust.aws_trust_policy(OIDC_ARN, subjects)
    if case.startswith("a re-created namesake"):  # IAM sees no repository id: the sub decides
        return
    assert trust.aws_policy_admits(policy, OIDC_ARN, token) == expected(kind, token), case


def test_the_wrong_audience_or_issuer_is_refused() -> None:
    policy = trust.aws_trust_policy(OIDC_ARN, [trust.pull_request_subject(REPO)])
    assert trust.aws_policy_admits(policy, OIDC_ARN, PR)
    assert not trust.aws_policy_admits(policy, OIDC_ARN, {**PR, "aud": "https://github.com/x"})
    assert not trust.aws_policy_admits(policy, OIDC_ARN.replace("1234", "9999"), PR)
    condition = trust.gcp_attribute_condition(REPO)
    members = gcp_members("preview")
    assert trust.gcp_may_impersonate(condition, POOL, members, PR)
    assert not trust.gcp_may_impersonate(condition, POOL, members, {**PR, "iss": "https://evil"})


def test_without_a_repository_id_gcp_checks_the_name_only() -> None:
    condition = trust.gcp_attribute_condition(REPO)
    assert condition == f"assertion.repository == '{REPO}'"
    assert trust.gcp_condition_admits(condition, {**PR, "repository_id": "999"})
    with pytest.raises(ValueError):
        trust.gcp_attribute_condition(REPO, "42 || true")


def test_the_evaluators_themselves() -> None:
    """StringLike wildcards, a missing claim, and conditions they cannot evaluate."""
    like = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": OIDC_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {"token.actions.githubusercontent.com:sub": "repo:a/*"}
                },
            }
        ]
    }
    assert trust.aws_policy_admits(like, OIDC_ARN, {"sub": "repo:a/b:pull_request"})
    assert not trust.aws_policy_admits(like, OIDC_ARN, {"sub": "repo:ab/c:pull_request"})
    assert not trust.aws_policy_admits(like, OIDC_ARN, {})
    like["Statement"][0]["Condition"] = {"ForAnyValue:StringEquals": {"x:sub": "y"}}
    with pytest.raises(ValueError):
        trust.aws_policy_admits(like, OIDC_ARN, {"sub": "y"})
    with pytest.raises(ValueError):
        trust.gcp_condition_admits("assertion.repository.startsWith('a')", PR)
    assert not trust.gcp_condition_admits(
        "assertion.repository == 'x' && assertion.sub == 's'", {"repository": "x"}
    )


# The program under the mock engine.


class CiMocks(Mocks):
    """The harness mocks plus the names GCP gives a pool and its provider."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        inputs = dict(args.inputs)
        if args.typ == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            outputs["name"] = POOL.replace("github-actions", inputs["workloadIdentityPoolId"])
        if args.typ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            pool = POOL.replace("github-actions", inputs["workloadIdentityPoolId"])
            outputs["name"] = f"{pool}/providers/{inputs['workloadIdentityPoolProviderId']}"
        return resource_id, outputs


def stack_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "ci-identities" / "Pulumi.ci.yaml").read_text())["config"]


@pytest.fixture(scope="module", autouse=True)
def own_checkout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The program reads the stacks CI deploys from a checkout: here one shaped like the
    project's (staging, then prod with approval, both clouds), written by the test, so the
    suite does not depend on the project's own stack files."""
    root = write_checkout(tmp_path_factory.mktemp("own"), OWN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PANGEO_BINDER_CHECKOUT", str(root))
        yield root


def run_ci(config: dict[str, Any], monitor: RecordingMonitor | None = None) -> Run:
    """Run ci-identities/__main__.py under mocks with `config` (full `namespace:key` keys),
    reading the stacks of the checkout PANGEO_BINDER_CHECKOUT names."""
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, []
    )
    monitor = monitor or RecordingMonitor()
    monitor.mocks = CiMocks()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=NAMESPACE, stack="ci", preview=False, monitor=monitor
    )
    settings.ROOT.set(None)
    _sync_await(run_in_stack(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    return Run(
        monitor.registrations, monitor.stack_outputs, monitor.secret_outputs, monitor.mocks.calls
    )


def our_config(**overrides: Any) -> dict[str, Any]:
    config = {**stack_file(), f"{NAMESPACE}:repository": REPO}
    config[f"{NAMESPACE}:repositoryId"] = 42
    return {**config, **{f"{NAMESPACE}:{k}": v for k, v in overrides.items()}}


@pytest.fixture(scope="module")
def ci(own_checkout: Path) -> Run:
    return run_ci(our_config())


def impersonators(run: Run, account_id: str) -> list[str]:
    account = next(
        r
        for r in run.of_type("gcp:serviceaccount/account:Account")
        if r.inputs["accountId"] == account_id
    )
    bindings = [
        r
        for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["serviceAccountId"] == account.outputs["name"]
    ]
    assert all(b.inputs["role"] == "roles/iam.workloadIdentityUser" for b in bindings)
    return [b.inputs["member"] for b in bindings]


@pytest.mark.parametrize("kind", ["preview", "deploy"])
@pytest.mark.parametrize(("case", "token"), CASES, ids=[c for c, _ in CASES])
def test_the_programs_gcp_bindings_admit_exactly_the_right_jobs(
    ci: Run, kind: str, case: str, token: dict[str, Any]
) -> None:
    provider = ci.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider.inputs["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider.inputs["attributeMapping"]["google.subject"] == "assertion.sub"
    members = impersonators(ci, f"pangeo-binder-{kind}")
    allowed = trust.gcp_may_impersonate(provider.inputs["attributeCondition"], POOL, members, token)
    assert allowed == expected(kind, token), case


@pytest.mark.parametrize("kind", ["preview", "deploy"])
@pytest.mark.parametrize(("case", "token"), CASES, ids=[c for c, _ in CASES])
def test_the_programs_aws_roles_admit_exactly_the_right_jobs(
    ci: Run, kind: str, case: str, token: dict[str, Any]
) -> None:
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider.protect
    role = ci.one("aws:iam/role:Role", f"aws-{kind}")
    if case.startswith("a re-created namesake"):
        return
    admitted = trust.aws_policy_admits(role.inputs["assumeRolePolicy"], OIDC_ARN, token)
    assert admitted == expected(kind, token), case


def test_preview_gets_read_only_roles_and_deploy_the_deploying_ones(ci: Run) -> None:
    grants: dict[str, set[tuple[str, str]]] = {"preview": set(), "deploy": set()}
    for binding in ci.of_type("gcp:projects/iAMMember:IAMMember"):
        kind = "preview" if "pangeo-binder-preview@" in binding.inputs["member"] else "deploy"
        grants[kind].add((binding.inputs["project"], binding.inputs["role"]))
    projects = ("pangeo-binder-staging", "pangeo-binder-prod")
    assert grants["preview"] == {
        (p, r) for p in projects for r in ("roles/viewer", "roles/iam.securityReviewer")
    }
    assert {r for _, r in grants["deploy"]} >= {"roles/container.admin", "roles/storage.admin"}
    state = {
        b.inputs["member"].split(":")[1].split("@")[0]: b.inputs["role"]
        for b in ci.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    }
    assert state == {
        "pangeo-binder-preview": "roles/storage.objectViewer",
        "pangeo-binder-deploy": "roles/storage.objectAdmin",
    }


def test_the_aws_preview_role_reads_and_the_deploy_role_writes(ci: Run) -> None:
    attached = {
        r.name: r.inputs["policyArn"]
        for r in ci.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    preview = [arn for name, arn in attached.items() if name.startswith("aws-preview")]
    assert preview == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert "ReadOnlyAccess" not in " ".join(
        arn for name, arn in attached.items() if name.startswith("aws-deploy")
    )
    actions = {}
    for policy in ci.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        actions[policy.name] = {a for s in document["Statement"] for a in s["Action"]}
    assert not actions["aws-preview-state"] & {"s3:PutObject", "s3:DeleteObject"}
    assert "s3:GetObject" in actions["aws-preview-state"]
    assert {"s3:PutObject", "s3:DeleteObject"} <= actions["aws-deploy-state"]


def test_the_outputs_are_the_variables_the_workflows_read(ci: Run) -> None:
    assert ci.stack_outputs == {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": f"{POOL}/providers/github",
        "GCP_PREVIEW_SERVICE_ACCOUNT": "pangeo-binder-preview@pangeo-binder-ops.iam.gserviceaccount.com",
        "GCP_DEPLOY_SERVICE_ACCOUNT": "pangeo-binder-deploy@pangeo-binder-ops.iam.gserviceaccount.com",
        "AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::123456789012:role/pangeo-binder-ci-preview",
        "AWS_DEPLOY_ROLE_ARN": "arn:aws:iam::123456789012:role/pangeo-binder-ci-deploy",
    }
    workflows = " ".join(p.read_text() for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    read = set(re.findall(r"vars\.([A-Z0-9_]+)", workflows))
    # Both ways: every output is read, and the workflows read nothing else but the backend URL,
    # which the operator sets by hand (docs/howto/ci.md).
    assert read == set(ci.stack_outputs) | {"PULUMI_BACKEND_URL"}
    guide = (ROOT / "docs" / "howto" / "ci.md").read_text()
    assert all(f"`{variable}`" in guide for variable in read)


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_a_one_cloud_ci_stack_exports_only_that_clouds_variables(cloud: str) -> None:
    """The variables a one-cloud stack needs are exactly the ones its workflows' steps read
    when `pangeo_binder.clouds` says that cloud alone is configured."""
    other = "aws" if cloud == "gcp" else "gcp"
    config = {k: v for k, v in our_config().items() if k != f"{NAMESPACE}:{other}"}
    run = run_ci(config)
    assert {k.split("_")[0] for k in run.stack_outputs} == {cloud.upper()}


def documented_gcp_deploy_roles() -> set[str]:
    """The roles docs/howto/prerequisites.md lists for the deploying principal: the `roles/...`
    code spans of its "deploying principal" paragraph."""
    page = (ROOT / "docs" / "howto" / "prerequisites.md").read_text()
    paragraph = page.split("<!-- deploy-roles -->")[1].split("<!-- /deploy-roles -->")[0]
    return set(re.findall(r"`(roles/[A-Za-z.]+)`", paragraph))


def test_the_ci_deploy_account_gets_exactly_the_roles_the_docs_list(ci: Run) -> None:
    granted = {
        b.inputs["role"]
        for b in ci.of_type("gcp:projects/iAMMember:IAMMember")
        if "pangeo-binder-deploy@" in b.inputs["member"]
    }
    assert "roles/serviceusage.serviceUsageAdmin" in granted  # the program enables APIs
    assert granted == documented_gcp_deploy_roles()


def test_the_aws_deploy_role_gets_exactly_the_configured_policies(ci: Run) -> None:
    """The docs list no fixed AWS policy: the deploy role gets `deployPolicyArns`, nothing
    more (its state-bucket access is an inline policy, checked above)."""
    attached = [
        r.inputs["policyArn"]
        for r in ci.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("aws-deploy")
    ]
    assert attached == stack_file()[f"{NAMESPACE}:aws"]["deployPolicyArns"]
    guide = (ROOT / "docs" / "howto" / "ci.md").read_text()
    assert "`deployPolicyArns`" in guide


def test_every_resource_uses_the_explicit_provider_and_declared_keys(ci: Run) -> None:
    providers = {
        r.type.split(":")[-1]: r.urn
        for r in ci.registrations
        if r.type.startswith("pulumi:providers:")
    }
    problems = []
    for resource in ci.custom():
        cls = args_class(resource.type)
        assert cls is not None, resource.type
        problems += unknown_keys(resource.inputs, cls, f"{resource.type} {resource.name}")
        if not resource.type.startswith("pulumi:providers:"):
            assert resource.provider_urn == providers[resource.type.split(":")[0]], resource.name
    assert problems == []


def test_an_existing_aws_provider_is_reused() -> None:
    aws = {
        **stack_file()[f"{NAMESPACE}:aws"],
        "createOidcProvider": False,
        "oidcProviderArn": OIDC_ARN,
    }
    run = run_ci(our_config(aws=aws))
    assert run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    role = run.one("aws:iam/role:Role", "aws-deploy")
    assert trust.aws_policy_admits(role.inputs["assumeRolePolicy"], OIDC_ARN, PROD)


def test_config_mistakes_are_all_reported_before_anything_is_registered() -> None:
    monitor = RecordingMonitor()
    config = {
        f"{NAMESPACE}:repository": "not a repo",
        f"{NAMESPACE}:gcp": {"project": "pangeo-binder-ops", "targetProjects": [], "poolID": "x"},
    }
    with pytest.raises(Exception, match="problem") as raised:
        run_ci(config, monitor)
    message = str(raised.value)
    assert "repository: String should match pattern" in message
    assert "gcp.targetProjects: List should have at least 1 item" in message
    assert "gcp.poolID: Extra inputs are not permitted" in message
    assert monitor.registrations == []


def test_aws_needs_the_provider_arn_exactly_when_it_does_not_create_one() -> None:
    with pytest.raises(CiConfigError, match=r"aws\.oidcProviderArn"):
        load_ci_config(
            {
                "repository": REPO,
                "aws": {
                    "deployPolicyArns": [OIDC_ARN.replace("oidc-provider", "policy")],
                    "createOidcProvider": False,
                },
            }
        )
    with pytest.raises(CiConfigError, match="configure gcp, aws or both"):
        load_ci_config({"repository": REPO})


def test_the_example_stack_file_is_valid(own_checkout: Path) -> None:
    raw = {k.split(":", 1)[1]: v for k, v in stack_file().items() if k.startswith(NAMESPACE)}
    load_ci_config(raw, ci_stacks.load(own_checkout))
    # nothing in it names the environments: .github/stacks.yaml does
    assert "deployEnvironments" not in raw
    assert (
        Path(ROOT / "ci-identities" / "Pulumi.yaml").read_text().startswith(f"name: {NAMESPACE}\n")
    )


def test_the_config_reference_is_generated_from_the_model() -> None:
    page = (ROOT / "docs" / "reference" / "ci-identities.md").read_text()
    assert page == render_reference(), (
        "run: .venv/bin/python -m pangeo_binder.ci_identities.reference"
        " > docs/reference/ci-identities.md"
    )
    assert "`deployPolicyArns`" in page and "`repositoryId`" in page


def test_the_secrets_key_is_decrypt_only_for_preview() -> None:
    key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    gcp_key = "projects/pangeo-binder-ops/locations/global/keyRings/pulumi/cryptoKeys/state"
    base = stack_file()
    aws = {**base[f"{NAMESPACE}:aws"], "secretsKeyArn": key}
    aws.pop("stateBucket")
    run = run_ci(our_config(aws=aws, gcp={**base[f"{NAMESPACE}:gcp"], "secretsKey": gcp_key}))
    kms = {}
    for policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        if not policy.name.endswith("-state"):
            continue
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]  # no bucket: key only
        assert statement["Resource"] == key
        kms[policy.name] = set(statement["Action"])
    assert kms == {
        "aws-preview-state": {"kms:Decrypt"},
        "aws-deploy-state": {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"},
    }
    grants = {
        b.name: b.inputs["role"]
        for b in run.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
        if b.inputs["cryptoKeyId"] == gcp_key
    }
    assert grants == {
        "gcp-preview-secrets": "roles/cloudkms.cryptoKeyDecrypter",
        "gcp-deploy-secrets": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
    }


# Pushing the hub image: the deploy role may push to the stacks' own repositories only.


def allows(policy: str, action: str, resource: str) -> bool:
    """Whether an identity policy's Allow statements (no Deny, no conditions) cover the call:
    IAM's wildcard matching of `*` in actions and resource ARNs."""
    for statement in json.loads(policy)["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        actions = statement["Action"]
        resources = statement["Resource"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        ):
            return True
    return False


def repository_arn(path: str, account: str = "123456789012", region: str = "us-west-2") -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{path}"


def test_the_image_push_policy_covers_the_stacks_repositories_and_nothing_else() -> None:
    policy = image_push_policy(
        account_id="123456789012",
        repositories=[("us-west-2", "pangeo-binder-staging"), ("us-west-2", "pangeo-binder-prod")],
    )
    for stack in ("staging", "prod"):
        for action in ("ecr:PutImage", "ecr:UploadLayerPart", "ecr:CreateRepository"):
            assert allows(policy, action, repository_arn(f"pangeo-binder-{stack}/hub"))
    assert allows(policy, "ecr:GetAuthorizationToken", "*")
    refused = [
        repository_arn("other-team/hub"),
        repository_arn("pangeo-binder-dev/hub"),
        repository_arn("pangeo-binder-staging"),  # the prefix itself is no repository of ours
        repository_arn("pangeo-binder-staging/hub", account="210987654321"),
        repository_arn("pangeo-binder-staging/hub", region="eu-west-1"),
    ]
    for arn in refused:
        assert not allows(policy, "ecr:PutImage", arn), arn
    assert not allows(policy, "ecr:DeleteRepository", repository_arn("pangeo-binder-prod/hub"))
    assert not allows(policy, "ecr:SetRepositoryPolicy", repository_arn("pangeo-binder-prod/x"))


def test_the_program_gives_only_the_deploy_role_the_push_policy(ci: Run) -> None:
    policies = {p.name: p for p in ci.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert "aws-preview-images" not in policies
    deploy = policies["aws-deploy-images"]
    assert deploy.inputs["role"] == ci.one("aws:iam/role:Role", "aws-deploy").outputs["name"]
    target = repository_arn("pangeo-binder-staging/hub")
    assert allows(deploy.inputs["policy"], "ecr:PutImage", target)
    for name, policy in policies.items():
        if name != "aws-deploy-images":
            assert not allows(policy.inputs["policy"], "ecr:PutImage", target), name


def test_without_an_aws_stack_the_deploy_role_may_push_nowhere() -> None:
    (statement,) = json.loads(image_push_policy(account_id="1", repositories=[]))["Statement"]
    assert statement["Action"] == ["ecr:GetAuthorizationToken"]


# A fork's stacks: the trust subjects and the image repositories follow .github/stacks.yaml.


def fork_config(**overrides: Any) -> dict[str, Any]:
    gcp = {**stack_file()[f"{NAMESPACE}:gcp"], "targetProjects": ["my-hub-gcp"]}
    return our_config(gcp=gcp, **overrides)


def test_a_forks_deploy_identity_trusts_its_stacks_environments_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANGEO_BINDER_CHECKOUT", str(write_checkout(tmp_path, FORK)))
    run = run_ci(fork_config())
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    condition = provider.inputs["attributeCondition"]
    members = impersonators(run, "pangeo-binder-deploy")
    role = run.one("aws:iam/role:Role", "aws-deploy")
    for environment, admitted in (
        ("mygcp", True),
        ("myaws", True),
        ("staging", False),
        ("prod", False),
    ):
        token = claims(f"repo:{REPO}:environment:{environment}")
        assert trust.gcp_may_impersonate(condition, POOL, members, token) is admitted, environment
        assert trust.aws_policy_admits(role.inputs["assumeRolePolicy"], OIDC_ARN, token) is admitted
    # one binding per listed stack, named after it
    names = {b.name for b in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")}
    assert {"gcp-deploy-impersonate-mygcp", "gcp-deploy-impersonate-myaws"} <= names
    # myaws (environment prod, eu-west-1) pushes to its own prefix (named after the stack,
    # pangeo_binder.naming) in its own region only
    push = next(
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "aws-deploy-images"
    )
    policy = push.inputs["policy"]
    assert allows(
        policy, "ecr:PutImage", repository_arn("pangeo-binder-myaws/hub", region="eu-west-1")
    )
    for refused in (
        repository_arn("pangeo-binder-myaws/hub"),  # another region
        repository_arn("pangeo-binder-prod/hub", region="eu-west-1"),  # another prod stack's
        repository_arn("pangeo-binder-staging/hub", region="eu-west-1"),  # mygcp is no AWS stack
    ):
        assert not allows(policy, "ecr:PutImage", refused), refused


def test_a_forks_gcp_project_missing_from_the_targets_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANGEO_BINDER_CHECKOUT", str(write_checkout(tmp_path, FORK)))
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match="problem") as raised:
        run_ci(our_config(deployEnvironments=["mygcp", "myaws"]), monitor)
    message = str(raised.value)
    assert "gcp.targetProjects: add my-hub-gcp (clouds.gcp.project of stack mygcp)" in message
    # the key that used to list them says where they are now
    assert (
        "deployEnvironments: the deploy environments are the stacks of .github/stacks.yaml"
        in message
    )
    assert monitor.registrations == []


def test_a_broken_stacks_file_stops_the_program_before_anything_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_checkout(tmp_path, FORK)
    (root / "Pulumi.myaws.yaml").unlink()
    monkeypatch.setenv("PANGEO_BINDER_CHECKOUT", str(root))
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match=r"Pulumi\.myaws\.yaml does not exist"):
        run_ci(fork_config(), monitor)
    assert monitor.registrations == []
