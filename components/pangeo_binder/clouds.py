"""Which clouds a stack file configures, as GitHub Actions step outputs.

The workflows authenticate only to the clouds a stack has: a GCP-only stack must not fail on a
missing AWS role (and the reverse). Pure: it reads `Pulumi.<stack>.yaml` and nothing else.

    python -m pangeo_binder.clouds --stack staging >> "$GITHUB_OUTPUT"

prints one `cloud=true|false` line per supported cloud (`gcp=true`, `aws=false`), and with AWS
the stack's region (`aws_region=us-west-2`), where the AWS credentials step asks STS: a fork's
stack in another region needs no edit of the workflows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "pangeo-binder"
CLOUDS = ("gcp", "aws")


def stack_config(stack_file: Path) -> dict[str, Any]:
    """The `config:` map of a stack file, namespaced keys as written."""
    return (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}


def cloud_setting(config: dict[str, Any], cloud: str, key: str) -> str | None:
    """`clouds.<cloud>.<key>` of a stack file's config, when it is a string."""
    settings = (config.get(f"{NAMESPACE}:clouds") or {}).get(cloud)
    value = settings.get(key) if isinstance(settings, dict) else None
    return value if isinstance(value, str) else None


def configured_clouds(stack_file: Path) -> list[str] | None:
    """The clouds under `pangeo-binder:clouds` in the stack file; None without a stack file."""
    if not stack_file.exists():
        return None
    clouds = stack_config(stack_file).get(f"{NAMESPACE}:clouds") or {}
    return [cloud for cloud in CLOUDS if isinstance(clouds, dict) and cloud in clouds]


def aws_region(stack_file: Path) -> str | None:
    """`clouds.aws.region` of the stack file (the AWS config model requires it)."""
    return cloud_setting(stack_config(stack_file), "aws", "region")


def step_outputs(clouds: Sequence[str], region: str | None = None) -> str:
    """`gcp=true` / `aws=false` lines, the `$GITHUB_OUTPUT` format, then `aws_region=...`
    when there is one."""
    lines = "".join(f"{cloud}={'true' if cloud in clouds else 'false'}\n" for cloud in CLOUDS)
    return lines + (f"aws_region={region}\n" if "aws" in clouds and region else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the stack file is")
    args = parser.parse_args(argv)
    stack_file = args.dir / f"Pulumi.{args.stack}.yaml"
    clouds = configured_clouds(stack_file)
    # A workflow that deploys a stack without its file would authenticate nowhere and fail
    # later, less clearly: stop here instead.
    if clouds is None:
        print(f"{stack_file} does not exist", file=sys.stderr)
        return 1
    if not clouds:
        print(f"{stack_file.name} configures no cloud under {NAMESPACE}:clouds", file=sys.stderr)
        return 1
    region = aws_region(stack_file)
    if "aws" in clouds and region is None:
        print(f"{stack_file.name} has no {NAMESPACE}:clouds.aws.region", file=sys.stderr)
        return 1
    sys.stdout.write(step_outputs(clouds, region))
    return 0


if __name__ == "__main__":
    sys.exit(main())
