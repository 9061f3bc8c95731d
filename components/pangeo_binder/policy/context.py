"""What the stack file declares that the rules need: the environment and the public buckets.

Read from `Pulumi.<stack>.yaml` itself (not from resources), so a change cannot make a bucket
public by renaming it: the declaration is `clouds.<cloud>.storage.publicBucket` in the stack
file, which a reviewer sees.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder import naming
from pangeo_binder.policy.rules import Context

NAMESPACE = "pangeo-binder"


def gcp_bucket_prefix(project: str, qualifier: str) -> str:
    """GCS bucket names are global; the project id is too. The qualifier (the environment, or
    the stack: `pangeo_binder.naming.qualifier`) is added unless the project already names it
    (pangeo-binder-staging), so staging and prod can share one."""
    return project if project.endswith(f"-{qualifier}") else f"{project}-{qualifier}"


def aws_bucket_prefix(qualifier: str, account_id: str) -> str:
    """S3 bucket names are global: the deployment and the account id."""
    return f"{naming.PREFIX}{qualifier}-{account_id}"


def context_from_config(config: dict[str, Any], stack: str | None = None) -> Context:
    """The context of a stack's `pangeo-binder:*` keys (namespace dropped)."""
    environment = str(config.get("environment") or "prod")
    qualifier = naming.qualifier(
        environment, naming.names_stack(config.get("resourceNames"), stack)
    )
    clouds = config.get("clouds") or {}
    public: list[str] = []
    gcp = clouds.get("gcp") or {}
    if (gcp.get("storage") or {}).get("publicBucket"):
        prefix = gcp_bucket_prefix(str(gcp.get("project", "")), qualifier)
        public.append(re.escape(f"{prefix}-public"))
    aws = clouds.get("aws") or {}
    if (aws.get("storage") or {}).get("publicBucket"):
        public.append(
            re.escape(aws_bucket_prefix(qualifier, "ACCOUNT")).replace("ACCOUNT", r"\d{12}")
            + "-public"
        )
    return Context(environment=environment, public_buckets=tuple(public))


def context_from_stack_file(path: Path) -> Context:
    """The context of `Pulumi.<stack>.yaml` (the stack's name is part of its bucket names
    when it is not the environment's)."""
    data = yaml.safe_load(path.read_text()) or {}
    config = {
        key.partition(":")[2]: value
        for key, value in (data.get("config") or {}).items()
        if key.partition(":")[0] == NAMESPACE
    }
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return context_from_config(config, stack)
