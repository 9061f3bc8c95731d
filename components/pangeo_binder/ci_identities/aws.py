"""AWS: the account's GitHub OIDC provider and the preview and deploy roles GitHub Actions
assume with its token (no access key is ever created)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.registry import PUSH_ACTIONS
from pangeo_binder.ci_identities import trust
from pangeo_binder.ci_identities.config import AwsCiIdentities

READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# What `pulumi up` needs to push the hub image and its build cache (pangeo_binder/hub/hub_image.py):
# the builder's push actions, creating the repository on first push through the stack's template.
IMAGE_PUSH_ACTIONS = PUSH_ACTIONS


def image_push_policy(*, account_id: str, repositories: Sequence[tuple[str, str]]) -> str:
    """Push to the stacks' own repositories only: for each AWS stack CI deploys, its region and
    the prefix of its ECR creation template (`pangeo-binder-<environment>`,
    `config.build_repository`), as `<prefix>/*` there. A login token has no resource-level
    permission, so `ecr:GetAuthorizationToken` is account-wide; it grants nothing a repository
    policy or this document does not."""
    # In the stacks' order, without repeats: the project's own document stays as it was.
    arns = list(
        dict.fromkeys(
            f"arn:aws:ecr:{region}:{account_id}:repository/{prefix}/*"
            for region, prefix in repositories
        )
    )
    statements = [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}]
    if arns:  # IAM refuses a statement without resources: no AWS stack, no push
        statements.append({"Effect": "Allow", "Action": IMAGE_PUSH_ACTIONS, "Resource": arns})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def state_policy(bucket: str | None, *, write: bool, key_arn: str | None) -> str:
    """Access to the Pulumi state bucket and the secrets key: read and decrypt for preview,
    which takes no lock on a bucket backend (pulumi/pulumi#8642); read, write, encrypt for
    deploy."""
    statements = []
    if bucket:
        objects = ["s3:GetObject"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
        statements += [
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {"Effect": "Allow", "Action": objects, "Resource": f"arn:aws:s3:::{bucket}/*"},
        ]
    if key_arn:
        key_actions = ["kms:Decrypt"] + (["kms:Encrypt", "kms:GenerateDataKey"] if write else [])
        statements.append({"Effect": "Allow", "Action": key_actions, "Resource": key_arn})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class AwsCiIdentitiesStack(pulumi.ComponentResource):
    """The OIDC provider (or an existing one), the preview and deploy roles, their policies.

    Outputs: `preview_role_arn`, `deploy_role_arn`, `oidc_provider_arn`.
    """

    def __init__(
        self,
        name: str,
        config: AwsCiIdentities,
        *,
        repository: str,
        deploy_environments: list[str],
        image_repositories: Sequence[tuple[str, str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:ci:AwsIdentities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if config.create_oidc_provider:
            provider_arn: pulumi.Input[str] = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=trust.GITHUB_ISSUER,
                client_id_lists=[trust.AWS_AUDIENCE],
                # No thumbprints: IAM verifies GitHub's issuer against its own trusted CAs.
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            ).arn
        else:
            provider_arn = str(config.oidc_provider_arn)

        subjects = {
            "preview": [trust.pull_request_subject(repository)],
            "deploy": [trust.environment_subject(repository, e) for e in deploy_environments],
        }
        role_names = {"preview": config.preview_role_name, "deploy": config.deploy_role_name}
        policies = {"preview": [READ_ONLY], "deploy": config.deploy_policy_arns}
        arns = {}
        for kind in ("preview", "deploy"):
            role = aws.iam.Role(
                f"{name}-{kind}",
                name=role_names[kind],
                description=f"GitHub Actions {kind} for {repository}",
                assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                    lambda arn, s=subjects[kind]: json.dumps(trust.aws_trust_policy(arn, s))
                ),
                max_session_duration=config.max_session_seconds,
                opts=child,
            )
            arns[kind] = role.arn
            for policy_arn in policies[kind]:
                aws.iam.RolePolicyAttachment(
                    f"{name}-{kind}-{policy_arn.rsplit('/', 1)[-1]}",
                    role=role.name,
                    policy_arn=policy_arn,
                    opts=child,
                )
            if kind == "deploy":
                account_id = aws.get_caller_identity_output(
                    opts=pulumi.InvokeOutputOptions(parent=self)
                ).account_id
                aws.iam.RolePolicy(
                    f"{name}-deploy-images",
                    role=role.name,
                    policy=account_id.apply(
                        lambda account: image_push_policy(
                            account_id=account, repositories=image_repositories
                        )
                    ),
                    opts=child,
                )
            if config.state_bucket or config.secrets_key_arn:
                aws.iam.RolePolicy(
                    f"{name}-{kind}-state",
                    role=role.name,
                    policy=state_policy(
                        config.state_bucket, write=kind == "deploy", key_arn=config.secrets_key_arn
                    ),
                    opts=child,
                )

        self.oidc_provider_arn = pulumi.Output.from_input(provider_arn)
        self.preview_role_arn = arns["preview"]
        self.deploy_role_arn = arns["deploy"]
        self.register_outputs(
            {
                "oidcProviderArn": self.oidc_provider_arn,
                "previewRoleArn": arns["preview"],
                "deployRoleArn": arns["deploy"],
            }
        )
