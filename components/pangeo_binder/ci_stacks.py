"""The stacks CI previews, plans and deploys, as data: `.github/stacks.yaml`.

One file lists the stacks in deploy order and says which wait for a reviewer's approval. The
workflows read it through this module (a job matrix from a JSON step output), and ci-identities
reads it for the deploy identity's trust subjects (`environment:<stack>`), so a fork that lists
its own stacks gets CI for them without editing any workflow. Pure: it reads the stacks file
and each `Pulumi.<stack>.yaml` beside it, nothing else.

    python -m pangeo_binder.ci_stacks matrix >> "$GITHUB_OUTPUT"   # stacks=["staging","prod"]
    python -m pangeo_binder.ci_stacks names                          # one a line, in order
    python -m pangeo_binder.ci_stacks check-environments envs.json   # the approval guard

`check-environments` reads the answer of GitHub's "List environments" endpoint
(`GET /repos/OWNER/REPO/environments`, docs.github.com REST "Deployment environments", read
2026-12-07: `environments[].protection_rules[].type` is `required_reviewers`, `wait_timer` or
`branch_policy`; `deployment_branch_policy` is null when every branch may deploy). GitHub
creates an environment on first use with no protection at all, so a stack marked `approval`
whose environment was never given reviewers would deploy unreviewed: the deploy workflow stops
before the first stack instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, StringConstraints, ValidationError

from pangeo_binder.clouds import NAMESPACE, cloud_setting, configured_clouds, stack_config
from pangeo_binder.config_shared import Model

# Beside the workflows that read it: CI's data, reviewed with CI's changes (docs/howto/ci.md).
STACKS_FILE = Path(".github") / "stacks.yaml"

# A Pulumi stack name that is also a GitHub environment name and fits the OIDC subject
# `repo:OWNER/REPO:environment:NAME` (pangeo_binder.ci_identities.trust.environment_subject).
StackName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class CiStack(Model):
    """One stack CI deploys, in the GitHub environment of the same name."""

    name: StackName = Field(
        description="The Pulumi stack (`Pulumi.<name>.yaml` at the repository root) and the "
        "GitHub environment its deploy job runs in (the deploy identity trusts "
        "`environment:<name>`)."
    )
    approval: bool = Field(
        False,
        description="Its deploy waits for a reviewer: its environment must have required "
        "reviewers, and the deploy workflow stops before the first stack when it has none.",
    )


class CiStacksFile(Model):
    """`.github/stacks.yaml`: the stacks in deploy order."""

    stacks: list[CiStack] = Field(
        min_length=1,
        description="Deployed one at a time in this order; a failure stops the later ones.",
    )


@dataclass(frozen=True)
class Stack:
    """A listed stack with the facts CI needs from its stack file."""

    name: str
    approval: bool
    clouds: tuple[str, ...]
    # `pangeo-binder:environment` (staging | prod): with the stack's name, the deployment's
    # resource names follow it (pangeo_binder.naming).
    environment: str | None
    aws_region: str | None
    gcp_project: str | None
    # `pangeo-binder:resourceNames`: only `stack` names the resources after the stack.
    resource_names: str | None = None


class CiStacksError(ValueError):
    """Every problem of the stacks file, each with its key path."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in {path}:\n{lines}")


def load(root: Path) -> list[Stack]:
    """The stacks of `root/.github/stacks.yaml`, each checked against its stack file; raises
    `CiStacksError` naming every problem at once."""
    path = root / STACKS_FILE
    if not path.exists():
        raise CiStacksError(path, ["the file does not exist: list the stacks CI deploys there"])
    try:
        parsed = CiStacksFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = "required key is missing" if error["type"] == "missing" else error["msg"]
            problems.append(f"{where}: {message}")
        raise CiStacksError(path, problems) from None
    problems = []
    stacks = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(parsed.stacks):
        where = f"stacks.{index}.name"
        # GitHub environment names are case-insensitive: two such stacks share one.
        if entry.name.lower() in seen:
            problems.append(
                f"{where}: {entry.name} is listed twice (stacks.{seen[entry.name.lower()]})"
            )
            continue
        seen[entry.name.lower()] = index
        stack_file = root / f"Pulumi.{entry.name}.yaml"
        clouds = configured_clouds(stack_file)
        if clouds is None:
            problems.append(f"{where}: {stack_file.name} does not exist (create it with init)")
            continue
        if not clouds:
            problems.append(
                f"{where}: {stack_file.name} configures no cloud under {NAMESPACE}:clouds"
            )
            continue
        config = stack_config(stack_file)
        stacks.append(
            Stack(
                name=entry.name,
                approval=entry.approval,
                clouds=tuple(clouds),
                environment=config.get(f"{NAMESPACE}:environment"),
                aws_region=cloud_setting(config, "aws", "region"),
                gcp_project=cloud_setting(config, "gcp", "project"),
                resource_names=config.get(f"{NAMESPACE}:resourceNames"),
            )
        )
    if problems:
        raise CiStacksError(path, problems)
    return stacks


def matrix_output(stacks: Sequence[Stack]) -> str:
    """`stacks=[...]`, the `$GITHUB_OUTPUT` line a job's `strategy.matrix.stack` reads with
    `fromJSON`. A list keeps the file's order: GitHub creates matrix jobs in the order of the
    values, and with `max-parallel: 1` runs them one after the other in that order."""
    return f"stacks={json.dumps([s.name for s in stacks], separators=(',', ':'))}\n"


def environment_problems(stacks: Sequence[Stack], answer: Mapping[str, Any]) -> list[str]:
    """What keeps the listed stacks' GitHub environments from protecting their deploys, from
    the "List environments" answer: a missing environment, one any branch may deploy from
    (a pull request's workflow could then name it and get the deploy identity), and a stack
    marked `approval` whose environment has no required reviewers."""
    environments = {e["name"].lower(): e for e in answer.get("environments") or []}
    problems = []
    for stack in stacks:
        environment = environments.get(stack.name.lower())
        if environment is None:
            problems.append(
                f"{stack.name}: no GitHub environment of that name (Settings > Environments > "
                "New environment, restricted to the main branch)"
            )
            continue
        if environment.get("deployment_branch_policy") is None:
            problems.append(
                f"{stack.name}: its environment lets every branch deploy: restrict it to main "
                "(Settings > Environments > Deployment branches)"
            )
        rules = {rule.get("type") for rule in environment.get("protection_rules") or []}
        if stack.approval and "required_reviewers" not in rules:
            problems.append(
                f"{stack.name}: {STACKS_FILE} says it waits for approval, but its environment "
                "has no required reviewers (Settings > Environments > Required reviewers)"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("matrix", "names", "check-environments"))
    parser.add_argument("answer", nargs="?", type=Path, help="check-environments: the API answer")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="the repository root")
    args = parser.parse_args(argv)
    try:
        stacks = load(args.dir)
    except CiStacksError as error:
        print(error, file=sys.stderr)
        return 1
    if args.command == "matrix":
        sys.stdout.write(matrix_output(stacks))
    elif args.command == "names":
        sys.stdout.write("".join(f"{s.name}\n" for s in stacks))
    else:
        if args.answer is None:
            parser.error("check-environments needs the file of GitHub's answer")
        problems = environment_problems(stacks, json.loads(args.answer.read_text()))
        for problem in problems:
            print(f"::error::{problem}")  # a workflow command: GitHub reads it from stdout
        if problems:
            return 1
        for stack in stacks:
            print(f"{stack.name}: {'waits for approval' if stack.approval else 'deploys'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
