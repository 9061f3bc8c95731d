"""A checkout's CI stacks written into a temporary directory: `.github/stacks.yaml` and a small
`Pulumi.<stack>.yaml` per stack, holding only what CI reads (environment, clouds, the GCP
project and the AWS region). The CI tests use it instead of the project's own stack files, so
they pass in a fork that replaced them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class CiStackSpec:
    name: str
    environment: str = "staging"
    gcp_project: str | None = None
    aws_region: str | None = None
    approval: bool = False
    # `pangeo-binder:resourceNames`; init writes `stack` for a stack not named after its
    # environment, so the fork's stacks carry it.
    resource_names: str | None = None


# The project's own shape: GCP and AWS in both stacks, prod waiting for approval.
OWN = [
    CiStackSpec("staging", "staging", "pangeo-binder-staging", "us-west-2"),
    CiStackSpec("prod", "prod", "pangeo-binder-prod", "us-west-2", approval=True),
]
# A fork's: one GCP stack, then one AWS stack in another region that waits for approval.
FORK = [
    CiStackSpec("mygcp", "staging", gcp_project="my-hub-gcp", resource_names="stack"),
    CiStackSpec("myaws", "prod", aws_region="eu-west-1", approval=True, resource_names="stack"),
]


def write_checkout(root: Path, stacks: list[CiStackSpec]) -> Path:
    (root / ".github").mkdir(parents=True, exist_ok=True)
    entries = [{"name": s.name, **({"approval": True} if s.approval else {})} for s in stacks]
    (root / ".github" / "stacks.yaml").write_text(yaml.safe_dump({"stacks": entries}))
    for stack in stacks:
        clouds: dict[str, dict[str, str]] = {}
        if stack.gcp_project:
            clouds["gcp"] = {"project": stack.gcp_project, "region": "us-central1"}
        if stack.aws_region:
            clouds["aws"] = {"region": stack.aws_region}
        config = {
            "pangeo-binder:environment": stack.environment,
            "pangeo-binder:clouds": clouds,
        }
        if stack.resource_names:
            config["pangeo-binder:resourceNames"] = stack.resource_names
        (root / f"Pulumi.{stack.name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root
