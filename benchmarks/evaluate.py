"""How long the whole program takes to evaluate under the mock engine, per stack.

Target: staging evaluates in under 2 seconds, cold (a fresh interpreter, as a CI job or an
operator's preview starts). Reported with its parts:
- module loading: Python importing the provider SDKs and the components (measured with
  `python -X importtime`; the SDKs are large generated packages that load lazily on first use,
  so this is paid during the run and grows with every cloud a stack uses);
- evaluation: the rest of the cold run, i.e. the program itself under the mock engine;
- warm: further runs in the same interpreter, with everything already loaded.

Run with `make bench` (or `.venv/bin/python benchmarks/evaluate.py [stack ...]`).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0
WARM_RUNS = 5

COLD = """
import sys, time
sys.path.insert(0, {tests!r})
start = time.perf_counter()
from harness import run_program
run = run_program({stack!r})
print(time.perf_counter() - start, len(run.registrations))
"""

# `import time: self [us] | cumulative | name`; top-level imports have one space before the name.
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def cold(stack: str) -> tuple[float, float, int]:
    """Seconds for a fresh interpreter to run the stack, seconds of that spent importing,
    resources registered."""
    code = COLD.format(tests=str(ROOT / "tests"), stack=stack)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{out.stderr[-3000:]}")
    total, count = out.stdout.split()
    imports_us = sum(
        int(match.group(1))
        for line in out.stderr.splitlines()
        if (match := IMPORT_LINE.match(line))
    )
    return float(total), imports_us / 1e6, int(count)


def warm(stack: str) -> list[float]:
    sys.path.insert(0, str(ROOT / "tests"))
    from harness import run_program  # imported once the path is set

    run_program(stack)
    times = []
    for _ in range(WARM_RUNS):
        start = time.perf_counter()
        run_program(stack)
        times.append(time.perf_counter() - start)
    return times


def main(stacks: list[str]) -> int:
    failed = False
    for stack in stacks:
        total, imports, count = cold(stack)
        warm_times = warm(stack)
        verdict = "ok" if total < TARGET_SECONDS else "OVER TARGET"
        failed |= stack == "staging" and total >= TARGET_SECONDS
        print(
            f"{stack}: {count} resources; cold {total:.2f}s ({verdict}, target "
            f"{TARGET_SECONDS:.0f}s) = module loading {imports:.2f}s + evaluation "
            f"{total - imports:.2f}s; warm median {statistics.median(warm_times):.3f}s over "
            f"{WARM_RUNS} runs (min {min(warm_times):.3f}s, max {max(warm_times):.3f}s)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["staging", "prod"]))
