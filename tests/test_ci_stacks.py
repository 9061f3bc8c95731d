"""`.github/stacks.yaml` and `python -m pangeo_binder.ci_stacks`: the stacks CI deploys as data.

A fork's list in a temporary checkout (tests/ci_checkout.py), never the project's own stack
files: the selection, its order, the approval flags, every mistake at once, and the guard that
stops a deploy whose environments do not protect it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_checkout import FORK, OWN, write_checkout
from harness import ROOT
from pangeo_binder import ci_stacks


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pangeo_binder.ci_stacks", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_forks_stacks_are_selected_in_order_with_their_clouds(tmp_path: Path) -> None:
    root = write_checkout(tmp_path, FORK)
    stacks = ci_stacks.load(root)
    assert [(s.name, s.clouds, s.approval) for s in stacks] == [
        ("mygcp", ("gcp",), False),
        ("myaws", ("aws",), True),
    ]
    assert [(s.environment, s.aws_region, s.gcp_project) for s in stacks] == [
        ("staging", None, "my-hub-gcp"),
        ("prod", "eu-west-1", None),
    ]
    matrix = run(root, "matrix")
    assert matrix.returncode == 0, matrix.stderr
    assert matrix.stdout == 'stacks=["mygcp","myaws"]\n'
    names = run(root, "names")
    assert names.stdout == "mygcp\nmyaws\n"


def test_the_order_is_the_files_not_the_alphabets(tmp_path: Path) -> None:
    root = write_checkout(tmp_path, list(reversed(OWN)))
    assert run(root, "names").stdout == "prod\nstaging\n"


def test_every_mistake_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    root = write_checkout(tmp_path, FORK)
    (root / "Pulumi.empty.yaml").write_text("config:\n  pangeo-binder:environment: staging\n")
    listed = [
        {"name": "mygcp"},
        {"name": "MyGcp"},  # GitHub environment names are case-insensitive
        {"name": "nofile"},
        {"name": "empty"},
    ]
    (root / ".github" / "stacks.yaml").write_text(yaml.safe_dump({"stacks": listed}))
    with pytest.raises(ci_stacks.CiStacksError) as raised:
        ci_stacks.load(root)
    assert raised.value.problems == [
        "stacks.1.name: MyGcp is listed twice (stacks.0)",
        "stacks.2.name: Pulumi.nofile.yaml does not exist (create it with init)",
        "stacks.3.name: Pulumi.empty.yaml configures no cloud under pangeo-binder:clouds",
    ]
    done = run(root, "matrix")
    assert done.returncode == 1 and done.stdout == ""  # no half matrix reaches GitHub
    assert "3 problem(s)" in done.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"stacks": [{"name": "mygcp", "aproval": True}]}, "stacks.0.aproval: Extra inputs"),
        ({"stacks": [{"name": "my gcp"}]}, "stacks.0.name: String should match pattern"),
        ({"stacks": [{"name": "a:b"}]}, "stacks.0.name: String should match pattern"),
        ({"stacks": []}, "stacks: List should have at least 1 item"),
        ({}, "stacks: required key is missing"),
        ({"stacks": ["mygcp"]}, "stacks.0: Input should be a valid dictionary"),
    ],
)
def test_a_malformed_file_names_the_key(tmp_path: Path, content: Any, problem: str) -> None:
    root = write_checkout(tmp_path, FORK)
    (root / ".github" / "stacks.yaml").write_text(yaml.safe_dump(content))
    with pytest.raises(ci_stacks.CiStacksError) as raised:
        ci_stacks.load(root)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_a_checkout_without_the_file_is_told_where_it_goes(tmp_path: Path) -> None:
    done = run(tmp_path, "names")
    assert done.returncode == 1
    assert ".github/stacks.yaml" in done.stderr and "does not exist" in done.stderr


def environment(name: str, *rules: str, branches: bool = True) -> dict[str, Any]:
    """One entry of GitHub's "List environments" answer."""
    return {
        "name": name,
        "protection_rules": [{"id": i, "type": rule} for i, rule in enumerate(rules)],
        "deployment_branch_policy": (
            {"protected_branches": False, "custom_branch_policies": True} if branches else None
        ),
    }


def test_the_environments_must_protect_what_the_file_says(tmp_path: Path) -> None:
    stacks = ci_stacks.load(write_checkout(tmp_path, FORK))
    good = {
        "environments": [
            environment("mygcp", "branch_policy"),
            environment("MYAWS", "required_reviewers", "branch_policy"),
        ]
    }
    assert ci_stacks.environment_problems(stacks, good) == []
    unreviewed = {"environments": [environment("mygcp"), environment("myaws", "wait_timer")]}
    (problem,) = ci_stacks.environment_problems(stacks, unreviewed)
    assert problem.startswith("myaws: .github/stacks.yaml says it waits for approval")
    # GitHub creates a missing environment on first use with no protection at all
    (missing,) = ci_stacks.environment_problems(stacks, {"environments": [good["environments"][1]]})
    assert missing.startswith("mygcp: no GitHub environment of that name")
    any_branch = {"environments": [environment("mygcp", branches=False), good["environments"][1]]}
    (branch,) = ci_stacks.environment_problems(stacks, any_branch)
    assert branch.startswith("mygcp: its environment lets every branch deploy")


def test_the_environment_check_fails_the_command_with_annotations(tmp_path: Path) -> None:
    root = write_checkout(tmp_path / "checkout", FORK)
    answer = tmp_path / "environments.json"
    answer.write_text(json.dumps({"total_count": 1, "environments": [environment("mygcp")]}))
    done = run(root, "check-environments", str(answer))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "::error::myaws: no GitHub environment of that name (Settings > Environments > New "
        "environment, restricted to the main branch)"
    ]
    answer.write_text(
        json.dumps(
            {"environments": [environment("mygcp"), environment("myaws", "required_reviewers")]}
        )
    )
    done = run(root, "check-environments", str(answer))
    assert done.returncode == 0, done.stdout
    assert done.stdout == "mygcp: deploys\nmyaws: waits for approval\n"


def test_this_checkouts_file_names_stacks_that_exist() -> None:
    """Whatever this checkout lists (the project: staging, then prod with approval; a fork:
    its own), each entry has its stack file with a cloud, so CI can deploy it."""
    stacks = ci_stacks.load(ROOT)
    assert stacks and all(s.clouds for s in stacks)
