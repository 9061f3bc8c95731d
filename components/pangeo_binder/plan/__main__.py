"""`python -m pangeo_binder.plan --stack staging [--compare REF] [--format text|markdown|json]`

Runs the Pulumi project in the current directory (or `--root`) offline under Pulumi's
mock engine (`pangeo_binder.testing`) with the stack file's config (secure values replaced
by placeholders) and prints per cloud the resource tree, the Helm values (secrets
redacted) and the monthly cost, idle and at the ceiling; with `--compare`, the change
against another git ref. Unpriced items are warned about on
stderr by name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pangeo_binder.plan.build import PlanError, full_plan
from pangeo_binder.plan.cost import Prices
from pangeo_binder.plan.render import RENDERERS, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pangeo_binder.plan", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--compare", metavar="REF", help="git ref to compare with (e.g. origin/main)"
    )
    parser.add_argument("--format", choices=sorted(RENDERERS), default="text")
    parser.add_argument(
        "--prices",
        type=Path,
        help="price file (default: the package's data/prices.yaml)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        help="the Pulumi project, the folder with Pulumi.yaml (default: the current one)",
    )
    parser.add_argument(
        "--stacks",
        type=Path,
        help="folder of the stack files, inside the project (default: --root); the test "
        "suite's own are in tests/stacks",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "Pulumi.yaml").is_file():
        print(
            f"error: {root} has no Pulumi.yaml: run from the Pulumi project or pass --root DIR",
            file=sys.stderr,
        )
        return 2
    try:
        document = full_plan(root, args.stack, args.compare, Prices.load(args.prices), args.stacks)
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for warning in warnings(document):
        print(warning, file=sys.stderr)
    sys.stdout.write(RENDERERS[args.format](document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
