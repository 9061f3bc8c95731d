"""Which clouds a stack file configures, as GitHub Actions step outputs.

The workflows authenticate only to the clouds a stack has: a GCP-only stack must not fail on a
missing AWS role (and the reverse). Pure: it reads `Pulumi.<stack>.yaml` and nothing else.

    python -m pangeo_binder.clouds --stack staging >> "$GITHUB_OUTPUT"

prints one `cloud=true|false` line per supported cloud (`gcp=true`, `aws=false`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

NAMESPACE = "pangeo-binder"
CLOUDS = ("gcp", "aws")


def configured_clouds(stack_file: Path) -> list[str] | None:
    """The clouds under `pangeo-binder:clouds` in the stack file; None without a stack file."""
    if not stack_file.exists():
        return None
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    clouds = config.get(f"{NAMESPACE}:clouds") or {}
    return [cloud for cloud in CLOUDS if isinstance(clouds, dict) and cloud in clouds]


def step_outputs(clouds: Sequence[str]) -> str:
    """`gcp=true` / `aws=false` lines, the `$GITHUB_OUTPUT` format."""
    return "".join(f"{cloud}={'true' if cloud in clouds else 'false'}\n" for cloud in CLOUDS)


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
    sys.stdout.write(step_outputs(clouds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
