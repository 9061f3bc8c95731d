"""Nothing in the repository points outside it.

The project is cloned on its own, by other hubs too: a link to a folder beside the checkout, or a
web page a reader must trust to still say the same thing, breaks silently. So the only file that
may name the team's shared folder is `.ci/run` (the CI runner that knows it sits beside the
clone), and the Markdown pages link only to files in the repository; outside sources are cited
in plain text.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The shared folder beside a clone, named by a relative path (`..` then `shared`) or by one of
# its chart or design folders; `config_shared.py` and prose about shared pools do not match.
SHARED_REFERENCE = re.compile(
    r"\.\./shared\b|(?<![\w.-])shared/(?:charts?|chart-schemas|DESIGN|STYLE)\b"
)
ALLOWED_TO_NAME_SHARED = {".ci/run"}


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in listed.split("\0") if name]


def shared_references(text: str) -> list[str]:
    """`line N: text` for each line of `text` that names the shared folder."""
    return [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if SHARED_REFERENCE.search(line)
    ]


def test_only_the_ci_runner_names_the_shared_folder() -> None:
    found = {}
    for name in tracked_files():
        path = ROOT / name
        if name in ALLOWED_TO_NAME_SHARED or not path.is_file():
            continue
        hits = shared_references(path.read_bytes().decode("utf-8", errors="replace"))
        if hits:
            found[name] = hits
    assert found == {}
    # The pattern does find what the runner legitimately says.
    assert shared_references((ROOT / ".ci" / "run").read_text())


# Split so that this file does not name the folder itself.
UP, SHARED = "../", "shared"


@pytest.mark.parametrize(
    ("line", "names_it"),
    [
        (f"charts default to {UP}{SHARED}/charts", True),
        (f"see {UP}{UP}{UP}{SHARED}/DESIGN.md", True),
        (f"read from {SHARED}/chart-schemas/jupyterhub", True),
        (f"beside the clone in {UP}{SHARED}", True),
        ("from pangeo_binder.config_shared import NodePool", False),
        ("schedulers run on the shared user pool", False),
        ('"kubernetes.io/cluster/x": "shared"', False),
    ],
)
def test_the_shared_pattern(line: str, names_it: bool) -> None:
    assert bool(shared_references(line)) is names_it
