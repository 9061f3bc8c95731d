"""Evaluate a checkout (this one or another git ref) and build the plan's JSON document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pangeo_binder.config_shared import secret_command
from pangeo_binder.plan import runtime
from pangeo_binder.plan.cost import Prices, estimate
from pangeo_binder.plan.diff import delta
from pangeo_binder.plan.tree import by_cloud
from pangeo_binder.policy.check import context_as_dict, violations
from pangeo_binder.policy.context import context_from_stack_file
from pangeo_binder.policy.rules import Context


class PlanError(RuntimeError):
    """The program (or git) failed; the message says where."""


def evaluate(
    root: Path, stack: str, stack_file: Path | None = None, stacks: Path | None = None
) -> dict[str, Any]:
    """Run `root`'s `__main__.py` under its own test mocks in a fresh interpreter, with the
    config of `Pulumi.<stack>.yaml` in `stacks` (default: `root`) and `stack_file` over it.

    A subprocess, so another ref's package never mixes with ours and Pulumi's process-wide
    mock state starts clean. `root`'s own source root goes first on its import path, before
    whatever PYTHONPATH already holds (an adopter's installed package, say)."""
    command = [sys.executable, str(Path(runtime.__file__)), "--root", str(root), "--stack", stack]
    if stack_file:
        command += ["--stack-file", str(stack_file)]
    if stacks:
        command += ["--stacks", str(stacks)]
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    paths = [*map(str, runtime.source_paths(root)), *inherited]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode == runtime.RUN_ERROR_EXIT:  # the program's own message: config problems
        raise PlanError(
            f"{(stack_file or Path(f'Pulumi.{stack}.yaml')).name}: {result.stderr.strip()}"
        )
    if result.returncode != 0:
        raise PlanError(f"evaluating {stack} in {root} failed:\n{result.stderr.strip()[-4000:]}")
    return json.loads(result.stdout)


def plan(
    evaluation: dict[str, Any], prices: Prices, ref: str = "", context: Context | None = None
) -> dict[str, Any]:
    """The plan document: per cloud its resources (inputs redacted, options), Helm releases
    and cost, and the policy violations over them (`context`: the stack's declarations).

    `_inputs` (redacted inputs by cloud, type and name) is for `diff` and is dropped
    before output."""
    scrub = frozenset(evaluation.get("ciphertexts", []) + evaluation.get("secretValues", []))
    trees = by_cloud(evaluation["records"], scrub)
    clouds: dict[str, Any] = {}
    inputs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cloud in sorted(trees):
        tree = trees[cloud]
        clouds[cloud] = {
            "resources": tree.resources(),
            "releases": [
                {"name": r.name, "chart": r.chart, "version": r.version, "values": r.values}
                for r in tree.releases()
            ],
            "cost": estimate(cloud, tree, prices),
        }
        for record in tree.records:
            inputs[(cloud, record["type"], record["name"])] = record["inputs"]
    context = context or Context()
    return {
        "stack": evaluation["stack"],
        "ref": ref,
        "clouds": clouds,
        "policies": {
            "context": context_as_dict(context),
            "violations": violations(clouds, context),
        },
        "_inputs": inputs,
        "_scrub": sorted(scrub),
    }


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlanError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def stack_at_ref(root: Path, ref: str, stack: str, stacks: Path | None = None) -> bool:
    """Whether `ref` has the stack file (a stack new in this checkout has none there); with
    `stacks`, a folder inside `root`, the file is looked for in that folder at `ref`."""
    commit = git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    prefix = git(root, "rev-parse", "--show-prefix")  # `root` inside the repository
    folder = f"{stacks.resolve().relative_to(root.resolve()).as_posix()}/" if stacks else ""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{prefix}{folder}Pulumi.{stack}.yaml"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def empty_plan(ref: str) -> dict[str, Any]:
    """The plan of a stack that does not exist at `ref`: nothing, so everything is added."""
    return {"stack": "", "ref": ref, "clouds": {}, "_inputs": {}, "_scrub": []}


def evaluate_ref(root: Path, ref: str, stack: str, stacks: Path | None = None) -> dict[str, Any]:
    """Evaluate `ref` from a temporary `git worktree`, removed afterwards; `stacks`, a folder
    inside `root`, is read at `ref` (the ref's own copy of that folder)."""
    commit = git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    prefix = git(root, "rev-parse", "--show-prefix")
    workdir = Path(tempfile.mkdtemp(prefix="pangeo-plan-"))
    tree = workdir / "tree"
    try:
        git(root, "worktree", "add", "--detach", str(tree), commit)
        there = tree / prefix
        try:
            return evaluate(
                there,
                stack,
                stacks=there / stacks.resolve().relative_to(root.resolve()) if stacks else None,
            )
        except PlanError as error:
            raise PlanError(f"at {ref}: {error}") from None
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=root,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, check=False)


def public(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its internal keys."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


def full_plan(
    root: Path,
    stack: str,
    compare: str | None = None,
    prices: Prices | None = None,
    stacks: Path | None = None,
) -> dict[str, Any]:
    """This checkout's plan for `stack`, with the delta against `compare` when given; the
    stack file is in `stacks` (a folder inside `root`; default: `root`).

    Both sides are priced with this checkout's price file, so the delta shows what the
    resources change, not what a price update changes."""
    prices = prices or Prices.load()
    if stacks is not None and not stacks.resolve().is_relative_to(root.resolve()):
        raise PlanError(f"--stacks {stacks} is not inside the project {root}")
    stacks = stacks.resolve() if stacks is not None else None
    stack_file = (stacks or root) / f"Pulumi.{stack}.yaml"
    context = context_from_stack_file(stack_file) if stack_file.is_file() else None
    current = plan(evaluate(root, stack, stacks=stacks), prices, ref="HEAD", context=context)
    current["warnings"] = secret_warnings(stack_file, stack)
    if compare and not stack_at_ref(root, compare, stack, stacks):
        # New in this checkout: said so, every resource added (their values are the detail).
        current["delta"] = {**delta(current, empty_plan(compare)), "valuesChanged": []}
        current["delta"]["newStack"] = True
    elif compare:
        base = plan(evaluate_ref(root, compare, stack, stacks), prices, ref=compare)
        current["delta"] = {**delta(current, base), "newStack": False}
        current["_scrub"] = sorted(set(current["_scrub"]) | set(base["_scrub"]))
    return current


def secret_warnings(stack_file: Path, stack: str) -> list[str]:
    """The client secrets the stack file lacks. The plan fills them with placeholders (it
    never decrypts a secret, and the project's own stack files hold none), so it goes on;
    `pulumi preview` and `up` stop on the same gap (the config's `secrets` rule), naming the
    same command."""
    if not stack_file.is_file():
        return []
    config, _, _ = runtime.stack_file_config(stack_file)
    clouds = config.get("clouds")
    secrets = config.get("secrets") if isinstance(config.get("secrets"), dict) else {}
    found = []
    for cloud in sorted(clouds) if isinstance(clouds, dict) else []:
        cloud_secrets = secrets.get(cloud)
        if cloud in ("gcp", "aws") and not (
            isinstance(cloud_secrets, dict) and cloud_secrets.get("githubClientSecret")
        ):
            found.append(
                f"{stack_file.name} has no secrets.{cloud}.githubClientSecret: the plan uses a "
                f"placeholder, pulumi preview and up stop until it is set: "
                f"{secret_command(cloud, stack)}"
            )
    return found
