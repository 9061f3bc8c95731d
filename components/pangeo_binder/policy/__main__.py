"""`python -m pangeo_binder.policy check PLAN.json [--format text|json]`

Runs the guard rails over an offline plan (`python -m pangeo_binder.plan --format json`) and
prints each violation. Exits 1 when a mandatory one is present, 2 when the file is not a
plan, 0 otherwise. `python -m pangeo_binder.policy docs` rewrites the rules' table of
docs/reference/policies.md (run from the repository root).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pangeo_binder.policy.check import NotAPlan, check_plan, mandatory
from pangeo_binder.policy.docs import PAGE, update


def text(found: list[dict]) -> str:
    if not found:
        return "No policy violations.\n"
    lines = [
        f"{v['enforcement'].upper()} {v['policy']}: {v.get('cloud', '')} "
        f"{v['resource']['type']} {v['resource']['name']}: {v['message']}"
        for v in found
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pangeo_binder.policy", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check an offline plan's JSON")
    check.add_argument("plan", type=Path, help="the output of `plan --format json` (- for stdin)")
    check.add_argument("--format", choices=["text", "json"], default="text")
    commands.add_parser("docs", help=f"rewrite the generated section of {PAGE}")
    args = parser.parse_args(argv)
    if args.command == "docs":
        if not update(Path.cwd()):
            print(f"error: {PAGE} lacks its generated-section markers", file=sys.stderr)
            return 2
        return 0
    try:
        raw = sys.stdin.read() if str(args.plan) == "-" else args.plan.read_text()
        found = check_plan(json.loads(raw))
    except (OSError, ValueError) as error:  # NotAPlan and JSONDecodeError are ValueErrors
        kind = "not a plan" if isinstance(error, NotAPlan) else "cannot read the plan"
        print(f"error: {args.plan}: {kind}: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    else:
        sys.stdout.write(text(found))
    return 1 if mandatory(found) else 0


if __name__ == "__main__":
    sys.exit(main())
