"""How long the whole program takes to evaluate under the mock engine, per stack.

Target: staging evaluates in under 2 seconds. Reported two ways:
- cold: a fresh interpreter imports the SDKs and runs `__main__.py` once (what a CI job or an
  operator's preview pays before any cloud call);
- warm: further runs in the same interpreter (the evaluation itself, imports already paid).

Run with `make bench` (or `.venv/bin/python benchmarks/evaluate.py [stack ...]`).
"""

from __future__ import annotations

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


def cold(stack: str) -> tuple[float, int]:
    code = COLD.format(tests=str(ROOT / "tests"), stack=stack)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    seconds, count = out.stdout.split()
    return float(seconds), int(count)


def warm(stack: str) -> list[float]:
    sys.path.insert(0, str(ROOT / "tests"))
    from harness import run_program

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
        cold_seconds, count = cold(stack)
        warm_times = warm(stack)
        median = statistics.median(warm_times)
        verdict = "ok" if cold_seconds < TARGET_SECONDS else "OVER TARGET"
        failed |= stack == "staging" and cold_seconds >= TARGET_SECONDS
        print(
            f"{stack}: {count} resources; cold {cold_seconds:.2f}s ({verdict}, target "
            f"{TARGET_SECONDS:.0f}s); warm median {median:.3f}s over {WARM_RUNS} runs "
            f"(min {min(warm_times):.3f}s, max {max(warm_times):.3f}s)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["staging", "prod"]))
