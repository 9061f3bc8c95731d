"""`make up` / `make preview` check the CLIs and logins first (pangeo_binder/prereqs.py).

Run as the Makefile runs it, as a subprocess, with a PATH holding only fake CLIs: each fake
exits as the test says (logged in or not), so no real CLI or account is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import ROOT, STACKS
from pangeo_binder.prereqs import configured_clouds

FAKES = {
    "pulumi": "exit 0",
    "gke-gcloud-auth-plugin": "exit 0",
    "gcloud": 'case "$*" in\n'
    '  "auth print-access-token") exit "${FAKE_GCLOUD_LOGIN:-0}" ;;\n'
    '  "auth application-default print-access-token") exit "${FAKE_ADC:-0}" ;;\n'
    "esac\nexit 0",
    "aws": 'case "$*" in\n  "sts get-caller-identity") exit "${FAKE_AWS_LOGIN:-0}" ;;\n'
    '  "--version") eval "echo ${FAKE_AWS_VERSION:-aws-cli/2.15.30 Python/3.11.8}" ;;\n'
    "esac\nexit 0",
    "kubectl": "exit 0",
    "docker": 'case "$*" in\n  "buildx version") exit "${FAKE_BUILDX:-0}" ;;\nesac\nexit 0',
}
COMMON = ("pulumi", "kubectl", "docker")
BOTH = {"gcp": {"project": "p"}, "aws": {"region": "us-west-2"}}


def fake_path(tmp_path: Path, *tools: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\n{FAKES[tool]}\n")
        script.chmod(0o755)
    return str(bin_dir)


def check(
    tmp_path: Path, clouds: dict | None, tools: tuple[str, ...], hub: dict | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    if clouds is not None:
        config = {
            "config": {"pangeo-binder:environment": "staging", "pangeo-binder:clouds": clouds}
        }
        if hub is not None:
            config["config"]["pangeo-binder:hub"] = hub
        (tmp_path / "Pulumi.test.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "pangeo_binder.prereqs", "--stack", "test", "--dir", str(tmp_path)],
        cwd=ROOT,
        env={"PATH": fake_path(tmp_path, *tools), "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nothing_installed_names_each_tool_and_its_fix(tmp_path: Path) -> None:
    done = check(tmp_path, BOTH, ())
    assert done.returncode == 1
    err = done.stderr
    assert "Pulumi CLI: `pulumi` is not on PATH" in err
    assert "curl -fsSL https://get.pulumi.com | sh" in err
    assert "`gcloud` is not on PATH" in err
    assert "gcloud components install gke-gcloud-auth-plugin" in err
    assert "`aws` is not on PATH" in err and "AWS CLI v2" in err
    assert "kubectl is not on PATH" in err and "gcloud components install kubectl" in err
    assert "`docker` is not on PATH" in err
    assert "Docker Engine or Docker Desktop with the buildx plugin" in err
    assert "pulumi config set --path hub.hubImage REGISTRY/IMAGE:TAG" in err
    assert "not found" not in err
    assert err.count("\n  - ") == 6  # pulumi, plugin, gcloud, aws, kubectl, docker


def test_everything_present_and_logged_in(tmp_path: Path) -> None:
    done = check(tmp_path, BOTH, tuple(FAKES))
    assert done.returncode == 0, done.stderr
    assert "prerequisites for stack test (gcp, aws): all present" in done.stdout


def test_only_pulumi_missing(tmp_path: Path) -> None:
    done = check(tmp_path, BOTH, ("gcloud", "gke-gcloud-auth-plugin", "aws", "kubectl", "docker"))
    assert done.returncode == 1
    assert done.stderr.count("\n  - ") == 1
    assert "Pulumi CLI" in done.stderr


def test_gcloud_not_logged_in(tmp_path: Path) -> None:
    done = check(tmp_path, {"gcp": {}}, tuple(FAKES), FAKE_GCLOUD_LOGIN="1", FAKE_ADC="1")
    assert done.returncode == 1
    assert "gcloud auth login" in done.stderr
    assert "gcloud auth application-default login" in done.stderr


def test_credentials_file_stands_in_for_application_default(tmp_path: Path) -> None:
    """CI authenticates Pulumi's provider with a credentials file, not ADC."""
    done = check(
        tmp_path, {"gcp": {}}, tuple(FAKES), FAKE_ADC="1", GOOGLE_APPLICATION_CREDENTIALS="/x.json"
    )
    assert done.returncode == 0, done.stderr


def test_aws_identity_missing(tmp_path: Path) -> None:
    done = check(tmp_path, {"aws": {}}, ("pulumi", "aws"), FAKE_AWS_LOGIN="255")
    assert done.returncode == 1
    assert "aws sts get-caller-identity` fails" in done.stderr
    assert "aws sso login" in done.stderr


@pytest.mark.parametrize(
    ("clouds", "tools"),
    [
        ({"gcp": {}}, (*COMMON, "gcloud", "gke-gcloud-auth-plugin")),
        ({"aws": {}}, (*COMMON, "aws")),
    ],
)
def test_only_the_configured_clouds_tools_are_needed(
    tmp_path: Path, clouds: dict, tools: tuple[str, ...]
) -> None:
    done = check(tmp_path, clouds, tools)
    assert done.returncode == 0, done.stderr


def test_docker_without_buildx_is_named_with_both_fixes(tmp_path: Path) -> None:
    done = check(tmp_path, {"aws": {}}, (*COMMON, "aws"), FAKE_BUILDX="1")
    assert done.returncode == 1
    assert done.stderr.count("\n  - ") == 1
    assert "`docker buildx version` fails" in done.stderr
    assert "buildx plugin" in done.stderr
    assert "pulumi config set --path hub.hubImage REGISTRY/IMAGE:TAG" in done.stderr
    assert "jupyterhub-fancy-profiles" in done.stderr


def test_a_prebuilt_hub_image_needs_no_docker(tmp_path: Path) -> None:
    hub = {"hubImage": "quay.io/example/hub:1"}
    done = check(
        tmp_path, {"gcp": {}}, ("pulumi", "kubectl", "gcloud", "gke-gcloud-auth-plugin"), hub
    )
    assert done.returncode == 0, done.stderr
    without = check(
        tmp_path, {"gcp": {}}, ("pulumi", "kubectl", "gcloud", "gke-gcloud-auth-plugin"), {}
    )
    assert without.returncode == 1
    assert "`docker` is not on PATH" in without.stderr


def test_kubectl_is_needed_with_any_cloud(tmp_path: Path) -> None:
    done = check(tmp_path, {"aws": {}}, ("pulumi", "docker", "aws"))
    assert done.returncode == 1
    assert done.stderr.count("\n  - ") == 1 and "kubectl is not on PATH" in done.stderr


def test_a_stack_without_its_file_needs_the_pulumi_cli_only(tmp_path: Path) -> None:
    done = check(tmp_path, None, ("pulumi",))
    assert done.returncode == 0, done.stderr
    assert "Pulumi.test.yaml does not exist yet" in done.stdout


def test_clouds_read_from_the_stack_files() -> None:
    assert configured_clouds(STACKS / "Pulumi.staging.yaml") == ["gcp", "aws"]
    assert configured_clouds(STACKS / "Pulumi.prod.yaml") == ["gcp", "aws"]


@pytest.mark.parametrize("target", ["up", "preview", "destroy"])
def test_make_checks_before_any_pulumi_command(target: str, tmp_path: Path) -> None:
    # the Makefile beside the suite's staging: the checkout's stacks may have other names
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy2(STACKS / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    plan = subprocess.run(
        ["make", "-n", target, "STACK=staging"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    ).stdout.splitlines()
    check_line = next(i for i, line in enumerate(plan) if "-m pangeo_binder.prereqs" in line)
    first_pulumi = next(
        i for i, line in enumerate(plan) if "pulumi " in line and "prereqs" not in line
    )
    assert check_line < first_pulumi
    assert '--stack "staging"' in plan[check_line]


def test_aws_cli_v2_logged_out_is_told_to_sso_login(tmp_path: Path) -> None:
    done = check(tmp_path, {"aws": {}}, ("pulumi", "aws", "kubectl", "docker"), FAKE_AWS_LOGIN="1")
    assert done.returncode == 1
    assert "aws sso login --profile P" in done.stderr and "v1" not in done.stderr


def test_aws_cli_v1_is_noticed_and_not_told_to_sso_login(tmp_path: Path) -> None:
    """v1 has no `aws sso login`; its version went to stderr on old Pythons, as here."""
    tools = ("pulumi", "aws", "kubectl", "docker")
    v1 = "aws-cli/1.18.69 Python/2.7.18 Linux/5.4 botocore/1.16.19 >&2"
    done = check(tmp_path, {"aws": {}}, tools, FAKE_AWS_VERSION=v1, FAKE_AWS_LOGIN="1")
    assert done.returncode == 1
    err = done.stderr
    assert "AWS CLI v1: `aws --version` says aws-cli/1" in err and "install AWS CLI v2" in err
    assert "sso" not in err.split("No AWS identity")[1]
    assert "aws configure --profile P" in err
    assert err.count("\n  - ") == 2  # v1, and the missing identity
    logged_in = check(tmp_path, {"aws": {}}, tools, FAKE_AWS_VERSION=v1)
    assert logged_in.returncode == 1 and logged_in.stderr.count("\n  - ") == 1


def test_the_aws_cli_major_version_is_read_from_its_banner() -> None:
    from pangeo_binder.prereqs import aws_cli_major

    assert aws_cli_major("aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64") == 2
    assert aws_cli_major("\naws-cli/1.18.69 Python/2.7.18 Linux/5.4 botocore/1.16.19") == 1
    assert aws_cli_major("") is None
