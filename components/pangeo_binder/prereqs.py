"""What `make up` / `make preview` need on the operator's machine, checked before Pulumi runs.

Without this a newcomer's first `make up` dies with make's "pulumi: not found" (error 127), or
later, halfway through a deploy, when the kubeconfig calls a missing auth plugin. Each check
names what is missing and the command that fixes it. Which cloud tools are needed follows the
clouds the stack file configures; kubectl is needed with any cloud, and Docker with BuildX when
the program builds the hub image (the stack file sets no `hub.hubImage`):

    python -m pangeo_binder.prereqs --stack staging     (make does this before `pulumi`)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pangeo_binder.clouds import NAMESPACE, configured_clouds

TIMEOUT_SECONDS = 30
# Credentials Pulumi's Google provider takes instead of application-default credentials.
GOOGLE_CREDENTIAL_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CREDENTIALS",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)


@dataclass(frozen=True)
class Missing:
    """One prerequisite that is not there, and what to install or run."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}\n      {self.fix}"


Which = Callable[[str], str | None]
Succeeds = Callable[[Sequence[str]], bool]
Output = Callable[[Sequence[str]], str]


def command_output(command: Sequence[str]) -> str:
    """What `command` prints, stdout and stderr together (AWS CLI v1 printed its version on
    stderr), or "" when it cannot run."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return f"{done.stdout}\n{done.stderr}"


def command_succeeds(command: Sequence[str]) -> bool:
    """True when `command` exits 0; its output is not shown (tokens are printed on success)."""
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False, stdin=None
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def builds_hub_image(stack_file: Path) -> bool:
    """True unless the stack file sets `hub.hubImage`: without it the program builds the hub
    image (with jupyterhub-fancy-profiles) itself, with Docker BuildX."""
    if not stack_file.exists():
        return False
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    hub = config.get(f"{NAMESPACE}:hub") or {}
    return not (isinstance(hub, dict) and hub.get("hubImage"))


def check(
    clouds: Sequence[str],
    *,
    builds_image: bool = False,
    which: Which = shutil.which,
    succeeds: Succeeds = command_succeeds,
    output: Output = command_output,
    environ: dict[str, str] | None = None,
) -> list[Missing]:
    """Every missing prerequisite for deploying `clouds`, in the order to fix them."""
    env = os.environ if environ is None else environ
    missing = []
    if which("pulumi") is None:
        missing.append(
            Missing(
                "Pulumi CLI: `pulumi` is not on PATH",
                "install it: curl -fsSL https://get.pulumi.com | sh (or `brew install "
                "pulumi/tap/pulumi`), then open a new shell",
            )
        )
    if "gcp" in clouds:
        missing += _gcp(which, succeeds, env)
    if "aws" in clouds:
        missing += _aws(which, succeeds, output)
    if clouds and which("kubectl") is None:
        missing.append(
            Missing(
                "kubectl is not on PATH (to look at the cluster after a deploy: DNS, "
                "certificates, users' pods)",
                "install it: gcloud components install kubectl, or the install page on "
                "kubernetes.io (Install Tools > kubectl)",
            )
        )
    if clouds and builds_image:
        missing += _docker(which, succeeds)
    return missing


SKIP_BUILD = (
    "or skip the build: pulumi config set --path hub.hubImage REGISTRY/IMAGE:TAG (a prebuilt "
    "hub image that has jupyterhub-fancy-profiles)"
)


def _docker(which: Which, succeeds: Succeeds) -> list[Missing]:
    """The hub image is built with Docker BuildX unless `hub.hubImage` names a prebuilt one."""
    if which("docker") is None:
        return [
            Missing(
                "Docker: `docker` is not on PATH (the program builds the hub image with BuildX "
                "because hub.hubImage is not set)",
                f"install Docker Engine or Docker Desktop with the buildx plugin, {SKIP_BUILD}",
            )
        ]
    if not succeeds(["docker", "buildx", "version"]):
        return [
            Missing(
                "Docker BuildX: `docker buildx version` fails (the program builds the hub image "
                "with it because hub.hubImage is not set)",
                f"install the buildx plugin (Docker Desktop has it; on Linux the "
                f"docker-buildx-plugin package), {SKIP_BUILD}",
            )
        ]
    return []


def _gcp(which: Which, succeeds: Succeeds, env: dict[str, str]) -> list[Missing]:
    missing = []
    if which("gke-gcloud-auth-plugin") is None:
        missing.append(
            Missing(
                "GKE auth plugin: `gke-gcloud-auth-plugin` is not on PATH (the kubeconfig "
                "calls it for every Kubernetes request)",
                "gcloud components install gke-gcloud-auth-plugin (or the OS package "
                "google-cloud-cli-gke-gcloud-auth-plugin)",
            )
        )
    if which("gcloud") is None:
        missing.append(
            Missing(
                "Google Cloud CLI: `gcloud` is not on PATH",
                "install it: https://cloud.google.com/sdk/docs/install",
            )
        )
        return missing
    if not succeeds(["gcloud", "auth", "print-access-token"]):
        missing.append(
            Missing(
                "No logged-in gcloud account (the GKE auth plugin uses it)",
                "gcloud auth login",
            )
        )
    uses_adc = not any(env.get(name) for name in GOOGLE_CREDENTIAL_VARIABLES)
    if uses_adc and not succeeds(["gcloud", "auth", "application-default", "print-access-token"]):
        missing.append(
            Missing(
                "No application-default credentials (Pulumi's Google provider uses them)",
                "gcloud auth application-default login (or set GOOGLE_APPLICATION_CREDENTIALS)",
            )
        )
    return missing


AWS_CLI_V2 = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"


def aws_cli_major(version_text: str) -> int | None:
    """The AWS CLI's major version from `aws --version` (`aws-cli/2.15.0 Python/3.11 ...`)."""
    match = re.search(r"aws-cli/(\d+)\.", version_text)
    return int(match.group(1)) if match else None


def _aws(which: Which, succeeds: Succeeds, output: Output) -> list[Missing]:
    if which("aws") is None:
        return [
            Missing(
                "AWS CLI: `aws` is not on PATH (the kubeconfig calls `aws eks get-token`)",
                f"install AWS CLI v2: {AWS_CLI_V2}",
            )
        ]
    missing = []
    # v1 has no `aws sso login` (IAM Identity Center logins are v2 only), and the docs and
    # the login fix below assume v2 (AWS CLI v2 user guide, "New features and changes").
    v1 = aws_cli_major(output(["aws", "--version"])) == 1
    if v1:
        missing.append(
            Missing(
                "AWS CLI v1: `aws --version` says aws-cli/1 (it has no `aws sso login`; the "
                "docs and CI use v2)",
                f"install AWS CLI v2 ({AWS_CLI_V2}) and put it first on PATH "
                "(pip uninstall awscli removes a v1 installed with pip)",
            )
        )
    if not succeeds(["aws", "sts", "get-caller-identity"]):
        login = (
            "aws configure --profile P (an access key: AWS CLI v1 has no SSO login) and "
            "export AWS_PROFILE=P"
            if v1
            else "aws sso login --profile P and export AWS_PROFILE=P"
        )
        missing.append(
            Missing(
                "No AWS identity: `aws sts get-caller-identity` fails",
                f"{login} (in CI: aws-actions/configure-aws-credentials)",
            )
        )
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the stack file is")
    args = parser.parse_args(argv)
    stack_file = args.dir / f"Pulumi.{args.stack}.yaml"
    clouds = configured_clouds(stack_file)
    if clouds is None:
        print(f"note: {stack_file.name} does not exist yet; checking the Pulumi CLI only")
    missing = check(clouds or [], builds_image=builds_hub_image(stack_file))
    scope = ", ".join(clouds) if clouds else "no cloud configured"
    if not missing:
        print(f"prerequisites for stack {args.stack} ({scope}): all present")
        return 0
    print(f"Missing before deploying stack {args.stack} ({scope}):", file=sys.stderr)
    for item in missing:
        print(f"  - {item}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
