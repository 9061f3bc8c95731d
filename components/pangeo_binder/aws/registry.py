"""ECR for BinderHub-built images, and the keyless identity that pushes to it.

BinderHub names every image as its own repository (`<prefix><name>:<ref>`), and ECR refuses a
push to a repository that does not exist. A repository creation template applied on
`CREATE_ON_PUSH` makes ECR create each one on first push, with the template's lifecycle policy
and encryption, so no helper has to create repositories and none is ever left without cleanup.

ECR login tokens last 12 hours, so a docker config secret written once stops working. The
builder role is assumed through IRSA by `<namespace>/<builder service account>`, the account the
BinderHub pod runs as; its registry class (pangeo_binder/hub/incluster/binder_registry.py) mints a
fresh login token for each build and lets create-on-push make the repository, so every
repository gets the template's lifecycle policy.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.identity import Oidc, irsa_role, policy_document
from pangeo_binder.config_shared import RegistrySettings
from pangeo_binder.guards import guarded
from pangeo_binder.outputs import RegistryLogin

PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    # Creating on push applies the template's lifecycle.
    "ecr:CreateRepository",
    "ecr:PutLifecyclePolicy",
]


def lifecycle_policy(settings: RegistrySettings) -> str:
    """Untagged images (superseded layers of a rebuilt tag) expire first; of the tagged
    ones each repository keeps the most recent `keepRecentVersions`. ECR cannot express
    "older than N days except the newest K", so `deleteAfterDays` does not apply here."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Expire untagged images",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": settings.delete_untagged_after_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": "Keep the most recent versions",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": settings.keep_recent_versions,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


def push_login(
    host: pulumi.Input[str], *, account_id: str, opts: pulumi.InvokeOutputOptions
) -> RegistryLogin:
    """Log in as whoever runs Pulumi (the deploy role in CI) with an ECR authorization token for
    this account's registry: nothing to create or store; it lasts 12 hours."""
    token = aws.ecr.get_authorization_token_output(registry_id=account_id, opts=opts)
    return RegistryLogin(
        address=pulumi.Output.from_input(host),
        username=token.user_name,
        password=pulumi.Output.secret(token.password),
    )


# The public Binder's images: `<prefix>/public/<slug>`, pushed by its own role only. BinderHub
# names an image `<image_prefix><slug>` with a slug that has no `/` (it escapes the
# repository's name), so the hub's images are `<prefix>/<slug>`, one level down, and can
# never fall under `<prefix>/public/`. The creation template for `<prefix>` covers these too
# (ECR applies a template to repositories whose names start with `<prefix>/`).
PUBLIC_SUBPREFIX = "public"


def builder_policy(
    *, region: str, account_id: str, prefix: str, never_under: str | None = None
) -> str:
    """Push (and create) repositories under `prefix` only, and with `never_under`, an explicit
    Deny on the repositories under `<prefix>/<never_under>/` (another builder's), which no
    Allow can outweigh. A login token is account-wide by design: `ecr:GetAuthorizationToken`
    has no resource-level permission; what a push may write is decided per repository."""
    repositories = f"arn:aws:ecr:{region}:{account_id}:repository"
    fence = (
        [
            {
                "Sid": "NotAnotherBuildersImages",
                "Effect": "Deny",
                "Action": PUSH_ACTIONS,
                "Resource": f"{repositories}/{prefix}/{never_under}/*",
            }
        ]
        if never_under
        else []
    )
    return policy_document(
        [
            {
                "Sid": "Login",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
            {
                "Sid": "PushUnderPrefix",
                "Effect": "Allow",
                "Action": PUSH_ACTIONS,
                "Resource": f"{repositories}/{prefix}/*",
            },
            *fence,
        ]
    )


class ImageRegistry(pulumi.ComponentResource):
    """The repository creation template for `<prefix>/*`, basic scan on push (opt-in) for those
    repositories, and the builder IRSA role. Nodes pull through their role's
    `AmazonEC2ContainerRegistryPullOnly` policy."""

    host: pulumi.Output[str]
    image_prefix: pulumi.Output[str]
    builder_role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        settings: RegistrySettings,
        prefix: str,
        region: str,
        account_id: str,
        role_name: str,
        oidc: Oidc,
        kubernetes_service_account: str,
        scan_on_push: bool,
        prod: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:ImageRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ecr.RepositoryCreationTemplate(
            f"{name}-template",
            prefix=prefix,
            description="Repositories BinderHub pushes to",
            applied_fors=["CREATE_ON_PUSH"],
            image_tag_mutability="MUTABLE",  # BinderHub may rebuild a ref after a failed push
            encryption_configurations=[
                aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                    encryption_type="AES256"
                )
            ],
            lifecycle_policy=lifecycle_policy(settings),
            opts=guarded(child, prod=prod, holds_data=False),
        )
        if scan_on_push:
            aws.ecr.RegistryScanningConfiguration(
                f"{name}-scanning",
                scan_type="BASIC",
                rules=[
                    aws.ecr.RegistryScanningConfigurationRuleArgs(
                        scan_frequency="SCAN_ON_PUSH",
                        repository_filters=[
                            aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                                filter=f"{prefix}/*", filter_type="WILDCARD"
                            )
                        ],
                    )
                ],
                opts=child,
            )
        role = irsa_role(
            f"{name}-builder",
            role_name=role_name,
            oidc=oidc,
            service_account=kubernetes_service_account,
            description="BinderHub image pushes",
            # Never the public Binder's images, should a stack add one.
            policy=builder_policy(
                region=region, account_id=account_id, prefix=prefix, never_under=PUBLIC_SUBPREFIX
            ),
            opts=child,
        )
        self.host = pulumi.Output.from_input(f"{account_id}.dkr.ecr.{region}.amazonaws.com")
        # From the template's own output, so a push under the prefix (the hub image's) waits
        # until ECR can create its repository.
        self.image_prefix = pulumi.Output.concat(self.host, "/", template.prefix, "/")
        self.builder_role_arn = role.arn
        self.register_outputs(
            {
                "host": self.host,
                "imagePrefix": self.image_prefix,
                "builderRoleArn": self.builder_role_arn,
            }
        )
