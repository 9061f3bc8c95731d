"""The checkout's own stacks: every `Pulumi.*.yaml` at the root, whatever it is called (the
project's staging and prod, a fork's `mygcp` and `myaws`, or a fork's own staging and prod).
Each is valid config, runs under the mock engine, plans offline with no mandatory policy
violation, and its idle cluster fits on its core pool. The rest of the suite runs with its own
stack files (tests/stacks/README.md), so a fork that replaces the project's passes it too;
the last test does what such a fork does, in a temporary copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import OWN, OWN_STACKS, ROOT, SECRET_KEYS, STACKS, Project, Run, copy_checkout
from pangeo_binder import core_fit, links
from pangeo_binder.config import load_config
from pangeo_binder.init import main as init
from pangeo_binder.plan import build
from test_core_fit import _cluster_workloads, _objects


@pytest.fixture(scope="module", params=OWN_STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def own_run(stack: str) -> Run:
    return OWN.run_program(stack)


def clouds(stack: str) -> list[str]:
    return list(OWN.stack_config(stack)["clouds"])


def test_the_stack_file_is_valid_config(stack: str) -> None:
    load_config(OWN.stack_config(stack), secret_keys=SECRET_KEYS)


def test_the_program_builds_a_hub_per_cloud(stack: str, own_run: Run) -> None:
    for cloud in clouds(stack):
        assert own_run.stack_outputs[cloud]["hubUrl"].startswith("https://"), cloud


def test_the_plan_has_no_mandatory_violation(stack: str) -> None:
    document = build.full_plan(ROOT, stack)
    assert sorted(document["clouds"]) == sorted(clouds(stack))
    mandatory = [v for v in document["policies"]["violations"] if v["enforcement"] == "mandatory"]
    assert mandatory == []


@pytest.mark.usefixtures("chart_files")
def test_the_idle_cluster_fits_on_its_core_pool(stack: str, own_run: Run) -> None:
    """What tests/test_core_fit.py checks of the suite's stacks, for this one: the core pods
    the charts render at `minNodes` of the core pool (tests/test_core_fit.py says how)."""
    for cloud, settings in OWN.stack_config(stack)["clouds"].items():
        core = next(p for p in settings["nodePools"].values() if p["purpose"] == "core")
        ours = core_fit.core_workloads(_objects(own_run, cloud), "rendered")
        ours += _cluster_workloads(own_run, cloud)
        fit = core_fit.core_fit(
            cloud, core["machineType"], core["minNodes"], ours, core_fit.EXTRA_CORE_WORKLOADS
        )
        assert fit.fits, f"{stack} {cloud}\n{fit.table()}"


# --- a fork: the project's stack files replaced by its own ------------------------------------

# Two stacks of a fork's own, written by init as the README's quickstart says: a GCP staging
# and an AWS prod, in their own project, account, organization and domain.
FORK_STACKS = {
    "mygcp": [
        "--cloud", "gcp", "--environment", "staging", "--project", "fork-hub-staging",
        "--region", "europe-west1", "--zone", "europe-west1-b",
        "--billing-account", "0A1B2C-3D4E5F-6A7B8C", "--domain", "hub.fork.example.net",
        "--contact-email", "ops@fork.example.net", "--github-org", "fork-org",
        "--client-id", "Ov23liForkGcp001", "--admin", "fork-admin",
    ],
    "myaws": [
        "--cloud", "aws", "--environment", "prod", "--region", "eu-west-1",
        "--account-id", "210987654321", "--domain", "aws.fork.example.net",
        "--contact-email", "ops@fork.example.net", "--github-org", "fork-org:hub-users",
        "--client-id", "Ov23liForkAws001", "--admin", "fork-admin",
    ],
}  # fmt: skip


def fork_of(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) without its root stack files, and
    the stacks of FORK_STACKS written by init and listed in .github/stacks.yaml."""
    copy_checkout(
        target,
        lambda name: not ("/" not in name and name.startswith("Pulumi.") and name != "Pulumi.yaml"),
    )
    for name, argv in FORK_STACKS.items():
        assert init(["--stack", name, *argv, "--dir", str(target)], interactive=False) == 0
    entries = [{"name": "mygcp"}, {"name": "myaws", "approval": True}]
    (target / ".github" / "stacks.yaml").write_text(yaml.safe_dump({"stacks": entries}))
    return target


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fork_of(tmp_path_factory.mktemp("fork"))


def test_a_fork_has_only_its_own_stacks(fork: Path) -> None:
    assert Project(fork).stack_names() == ["myaws", "mygcp"]
    # the suite's stack files came along; the fork's root has none of the project's
    assert Project(fork, stacks=fork / "tests" / "stacks").stack_names() == ["prod", "staging"]
    assert (fork / "tests" / "stacks" / "Pulumi.staging.yaml").read_bytes() == (
        STACKS / "Pulumi.staging.yaml"
    ).read_bytes()


def test_a_forks_stacks_run_under_the_mock_engine(fork: Path) -> None:
    for name, argv in FORK_STACKS.items():
        cloud = argv[argv.index("--cloud") + 1]
        run = Project(fork).run_program(name)
        domain = argv[argv.index("--domain") + 1]
        assert run.stack_outputs[cloud]["hubUrl"] == f"https://{domain}"
        assert not [
            r for r in run.registrations if r.type.split(":")[0] in {"gcp", "aws"} - {cloud}
        ]


def fork_pytest(fork: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in the fork, with its own package first on the import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fork / "components"), str(fork)])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=fork,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_a_forks_suite_checks_its_stacks_and_keeps_its_generated_docs(fork: Path) -> None:
    """In the fork: this file's own-stack tests run over mygcp and myaws (and pass), the
    harness's stacks are the suite's, and the user guide's generated example still matches
    (it is computed from the suite's staging, not the fork's stacks)."""
    done = fork_pytest(fork, "tests/test_own_stacks.py", "-k", "not fork", "-rA")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = [line for line in done.stdout.splitlines() if line.startswith("PASSED ")]
    for name in FORK_STACKS:
        assert sum(f"[{name}]" in line for line in passed) == 4, done.stdout
    page = (fork / links.GUIDE).read_text()
    assert page == links.with_section(page, links.example_section(fork))
    probe = "import harness; print(harness.OWN_STACKS, harness.PROJECT.stack_names())"
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=fork / "tests",
        env={**os.environ, "PYTHONPATH": str(fork / "components")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == "['myaws', 'mygcp'] ['prod', 'staging']"
