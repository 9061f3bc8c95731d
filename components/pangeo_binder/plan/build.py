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


def evaluate_ref(root: Path, ref: str, stack: str, stacks: Path | None = None) -> dict[str, Any]:
    """Evaluate `ref` from a temporary `git worktree`, removed afterwards; `stacks`, a folder
    inside `root`, is read at `ref` (the ref's own copy of that folder)."""
    commit = git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    workdir = Path(tempfile.mkdtemp(prefix="pangeo-plan-"))
    tree = workdir / "tree"
    try:
        git(root, "worktree", "add", "--detach", str(tree), commit)
        return evaluate(
            tree,
            stack,
            stacks=tree / stacks.resolve().relative_to(root.resolve()) if stacks else None,
        )
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
    if compare:
        base = plan(evaluate_ref(root, compare, stack, stacks), prices, ref=compare)
        current["delta"] = delta(current, base)
        current["_scrub"] = sorted(set(current["_scrub"]) | set(base["_scrub"]))
    return current
