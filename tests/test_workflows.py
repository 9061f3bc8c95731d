"""The GitHub workflows: the linters pass, and the security properties hold.

Linters: GitHub's workflow schema (check-jsonschema) and zizmor, offline, with zero findings
besides those `.github/zizmor.yml` ignores with a reason. Then the properties the linters do
not know about: which job may assume which cloud identity, that fork PRs get no credential,
that the comment workflow never runs the PR's code, and that deploys are ordered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_checkout import FORK, write_checkout

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
CLOUD_AUTH = ("google-github-actions/auth", "aws-actions/configure-aws-credentials")


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


FILES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
ALL = {name: load(name) for name in FILES}


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(file, name, job) for file, wf in ALL.items() for name, job in wf["jobs"].items()]


def test_the_expected_workflows_exist() -> None:
    assert FILES == ["deploy.yml", "plan-comment.yml", "preview.yml", "pull-request.yml"]


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is a test dependency: `make venv` installs it"
    return str(path)


def test_workflows_match_githubs_schema() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *FILES],
        cwd=WORKFLOWS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor(path: Path, *extra: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", "--no-progress", *extra, str(path)],
        capture_output=True,
        text=True,
    )
    # zizmor exits 0 when clean, 1x when it has findings; anything else is a crash.
    assert result.returncode == 0 or result.returncode >= 10, result.stderr
    return json.loads(result.stdout or "[]")


def test_zizmor_has_no_findings() -> None:
    findings = zizmor(WORKFLOWS, "--config", str(ZIZMOR_CONFIG))
    assert [(f["ident"], f["desc"]) for f in findings] == []


def test_every_zizmor_ignore_names_an_existing_workflow() -> None:
    rules = yaml.safe_load(ZIZMOR_CONFIG.read_text())["rules"]
    assert set(rules) == {"dangerous-triggers"}
    for rule in rules.values():
        for entry in rule["ignore"]:
            assert entry.split(":")[0] in FILES, entry


def test_zizmor_does_catch_the_mistakes_it_guards_against(tmp_path: Path) -> None:
    """The linter runs for real: an unpinned action, a credential-keeping checkout and
    pull_request_target are each reported."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(
        "name: bad\non: pull_request_target\npermissions: {}\njobs:\n  a:\n"
        "    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
        "        with: {ref: '${{ github.event.pull_request.head.sha }}'}\n"
    )
    found = {f["ident"] for f in zizmor(tmp_path / ".github" / "workflows", "--no-config")}
    assert {"unpinned-uses", "artipacked", "dangerous-triggers"} <= found


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for file in FILES:
        for line in (WORKFLOWS / file).read_text().splitlines():
            match = re.match(r"\s*-?\s*uses:\s*(\S+)(.*)$", line)
            if not match:
                continue
            ref, comment = match.groups()
            assert SHA_PIN.match(ref), f"{file}: {ref} is not pinned to a commit"
            assert re.match(r"\s+#\s+v\d+(\.\d+)*\s*$", comment), f"{file}: {ref} lacks # vX.Y.Z"
            pins.setdefault(ref.split("@")[0], set()).add(ref.split("@")[1])
    assert all(len(shas) == 1 for shas in pins.values()), pins
    assert {
        "actions/checkout",
        "actions/setup-python",
        "pulumi/actions",
        "google-github-actions/auth",
        "aws-actions/configure-aws-credentials",
        "actions/upload-artifact",
        "actions/download-artifact",
        "actions/github-script",
    } <= set(pins)


def test_no_pull_request_target_anywhere() -> None:
    for file, workflow in ALL.items():
        triggers = workflow["on"] if isinstance(workflow["on"], dict) else {workflow["on"]: None}
        assert "pull_request_target" not in triggers, file
        assert "pull_request_target" not in (WORKFLOWS / file).read_text(), file


def test_permissions_are_empty_at_the_top_and_declared_per_job() -> None:
    for file, workflow in ALL.items():
        assert workflow["permissions"] == {}, file
    for file, name, job in jobs():
        assert isinstance(job.get("permissions"), dict), f"{file} {name}"
        assert all(level in ("read", "write") for level in job["permissions"].values())


def test_checkouts_keep_no_credentials() -> None:
    checkouts = [(f, n, s) for f, n, j in jobs() for s in steps_using(j, "actions/checkout")]
    assert checkouts
    for file, name, step in checkouts:
        assert step["with"]["persist-credentials"] is False, f"{file} {name}"


def identity_of(job: dict[str, Any]) -> set[str]:
    """The identities a job's auth steps ask for: the variable names, e.g. GCP_DEPLOY_..."""
    names = set()
    for action in CLOUD_AUTH:
        for step in steps_using(job, action):
            value = step["with"].get("service_account") or step["with"].get("role-to-assume")
            names |= set(re.findall(r"vars\.([A-Z_]+)", value))
    return names


def test_only_jobs_that_assume_an_identity_get_an_oidc_token() -> None:
    for file, name, job in jobs():
        assumes = identity_of(job)
        token = job["permissions"].get("id-token")
        assert (token == "write") == bool(assumes), f"{file} {name}: {token} vs {assumes}"


def test_which_job_may_assume_which_identity() -> None:
    """Pull requests: the preview identity, without an environment (the OIDC subject is then
    `pull_request`). Deploys: the deploy identity, only in the environment named after the
    stack (the subjects ci-identities trusts: `environment:<stack>` of .github/stacks.yaml)."""
    assumed = {(f, n): (identity_of(j), j.get("environment")) for f, n, j in jobs()}
    assumed = {key: value for key, value in assumed.items() if value[0]}
    assert assumed == {
        ("preview.yml", "preview"): ({"GCP_PREVIEW_SERVICE_ACCOUNT", "AWS_PREVIEW_ROLE_ARN"}, None),
        ("deploy.yml", "deploy"): (
            {"GCP_DEPLOY_SERVICE_ACCOUNT", "AWS_DEPLOY_ROLE_ARN"},
            "${{ matrix.stack }}",
        ),
    }


def test_pull_request_workflows_never_mention_the_deploy_identity() -> None:
    for file in ("pull-request.yml", "preview.yml", "plan-comment.yml"):
        assert "DEPLOY" not in (WORKFLOWS / file).read_text(), file
        for name, job in ALL[file]["jobs"].items():
            assert "environment" not in job, f"{file} {name}"


def test_the_fork_safe_workflow_uses_no_secret_and_no_identity() -> None:
    text = (WORKFLOWS / "pull-request.yml").read_text()
    assert "secrets." not in text
    assert "id-token" not in text
    assert list(ALL["pull-request.yml"]["on"]) == ["pull_request"]
    for job in ALL["pull-request.yml"]["jobs"].values():
        assert job["permissions"] == {"contents": "read"}


def test_the_preview_runs_only_for_same_repository_pull_requests() -> None:
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    job = ALL["preview.yml"]["jobs"]["preview"]
    # the job that lists the stacks runs nothing for a fork's PR either
    assert ALL["preview.yml"]["jobs"]["stacks"]["if"] == job["if"] == same_repository
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    (step,) = steps_using(job, "pulumi/actions")
    assert step["with"]["command"] == "preview"
    assert step["with"]["diff"] is True
    assert step["with"]["comment-on-pr"] is True
    # the guard rails run in the preview, with the stack's declarations
    assert step["with"]["policyPacks"] == "policies"
    assert step["env"]["PANGEO_POLICY_STACK"] == "${{ matrix.stack }}"
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }


def test_the_plan_compares_with_the_base_and_publishes_summary_and_artifact() -> None:
    job = ALL["pull-request.yml"]["jobs"]["plan"]
    (checkout,) = steps_using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the base commit must be there to compare
    run = next(s for s in job["steps"] if "pangeo_binder.plan" in s.get("run", ""))
    assert run["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    script = run["run"]
    assert '--compare "$BASE_SHA"' in script
    assert "--format markdown" in script and "--format json" in script
    # the guard rails over each plan fail the job on a mandatory violation
    assert '.venv/bin/python -m pangeo_binder.policy check "plan/$stack.json" || status=1' in script
    assert ".venv/bin/python -m pangeo_binder.ci_stacks names > stacks.txt" in script
    assert "exit 1" in script.split("stacks.txt")[1]  # an invalid list fails the job
    assert 'for stack in "${stacks[@]}"; do' in script
    assert '>> "$GITHUB_STEP_SUMMARY"' in script
    assert "plan/pr-number" in script
    # no expression is expanded inside the script: values reach it as environment variables
    assert "${{" not in script
    (upload,) = steps_using(job, "actions/upload-artifact")
    (download,) = steps_using(
        ALL["plan-comment.yml"]["jobs"]["comment"], "actions/download-artifact"
    )
    assert upload["with"]["name"] == download["with"]["name"] == "plan"


def test_the_comment_workflow_never_runs_the_pull_requests_code() -> None:
    workflow = ALL["plan-comment.yml"]
    assert workflow["on"] == {
        "workflow_run": {"workflows": ["pull request"], "types": ["completed"]}
    }
    assert ALL["pull-request.yml"]["name"] == "pull request"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    actions = [s.get("uses", "").split("@")[0] for s in job["steps"]]
    assert actions == ["actions/download-artifact", "actions/github-script"]
    assert not any("run" in s for s in job["steps"])
    download = job["steps"][0]["with"]
    assert download["run-id"] == "${{ github.event.workflow_run.id }}"
    assert "${{" not in job["steps"][1]["with"]["script"]  # the script reads files, not expressions


def test_deploys_are_ordered_and_never_overlap() -> None:
    """One matrix job per listed stack, one at a time in the file's order (GitHub creates
    matrix jobs in the order of the values), a failure cancelling the later stacks, each in
    its stack's environment; the environment guard and the tests come first."""
    workflow = ALL["deploy.yml"]
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    job = workflow["jobs"]["deploy"]
    assert sorted(job["needs"]) == ["stacks", "test"]
    assert job["strategy"] == {
        "max-parallel": 1,
        "fail-fast": True,
        "matrix": {"stack": "${{ fromJSON(needs.stacks.outputs.stacks) }}"},
    }
    assert job["environment"] == "${{ matrix.stack }}"
    stacks = workflow["jobs"]["stacks"]
    assert stacks["outputs"] == {"stacks": "${{ steps.stacks.outputs.stacks }}"}
    assert stacks["permissions"] == {"contents": "read", "actions": "read"}
    preview, up = steps_using(job, "pulumi/actions")
    # the policy pack's preview comes first: a mandatory violation stops the job before
    # `up` changes anything; `up` runs the pack again with every value known
    for step, command in ((preview, "preview"), (up, "up")):
        assert step["with"] == {
            "command": command,
            "stack-name": "${{ matrix.stack }}",
            "pulumi-version-file": ".pulumi.version",
            "policyPacks": "policies",
        }
        assert step["env"] == {"PANGEO_POLICY_STACK": "${{ matrix.stack }}"}
    steps = job["steps"]
    assert steps.index(preview) + 1 == steps.index(up)
    smoke = steps[steps.index(up) + 1]
    assert smoke["env"] == {"STACK": "${{ matrix.stack }}"}
    assert 'pulumi stack output --stack "$STACK" --json' in smoke["run"]
    assert 'pangeo_binder.smoke --stack "$STACK"' in smoke["run"]
    assert "--fail" in smoke["run"] and re.search(r"--retry \d+ ", smoke["run"])
    assert "/hub/health" in smoke["run"]
    assert "${{" not in smoke["run"]


FETCH_CHARTS = ".venv/bin/python -m pangeo_binder.charts fetch"


def test_the_charts_are_fetched_before_every_make_test() -> None:
    """The chart tests fail under CI without the pinned charts (tests/chart_render.py), so each
    job that runs `make test` first builds .venv (helm-python-sdk pulls, no helm binary), then
    fetches into the default cache, the one the tests read: no --charts/--schemas and no
    PANGEO_BINDER_* variable anywhere in the workflow. The dashboard tests likewise need
    `make dashboards`, a command of its own."""
    testing = []
    for file, name, job in jobs():
        runs = [s.get("run", "").strip() for s in job.get("steps", [])]
        if "make test" not in runs:
            continue
        testing.append((file, name))
        test = runs.index("make test")
        assert runs.count(FETCH_CHARTS) == 1, f"{file} {name}: {runs}"
        fetch = runs.index(FETCH_CHARTS)
        assert runs.index("make venv") < fetch < test, f"{file} {name}: {runs}"
        # The charts' fetch fetches the charts only: the dashboards' source has its own command.
        assert runs.index("make venv") < runs.index("make dashboards") < test, f"{file} {name}"
        assert not any("make test" in r for r in runs if r != "make test"), f"{file} {name}"
        assert "PANGEO_BINDER_" not in (WORKFLOWS / file).read_text(), file
    assert sorted(testing) == [("deploy.yml", "test"), ("pull-request.yml", "test")]


def test_every_pulumi_run_uses_the_pinned_cli() -> None:
    version = (ROOT / ".pulumi.version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    steps = [s for _, _, j in jobs() for s in steps_using(j, "pulumi/actions")]
    assert len(steps) == 3  # the PR preview; per stack, the policy preview and up
    assert all(s["with"]["pulumi-version-file"] == ".pulumi.version" for s in steps)


# The comment script, run by node against a fake GitHub API.

NODE = shutil.which("node")
COMMENT_SCRIPT = ALL["plan-comment.yml"]["jobs"]["comment"]["steps"][1]["with"]["script"]
MARKER = "<!-- pangeo-binder-plan -->"
HEAD = "a" * 40


def run_comment_script(
    tmp_path: Path, pr_number: str, comments: list[dict[str, Any]], plan: str = "| a | b |\n"
) -> list[list[Any]]:
    if NODE is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed to test the comment script (apt-get install nodejs)")
        pytest.skip("node not installed: the comment script is not exercised")
    (tmp_path / "plan").mkdir(exist_ok=True)
    (tmp_path / "plan" / "pr-number").write_text(pr_number)
    (tmp_path / "plan" / "comment.md").write_text(plan)
    (tmp_path / "script.js").write_text(COMMENT_SCRIPT)
    state = {
        "prs": {"7": {"head": {"sha": HEAD}}, "8": {"head": {"sha": "b" * 40}}},
        "comments": comments,
        "run": {"head_sha": HEAD, "html_url": "https://github.com/owner/repo/actions/runs/1"},
    }
    result = subprocess.run(
        [NODE, str(ROOT / "tests" / "github_script.js"), "script.js", json.dumps(state)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_comment_is_created_once_with_the_marker(tmp_path: Path) -> None:
    calls = run_comment_script(tmp_path, "7\n", comments=[])
    assert [c[0] for c in calls] == ["pulls.get", "list", "create"]
    _, number, body = calls[-1]
    assert number == 7
    assert body.startswith(MARKER + "\n")
    assert body.endswith("| a | b |\n")


def test_the_bots_comment_is_updated_not_duplicated(tmp_path: Path) -> None:
    comments = [
        {"id": 1, "user": {"login": "mallory"}, "body": MARKER + " fake"},
        {"id": 2, "user": {"login": "github-actions[bot]"}, "body": "an unrelated bot comment"},
        {"id": 3, "user": {"login": "github-actions[bot]"}, "body": MARKER + "\nold plan"},
    ]
    calls = run_comment_script(tmp_path, "7", comments)
    assert [c[:2] for c in calls] == [["pulls.get", 7], ["list", 7], ["update", 3]]


@pytest.mark.parametrize("bad", ["7; echo pwned", "../7", "0", "-7", "7.0", "", "1" * 11, "0x7"])
def test_a_pr_number_that_is_not_an_integer_is_refused(tmp_path: Path, bad: str) -> None:
    calls = run_comment_script(tmp_path, bad, comments=[])
    assert len(calls) == 1 and calls[0][0] == "failed"


def test_a_pr_whose_head_is_not_the_planned_commit_gets_nothing(tmp_path: Path) -> None:
    """A fork cannot aim its plan at someone else's pull request."""
    calls = run_comment_script(tmp_path, "8", comments=[])
    assert [c[0] for c in calls] == ["pulls.get", "notice"]


def test_a_huge_plan_is_truncated_under_githubs_limit(tmp_path: Path) -> None:
    calls = run_comment_script(tmp_path, "7", comments=[], plan="x" * 100_000)
    body = calls[-1][2]
    assert calls[-1][0] == "create"
    assert 60_000 < len(body) < 65_536
    assert "truncated" in body


# Which cloud's steps run: the `clouds` step's real script, then every step's `if:` evaluated.

STEP_OUTPUT = re.compile(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


def evaluate_if(expression: str, outputs: dict[str, dict[str, str]]) -> bool:
    """GitHub's `if:` for the forms these workflows use: `steps.ID.outputs.NAME == 'text'`
    (or `!=`), joined by `&&` or `||`, optionally inside `${{ }}`. Any other form fails the
    test rather than being guessed at."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    if "||" in text:
        return any(evaluate_if(part, outputs) for part in text.split("||"))
    if "&&" in text:
        return all(evaluate_if(part, outputs) for part in text.split("&&"))
    match = re.fullmatch(r"(\S+)\s*(==|!=)\s*'([^']*)'", text.strip())
    operand = STEP_OUTPUT.fullmatch(match.group(1)) if match else None
    if match is None or operand is None:
        raise AssertionError(f"the test's evaluator does not understand `if: {expression}`")
    # An output a step never wrote is the empty string in GitHub's expressions.
    value = outputs.get(operand.group(1), {}).get(operand.group(2), "")
    return (value == match.group(3)) == (match.group(2) == "==")


def test_the_if_evaluator_itself() -> None:
    outputs = {"clouds": {"gcp": "true", "aws": "false"}}
    assert evaluate_if("steps.clouds.outputs.gcp == 'true'", outputs)
    assert not evaluate_if("${{ steps.clouds.outputs.aws == 'true' }}", outputs)
    assert evaluate_if("steps.clouds.outputs.aws != 'true'", outputs)
    assert not evaluate_if("steps.other.outputs.gcp == 'true'", outputs)
    assert evaluate_if(
        "steps.clouds.outputs.aws == 'true' || steps.clouds.outputs.gcp == 'true'", outputs
    )
    for unknown in ("always()", "steps.clouds.outputs.gcp", "github.ref == 'refs/heads/main'"):
        with pytest.raises(AssertionError, match="does not understand"):
            evaluate_if(unknown, outputs)


# The workflows' stack selection, evaluated: each step's real script in a temporary checkout
# (tests/ci_checkout.py), and the expressions that carry its outputs to the next job.

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
OPAQUE = ("vars.", "secrets.", "github.")  # values GitHub supplies: placeholders here


def _lookup(path: str, context: dict[str, Any]) -> Any:
    if path.startswith(OPAQUE):
        return f"<{path}>"
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise AssertionError(f"the test's context has no `{path}`")
        value = value[part]
    return value


def expand(value: Any, context: dict[str, Any]) -> Any:
    """GitHub's `${{ }}` for the forms these workflows use: a dotted context path, or
    `fromJSON(path)`. A value that is one expression becomes its result (a list for
    fromJSON); expressions inside text are substituted. Any other form fails the test."""
    if not isinstance(value, str):
        return value

    def evaluate(expression: str) -> Any:
        call = re.fullmatch(r"fromJSON\(([A-Za-z0-9_.-]+)\)", expression)
        if call:
            return json.loads(_lookup(call.group(1), context))
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", expression):
            raise AssertionError(f"the test's evaluator does not understand `{expression}`")
        return _lookup(expression, context)

    whole = EXPRESSION.fullmatch(value.strip())
    if whole and value.count("${{") == 1:
        return evaluate(whole.group(1))
    return EXPRESSION.sub(lambda m: str(evaluate(m.group(1))), value)


def run_step(
    root: Path, step: dict[str, Any], context: dict[str, Any], path: str | None = None
) -> dict[str, str]:
    """The step's own script with its `env:` expanded, run in `root` (a checkout) with
    `.venv/bin/python` this interpreter; what it appended to $GITHUB_OUTPUT, parsed."""
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    if not (venv_bin / "python").exists():
        (venv_bin / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (venv_bin / "python").chmod(0o755)
    output = root / "github-output"
    output.write_text("")
    env = {
        "PATH": path or os.environ["PATH"],
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(root / "step-summary"),
        **{k: str(expand(v, context)) for k, v in step.get("env", {}).items()},
    }
    # GitHub's default shell for `run:` on Linux runners
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=root,
        env=env,
        check=True,
    )
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def selected_stacks(root: Path, workflow: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """The matrix `job` gets from the workflow's `stacks` job run in `root`."""
    lister = workflow["jobs"]["stacks"]
    (step,) = [s for s in lister["steps"] if s.get("id") == "stacks"]
    steps = {"stacks": {"outputs": run_step(root, step, {})}}
    outputs = {k: expand(v, {"steps": steps}) for k, v in lister["outputs"].items()}
    needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
    assert "stacks" in needs
    return expand(job["strategy"]["matrix"]["stack"], {"needs": {"stacks": {"outputs": outputs}}})


CLOUD_STEPS = {
    "google-github-actions/auth": "google-github-actions/auth",
    "google-github-actions/setup-gcloud": "setup-gcloud",
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
}
GCP_STEPS = {"google-github-actions/auth", "setup-gcloud"}
DEPLOYING_JOBS = [("deploy.yml", "deploy"), ("preview.yml", "preview")]


def walk_job(root: Path, job: dict[str, Any], stack: str) -> list[tuple[str, dict[str, Any]]]:
    """One matrix job for `stack`, step by step: the `clouds` step's real script, every `if:`
    evaluated on its outputs, every `with:` expanded. Returns the steps that would run (by
    action, or by id / name for scripts) and their inputs."""
    context: dict[str, Any] = {"matrix": {"stack": stack}, "steps": {}}
    ran: list[tuple[str, dict[str, Any]]] = []
    for step in job["steps"]:
        outputs = {k: v["outputs"] for k, v in context["steps"].items()}
        if "if" in step and not evaluate_if(step["if"], outputs):
            continue
        action = step.get("uses", "").split("@")[0]
        key = CLOUD_STEPS.get(action, action) or step.get("id") or step.get("name") or step["run"]
        ran.append((key, {k: expand(v, context) for k, v in step.get("with", {}).items()}))
        if step.get("id") == "clouds":
            context["steps"]["clouds"] = {"outputs": run_step(root, step, context)}
    assert "clouds" in dict(ran), "no step reads the stack's clouds"
    return ran


@pytest.mark.parametrize(("file", "name"), DEPLOYING_JOBS)
def test_a_forks_stacks_each_authenticate_only_to_their_clouds(
    tmp_path: Path, file: str, name: str
) -> None:
    """A fork lists `mygcp` (GCP only) and `myaws` (AWS only, eu-west-1, approval): the
    workflow's own selection gives that matrix, in that order, and each job asks only its
    stack's cloud for an identity, in its stack's region, and previews / deploys that stack."""
    root = write_checkout(tmp_path, FORK)
    workflow = ALL[file]
    job = workflow["jobs"][name]
    assert selected_stacks(root, workflow, job) == ["mygcp", "myaws"]
    for stack in ("mygcp", "myaws"):
        if "environment" in job:  # the deploy: the OIDC subject environment:<stack>
            assert expand(job["environment"], {"matrix": {"stack": stack}}) == stack
        ran = walk_job(root, job, stack)
        cloud_steps = set(dict(ran)) & set(CLOUD_STEPS.values())
        if stack == "mygcp":
            assert cloud_steps == GCP_STEPS, cloud_steps
        else:
            assert cloud_steps == {"configure-aws-credentials"}, cloud_steps
            aws = dict(ran)["configure-aws-credentials"]
            assert aws["aws-region"] == "eu-west-1"
            if file == "deploy.yml":
                assert aws["role-session-name"] == f"deploy-{stack}-<github.run_id>"
        pulumi = [inputs for key, inputs in ran if key == "pulumi/actions"]
        assert len(pulumi) == (2 if file == "deploy.yml" else 1)  # policy preview, then up
        assert all(p["stack-name"] == stack for p in pulumi)


ONE_CLOUD_STACKS = {
    "gcp only": ({"gcp": {"project": "p"}}, GCP_STEPS),
    "aws only": ({"aws": {"region": "us-west-2"}}, {"configure-aws-credentials"}),
    "both": (
        {"gcp": {"project": "p"}, "aws": {"region": "us-west-2"}},
        GCP_STEPS | {"configure-aws-credentials"},
    ),
}


@pytest.mark.parametrize(("file", "name"), DEPLOYING_JOBS)
@pytest.mark.parametrize("case", list(ONE_CLOUD_STACKS))
def test_a_job_authenticates_only_to_the_clouds_its_stack_has(
    tmp_path: Path, file: str, name: str, case: str
) -> None:
    clouds, expected = ONE_CLOUD_STACKS[case]
    config = {"config": {"pangeo-binder:clouds": clouds}}
    (tmp_path / "Pulumi.mystack.yaml").write_text(yaml.safe_dump(config))
    ran = dict(walk_job(tmp_path, ALL[file]["jobs"][name], "mystack"))
    assert set(ran) & set(CLOUD_STEPS.values()) == expected, f"{file} {name} {case}"
    assert "pulumi/actions" in ran  # the deploy itself never depends on a cloud


def test_the_plan_covers_a_forks_stacks_in_order(tmp_path: Path) -> None:
    """The offline plan's own script in a fork's checkout: every listed stack is planned
    against the base, checked by the policy runner and put in the comment, in the file's
    order (`.venv/bin/python` records what it is asked, except the stack selection)."""
    root = write_checkout(tmp_path, FORK)
    (root / ".venv" / "bin").mkdir(parents=True)
    log = tmp_path / "calls"
    (root / ".venv" / "bin" / "python").write_text(
        "#!/bin/sh\n"
        f'if [ "$2" = pangeo_binder.ci_stacks ]; then exec "{sys.executable}" "$@"; fi\n'
        f'echo "$*" >> "{log}"\n'
        'case "$*" in *markdown*) echo "plan of $4";; esac\n'
    )
    (root / ".venv" / "bin" / "python").chmod(0o755)
    job = ALL["pull-request.yml"]["jobs"]["plan"]
    step = next(s for s in job["steps"] if "pangeo_binder.plan" in s.get("run", ""))
    run_step(root, step, {})
    calls = log.read_text().splitlines()
    assert calls == [
        line
        for stack in ("mygcp", "myaws")
        for line in (
            f"-m pangeo_binder.plan --stack {stack} --compare <github.event.pull_request.base.sha>"
            " --format markdown",
            f"-m pangeo_binder.plan --stack {stack} --compare <github.event.pull_request.base.sha>"
            " --format json",
            f"-m pangeo_binder.policy check plan/{stack}.json",
        )
    ]
    assert (root / "plan" / "comment.md").read_text() == "plan of mygcp\n\nplan of myaws\n\n"
    # an invalid list fails the job, and the comment says what is wrong, plans nothing
    (root / "Pulumi.myaws.yaml").unlink()
    log.unlink()
    with pytest.raises(subprocess.CalledProcessError):
        run_step(root, step, {})
    comment = (root / "plan" / "comment.md").read_text()
    assert comment.startswith("The stack list is invalid:")
    assert "stacks.1.name: Pulumi.myaws.yaml does not exist" in comment
    assert not log.exists()


def test_no_workflow_names_a_stack_outside_its_comments() -> None:
    """The stacks are .github/stacks.yaml's: no job, step, script or expression of a workflow
    names the project's own (comments may, as the example they explain)."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [t for k, v in node.items() for t in strings(k) + strings(v)]
        if isinstance(node, list):
            return [t for v in node for t in strings(v)]
        return [node] if isinstance(node, str) else []

    for file, workflow in ALL.items():
        named = [t for t in strings(workflow) if re.search(r"\b(staging|prod)\b", t)]
        assert named == [], file
    # and the check itself sees a literal where one would be
    assert strings({"jobs": {"a": {"steps": [{"run": "pulumi up --stack prod"}]}}})


def fake_gh(tmp_path: Path, answer: dict[str, Any]) -> str:
    """A `gh` on PATH that answers `gh api repos/OWNER/REPO/environments...` with `answer`."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "answer.json").write_text(json.dumps(answer))
    (bin_dir / "gh").write_text(
        "#!/bin/sh\n"
        'case "$2" in "repos/<github.repository>/environments?per_page=100") ;; *) exit 2;; esac\n'
        f'[ -n "$GH_TOKEN" ] || exit 3\ncat "{bin_dir / "answer.json"}"\n'
    )
    (bin_dir / "gh").chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_the_deploy_stops_before_any_stack_when_approval_is_not_enforced(tmp_path: Path) -> None:
    """The `stacks` job's guard, its own script against a fake GitHub: the fork's `myaws`
    asks for approval, so an environment without required reviewers fails the job every
    deploy needs; with reviewers it passes."""
    root = write_checkout(tmp_path / "checkout", FORK)
    jobs_ = ALL["deploy.yml"]["jobs"]
    guard = next(s for s in jobs_["stacks"]["steps"] if "check-environments" in s.get("run", ""))
    rules = {"deployment_branch_policy": {"protected_branches": True}}
    unreviewed = {
        "environments": [
            {"name": "mygcp", "protection_rules": [], **rules},
            {"name": "myaws", "protection_rules": [{"type": "wait_timer"}], **rules},
        ]
    }
    with pytest.raises(subprocess.CalledProcessError):
        run_step(root, guard, {}, path=fake_gh(tmp_path / "a", unreviewed))
    reviewed = json.loads(json.dumps(unreviewed))
    reviewed["environments"][1]["protection_rules"].append({"type": "required_reviewers"})
    run_step(root, guard, {}, path=fake_gh(tmp_path / "b", reviewed))
    assert "stacks" in jobs_["deploy"]["needs"]


def test_the_clouds_step_refuses_a_stack_without_its_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pangeo_binder.clouds", "--stack", "nope", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "Pulumi.nope.yaml does not exist" in done.stderr


def test_the_passphrase_is_read_where_the_docs_say_it_is() -> None:
    """One story: a repository secret. The preview job runs in no environment (its OIDC subject
    must stay `pull_request`), and such a job reads repository secrets only; the deploy jobs
    read the same secret. The docs set it without `--env` and call it a repository secret."""
    readers = []
    for file, name, job in jobs():
        env = job.get("env", {})
        if "PULUMI_CONFIG_PASSPHRASE" in env:
            assert env["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
            readers.append((file, name, job.get("environment")))
    assert sorted(readers) == [
        ("deploy.yml", "deploy", "${{ matrix.stack }}"),
        ("preview.yml", "preview", None),  # only a repository secret reaches this job
    ]
    guide = (ROOT / "docs" / "howto" / "ci.md").read_text()
    assert "## The Pulumi passphrase: one repository secret" in guide
    sets = re.findall(r"gh secret set PULUMI_CONFIG_PASSPHRASE[^`]*", guide)
    assert sets and all("--env" not in s and " -e " not in s for s in sets), sets
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *WORKFLOWS.glob("*.yml")]
    for page in pages:
        text = " ".join(page.read_text().split())
        assert "passphrase as an environment secret" not in text.lower(), page
        assert "as environment secrets of staging and prod" not in text, page
