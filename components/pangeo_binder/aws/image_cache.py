"""ECR pull-through cache rules: in-region caches of public registries.

A node pulls `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<path>:<tag>`; on the first
pull ECR creates the repository `<prefix>/<path>` (from the repository creation template
applied for PULL_THROUGH_CACHE, so every cached repository gets its lifecycle policy) and
imports the image from upstream.

What we relied on (ECR user guide, "IAM permissions required to sync an upstream registry",
read 2026-12): beyond pulling, the identity whose pull triggers the cache needs
`ecr:BatchImportUpstreamImage` and, when the repository does not exist yet,
`ecr:CreateRepository`. The nodes pull, and AmazonEC2ContainerRegistryPullOnly grants
neither, so the node role gets exactly those two, on `<prefix>/*` of each cache only. ECR
caches Docker Hub and ghcr.io only with credentials, kept in a Secrets Manager secret whose
name starts with `ecr-pullthroughcache/` and whose JSON holds `username` and `accessToken`.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.config import AwsImageCache
from pangeo_binder.aws.identity import policy_document
from pangeo_binder.config_shared import CACHE_UPSTREAMS

# The registry each cache rule fetches from (ECR's `upstreamRegistryUrl`).
UPSTREAM_URLS = {
    "dockerHub": "registry-1.docker.io",
    "quay": "quay.io",
    "ghcr": "ghcr.io",
    "ecrPublic": "public.ecr.aws",
    "k8s": "registry.k8s.io",
}
SECRET_PREFIX = "ecr-pullthroughcache/"
FIRST_PULL_ACTIONS = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
UNTAGGED_DAYS = 1


def cache_lifecycle(delete_after_days: int) -> str:
    """Untagged images (superseded digests of a moving tag) expire after a day; any other
    cached image `delete_after_days` after it was imported (the next pull imports it again)."""
    rules = [
        ("untagged", UNTAGGED_DAYS, "Expire superseded digests"),
        ("any", delete_after_days, "Expire cached images; a later pull imports them again"),
    ]
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": priority,
                    "description": description,
                    "selection": {
                        "tagStatus": status,
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": days,
                    },
                    "action": {"type": "expire"},
                }
                for priority, (status, days, description) in enumerate(rules, start=1)
            ]
        },
        sort_keys=True,
    )


def first_pull_policy(*, region: str, account_id: str, prefixes: list[str]) -> str:
    """What a node's first pull through a cache needs beyond AmazonEC2ContainerRegistryPullOnly,
    on the cache prefixes only."""
    return policy_document(
        [
            {
                "Sid": "PullThroughCache",
                "Effect": "Allow",
                "Action": FIRST_PULL_ACTIONS,
                "Resource": [
                    f"arn:aws:ecr:{region}:{account_id}:repository/{prefix}/*"
                    for prefix in prefixes
                ],
            }
        ]
    )


def upstream_login(username: str, token: str) -> str:
    """The secret's value in the shape ECR reads."""
    return json.dumps({"username": username, "accessToken": token})


class ImageCache(pulumi.ComponentResource):
    """One pull-through cache rule and creation template per cached upstream, and the node
    role's first-pull permissions. `mapping` is `CloudOutputs.image_cache`."""

    mapping: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        settings: AwsImageCache,
        *,
        qualifier: str,
        region: str,
        account_id: str,
        node_role_name: pulumi.Input[str],
        tokens: dict[str, pulumi.Input[str]],
        prod: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:ImageCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host = f"{account_id}.dkr.ecr.{region}.amazonaws.com"
        logins = {"dockerHub": settings.docker_hub_username, "ghcr": settings.ghcr_username}
        prefixes: dict[str, pulumi.Output[str]] = {}
        names = []
        for key in settings.cached():
            prefix = settings.name(key, qualifier)
            names.append(prefix)
            credential = None
            username = logins.get(key)
            if username is not None and key in tokens:
                secret = aws.secretsmanager.Secret(
                    f"{name}-{key}-login",
                    name=f"{SECRET_PREFIX}{prefix}",
                    description=f"Login of the {CACHE_UPSTREAMS[key]} pull-through cache",
                    # Staging can be destroyed and rebuilt under the same name at once.
                    recovery_window_in_days=30 if prod else 0,
                    opts=child,
                )
                aws.secretsmanager.SecretVersion(
                    f"{name}-{key}-login-version",
                    secret_id=secret.id,
                    secret_string=pulumi.Output.secret(
                        pulumi.Output.from_input(tokens[key]).apply(
                            lambda token, user=username: upstream_login(user, token)
                        )
                    ),
                    opts=child,
                )
                credential = secret.arn
            aws.ecr.RepositoryCreationTemplate(
                f"{name}-{key}-template",
                prefix=prefix,
                description=f"Repositories of the {CACHE_UPSTREAMS[key]} pull-through cache",
                applied_fors=["PULL_THROUGH_CACHE"],
                image_tag_mutability="MUTABLE",  # upstream tags move; the cache follows them
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                        encryption_type="AES256"
                    )
                ],
                lifecycle_policy=cache_lifecycle(settings.delete_after_days),
                opts=child,
            )
            rule = aws.ecr.PullThroughCacheRule(
                f"{name}-{key}",
                ecr_repository_prefix=prefix,
                upstream_registry_url=UPSTREAM_URLS[key],
                credential_arn=credential,
                opts=child,
            )
            prefixes[CACHE_UPSTREAMS[key]] = pulumi.Output.concat(
                host, "/", rule.ecr_repository_prefix
            )
        if names:
            aws.iam.RolePolicy(
                f"{name}-nodes-first-pull",
                role=node_role_name,
                policy=first_pull_policy(region=region, account_id=account_id, prefixes=names),
                opts=child,
            )
        self.mapping = pulumi.Output.all(**prefixes) if prefixes else pulumi.Output.from_input({})
        self.register_outputs({"mapping": self.mapping})
