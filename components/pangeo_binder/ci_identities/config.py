"""The CI identities' config (`ci-identities/Pulumi.<stack>.yaml`), typed and validated.

Same conventions as the main stack config: camelCase keys, unknown keys rejected, every
problem reported at once with its key path, every default with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError

from pangeo_binder.ci_stacks import STACKS_FILE, Stack
from pangeo_binder.config_shared import Model

NAMESPACE = "pangeo-binder-ci-identities"

# The deploying principal's roles on GCP, as docs/howto/prerequisites.md lists them (tested).
GCP_DEPLOY_ROLES = [
    "roles/container.admin",
    "roles/compute.networkAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/resourcemanager.projectIamAdmin",
    "roles/storage.admin",
    "roles/artifactregistry.admin",
    # The program enables the Google APIs it uses (gcp/services.py): without it a CI deploy
    # that needs one more API stops there.
    "roles/serviceusage.serviceUsageAdmin",
]

ProjectId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
Role = Annotated[str, StringConstraints(pattern=r"^(roles|projects/[a-z0-9-]+/roles)/[A-Za-z.]+$")]
PoolId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{4,32}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
PolicyArn = Annotated[str, StringConstraints(pattern=r"^arn:aws:iam::(aws|\d{12}):policy/.+$")]


class GcpCiIdentities(Model):
    """Workload identity federation for GitHub Actions, and the two service accounts."""

    project: ProjectId = Field(
        description="Project that holds the pool and the two service accounts (an ops project, "
        "or the prod project)."
    )
    target_projects: list[ProjectId] = Field(
        min_length=1,
        description="Projects the stacks deploy to (clouds.gcp.project of every GCP stack "
        "in .github/stacks.yaml; a missing one is an error): the preview account may read "
        "them, the deploy account may change them.",
    )
    pool_id: PoolId = Field(
        "github-actions",
        description="Workload identity pool id. A deleted pool keeps its id for 30 days, so pick "
        "another one when re-creating it sooner.",
    )
    provider_id: PoolId = Field("github", description="The pool's OIDC provider id.")
    preview_account_id: AccountId = Field(
        "pangeo-binder-preview", description="Service account id of the read-only preview identity."
    )
    deploy_account_id: AccountId = Field(
        "pangeo-binder-deploy", description="Service account id of the deploy identity."
    )
    preview_roles: list[Role] = Field(
        default_factory=lambda: ["roles/viewer", "roles/iam.securityReviewer"],
        description="Read-only roles on every target project: viewer reads every resource, "
        "securityReviewer adds the IAM policies viewer cannot list (what `pulumi preview "
        "--refresh` reads for IAM members). Nothing that can change a resource.",
    )
    deploy_roles: list[Role] = Field(
        default_factory=lambda: list(GCP_DEPLOY_ROLES),
        description="Roles on every target project for `pulumi up`: the deploying principal's "
        "roles of docs/howto/prerequisites.md (GCP). Add the budget roles there when a stack "
        "has a budget.",
    )
    state_bucket: str | None = Field(
        None,
        description="GCS bucket of the Pulumi backend (gs://NAME without the scheme). Preview "
        "gets object read (a preview takes no lock on a bucket backend: pulumi/pulumi#8642); "
        "deploy gets object read/write (state, history, locks). Unset: grant it yourself.",
    )
    secrets_key: str | None = Field(
        None,
        description="Cloud KMS key of a gcpkms:// secrets provider "
        "(projects/P/locations/L/keyRings/R/cryptoKeys/K). Preview may decrypt, deploy may "
        "encrypt and decrypt. Unset with the passphrase provider.",
    )


class AwsCiIdentities(Model):
    """The GitHub OIDC provider of the account and the two IAM roles."""

    region: str = Field(
        "us-west-2",
        description="Region of the AWS provider. IAM is global; the provider still needs one "
        "for its STS calls: the region of the stacks.",
    )
    create_oidc_provider: bool = Field(
        True,
        description="An account has at most one provider per issuer URL: set false when "
        "token.actions.githubusercontent.com is already registered, and give its ARN.",
    )
    oidc_provider_arn: str | None = Field(
        None, description="The existing provider's ARN, with createOidcProvider false."
    )
    preview_role_name: str = Field(
        "pangeo-binder-ci-preview", description="Name of the read-only preview role."
    )
    deploy_role_name: str = Field("pangeo-binder-ci-deploy", description="Name of the deploy role.")
    deploy_policy_arns: list[PolicyArn] = Field(
        min_length=1,
        description="Managed policies of the deploy role. No default: build one from the "
        "actions in docs/howto/aws.md#prerequisites rather than granting AdministratorAccess.",
    )
    state_bucket: str | None = Field(
        None,
        description="S3 bucket of the Pulumi backend. Preview may read it, deploy read and "
        "write. Unset: grant it yourself.",
    )
    secrets_key_arn: str | None = Field(
        None,
        description="KMS key of an awskms:// secrets provider: preview may decrypt, deploy "
        "encrypt and decrypt.",
    )
    max_session_seconds: int = Field(
        3600,
        ge=3600,
        le=43200,
        description="Longest role session. One hour covers a preview; raise it if a `pulumi up` "
        "(EKS create: ~15 min) plus the smoke check can run longer.",
    )


class CiIdentitiesConfig(Model):
    """The whole ci-identities stack config."""

    repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")] = (
        Field(description="OWNER/REPO of this project on GitHub; no other repository gets in.")
    )
    repository_id: int | None = Field(
        None,
        ge=1,
        description="GitHub's numeric repository id (`gh api repos/OWNER/REPO --jq .id`). "
        "When set, GCP also checks it, so a deleted and re-created namesake gets nothing.",
    )
    gcp: GcpCiIdentities | None = Field(None, description="Identities on GCP.")
    aws: AwsCiIdentities | None = Field(None, description="Identities on AWS.")


class CiConfigError(ValueError):
    """Every problem of a ci-identities config, each with its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the {NAMESPACE} config:\n{lines}")


# The key that listed the deploy environments before .github/stacks.yaml did.
FORMER_ENVIRONMENTS_KEY = "deployEnvironments"


def load_ci_config(raw: dict[str, Any], stacks: Sequence[Stack] = ()) -> CiIdentitiesConfig:
    """Validate raw config (keys without the namespace) against the stacks CI deploys
    (`.github/stacks.yaml`); raise `CiConfigError` listing all problems."""
    problems = []
    if FORMER_ENVIRONMENTS_KEY in raw:
        raw = {k: v for k, v in raw.items() if k != FORMER_ENVIRONMENTS_KEY}
        problems.append(
            f"{FORMER_ENVIRONMENTS_KEY}: the deploy environments are the stacks of "
            f"{STACKS_FILE} now: remove this key (`pulumi config rm {FORMER_ENVIRONMENTS_KEY}`)"
        )
    try:
        config = CiIdentitiesConfig.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = "required key is missing" if error["type"] == "missing" else error["msg"]
            problems.append(f"{path}: {message}")
        raise CiConfigError(problems) from None
    if config.gcp is None and config.aws is None:
        problems.append("(top level): configure gcp, aws or both")
    aws = config.aws
    if aws is not None and aws.create_oidc_provider == (aws.oidc_provider_arn is not None):
        problems.append("aws.oidcProviderArn: give it exactly when createOidcProvider is false")
    problems += _stack_problems(config, stacks)
    if problems:
        raise CiConfigError(problems)
    return config


def _stack_problems(config: CiIdentitiesConfig, stacks: Sequence[Stack]) -> list[str]:
    """A listed stack in a GCP project the deploy account may not change, or an AWS stack
    whose image repositories cannot be named, would fail at its first deploy: say so now.
    (A cloud left out is fine: its identities may come from another ci-identities stack.)"""
    problems = []
    for stack in stacks:
        granted = config.gcp.target_projects if config.gcp is not None else None
        if granted is not None and stack.gcp_project and stack.gcp_project not in granted:
            problems.append(
                f"gcp.targetProjects: add {stack.gcp_project} "
                f"(clouds.gcp.project of stack {stack.name})"
            )
        if "aws" in stack.clouds and stack.environment is None:
            problems.append(
                f"{STACKS_FILE}: Pulumi.{stack.name}.yaml sets no pangeo-binder:environment, which "
                "names the image repositories the deploy role may push to"
            )
    return problems
