"""The lock files: every package pinned with hashes, the runtime lock agreeing with the dev
lock, both covering what pyproject.toml asks for, and the Pulumi CLI following the SDK.

A dependency added to pyproject.toml without `make lock` fails here, naming the package.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # locked for Python 3.10 (a pytest dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)\s*(?:;\s*(.+?))?\s*\\?$")


def parse_lock(path: Path) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(name, marker) -> (version, hashes) for each entry of a `--generate-hashes` lock."""
    entries: dict[tuple[str, str], tuple[str, list[str]]] = {}
    current: tuple[str, str] | None = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            match = ENTRY.match(line)
            assert match, f"{path.name}: not a pinned requirement: {line!r}"
            name, version, marker = match.groups()
            current = (canonicalize_name(name), marker or "")
            assert current not in entries, f"{path.name}: {name} twice"
            entries[current] = (version, [])
        else:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
            assert hashes and current, f"{path.name}: unexpected line {line!r}"
            entries[current][1].extend(hashes)
    return entries


DEV = parse_lock(ROOT / "requirements-dev.txt")
RUNTIME = parse_lock(ROOT / "requirements.txt")


def pins_for(lock: dict, environment: dict[str, str]) -> dict[str, str]:
    """name -> version as pip would pick them on one Python."""
    return {
        name: version
        for (name, marker), (version, _) in lock.items()
        if not marker or Marker(marker).evaluate(environment)
    }


PYTHONS = [
    {"python_full_version": v, "python_version": v.rsplit(".", 1)[0], "sys_platform": "linux"}
    for v in ("3.10.12", "3.11.7", "3.12.3")
]


@pytest.mark.parametrize("lock", [DEV, RUNTIME], ids=["dev", "runtime"])
def test_every_entry_is_pinned_with_hashes(lock: dict) -> None:
    assert len(lock) > 20
    for (name, _), (_, hashes) in lock.items():
        assert hashes, f"{name} has no hash"


def test_the_runtime_lock_is_the_dev_locks_runtime_part() -> None:
    for (name, marker), (version, _) in RUNTIME.items():
        assert (name, marker) in DEV, f"{name} is in requirements.txt only"
        assert DEV[(name, marker)][0] == version, f"{name}: {version} vs {DEV[(name, marker)][0]}"


@pytest.mark.parametrize("environment", PYTHONS, ids=lambda e: e["python_full_version"])
def test_the_locks_satisfy_pyproject(environment: dict[str, str]) -> None:
    """Each dependency (and test extra) is locked at a version its specifier accepts."""
    wanted = [
        (RUNTIME, PYPROJECT["project"]["dependencies"]),
        (DEV, PYPROJECT["project"]["dependencies"]),
        (DEV, PYPROJECT["project"]["optional-dependencies"]["test"]),
        (DEV, PYPROJECT["build-system"]["requires"]),
    ]
    for lock, requirements in wanted:
        pins = pins_for(lock, environment)
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not locked: run `make lock`"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} does not satisfy {text}: run `make lock`"
            )


def test_the_makefile_locks_the_build_requirements_of_pyproject() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (build,) = re.findall(r"^BUILD_REQUIRES := (.+)$", makefile, re.M)
    assert build.split() == PYPROJECT["build-system"]["requires"]
    assert "--require-hashes -r $(DEV_LOCK)" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile


def test_pulumi_installs_the_runtime_lock() -> None:
    """Pulumi's pip toolchain installs requirements.txt into .venv: the hashed runtime lock
    (an editable `-e .` line would be refused in hash-checking mode)."""
    text = (ROOT / "requirements.txt").read_text()
    assert "-e " not in text
    project = (ROOT / "Pulumi.yaml").read_text()
    assert "toolchain: pip" in project and "virtualenv: .venv" in project


def test_the_pulumi_cli_follows_the_locked_sdk() -> None:
    """The CLI the workflows install and the SDK they run are released together, same version."""
    (version,) = {v for (name, _), (v, _) in RUNTIME.items() if name == "pulumi"}
    assert (ROOT / ".pulumi.version").read_text().strip() == version
