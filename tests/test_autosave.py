"""Autosave: a stopping server's working directory reaches $PERSISTENT_BUCKET/autosave/.

The script (`hub/incluster/autosave.py`) runs here as Python and as the hook's own command line,
against fsspec's `memory://` and `file://` filesystems standing in for the bucket, with a real
git repository. The pod side: the values of both clouds and stacks, rendered with the real
z2jh chart, loaded by the chart's own jupyterhub_config.py, and turned into each profile's pod
by KubeSpawner 7.0.0's `get_pod_manifest`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_render import find, render, validate_values
from conftest import release
from harness import Run
from local_hub import hub_config, run_on_own_loop
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.hub import autosave as values_module
from pangeo_binder.hub.config import AutosaveSettings
from pangeo_binder.hub.incluster import autosave, source

SCRIPT = Path(autosave.__file__)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def bucket() -> tuple[Any, str]:
    """A fresh prefix of fsspec's in-memory filesystem, standing in for gs://bucket/user."""
    fs, base = autosave.filesystem(f"memory://bucket-{uuid.uuid4().hex}/alice")
    return fs, base


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A working directory with notebooks, caches, a git repository and an ignore file."""
    root = tmp_path / "home"
    write(root / "analysis.ipynb", '{"cells": []}')
    write(root / "notes" / "todo.md", "- finish the plot\n")
    write(root / ".ipynb_checkpoints" / "analysis-checkpoint.ipynb", "{}")
    write(root / "notes" / "__pycache__" / "x.cpython-312.pyc", b"\0")
    write(root / ".cache" / "pip" / "wheel", b"\0" * 100)
    write(root / "data" / "big.nc", b"\0" * 1000)
    write(root / "run.log", "log\n")
    write(root / autosave.IGNORE_FILE, "# the user's own\n*.log\ndata/\n")
    repo = root / "project"
    write(repo / "committed.py", "print('as committed')\n")
    write(repo / "edited.py", "x = 1\n")
    write(repo / "staged.py", "y = 1\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    write(repo / "edited.py", "x = 2  # not committed\n")
    write(repo / "staged.py", "y = 2\n")
    git(repo, "add", "staged.py")
    write(repo / "new.py", "z = 1\n")
    return root


def reasons(manifest: dict[str, Any]) -> dict[str, str]:
    return {entry["path"]: entry["reason"] for entry in manifest["skipped"]}


def test_save_copies_what_git_and_the_user_do_not_keep(home: Path, bucket: tuple) -> None:
    fs, base = bucket
    manifest = autosave.save(
        f"{home}/", fs, base, max_bytes=10**6, budget_seconds=30, stamp="20260101T000000Z"
    )
    files = f"{base}/autosave/20260101T000000Z/files"
    saved = sorted(p.removeprefix(files + "/") for p in fs.find(files))
    assert saved == [
        ".autosaveignore",
        "analysis.ipynb",
        "notes/todo.md",
        "project/edited.py",  # modified since the commit
        "project/new.py",  # untracked
        "project/staged.py",  # staged, not committed
    ]
    assert fs.cat_file(f"{files}/project/edited.py") == b"x = 2  # not committed\n"
    assert sorted(entry["path"] for entry in manifest["saved"]) == saved
    assert reasons(manifest) == {
        ".cache/": "excluded: .cache/",
        ".ipynb_checkpoints/": "excluded: .ipynb_checkpoints/",
        "data/": "excluded: data/",
        "notes/__pycache__/": "excluded: __pycache__/",
        "project/.git/": "excluded: .git/",
        "project/committed.py": "unchanged in git",
        "run.log": "excluded: *.log",
    }
    assert manifest["complete"] is True
    written = json.loads(fs.cat_file(f"{base}/autosave/20260101T000000Z/manifest.json"))
    assert written == manifest


def test_without_git_tracked_files_are_saved_with_a_note(
    home: Path, bucket: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, base = bucket
    monkeypatch.setenv("PATH", str(home / "no-such-dir"))  # no git on PATH
    manifest = autosave.save(str(home), fs, base, max_bytes=10**6, budget_seconds=30)
    assert "project/committed.py" in {entry["path"] for entry in manifest["saved"]}
    assert any("git not found" in note for note in manifest["notes"])


def test_the_cap_leaves_out_the_largest_files_first(tmp_path: Path, bucket: tuple) -> None:
    fs, base = bucket
    for name, size in {"a": 10, "b": 20, "c": 30, "huge": 1000, "d": 25}.items():
        write(tmp_path / name, b"x" * size)
    manifest = autosave.save(str(tmp_path), fs, base, max_bytes=60, budget_seconds=30)
    assert sorted(entry["path"] for entry in manifest["saved"]) == ["a", "b", "d"]
    assert manifest["savedBytes"] == 55
    assert reasons(manifest) == {"c": "over the size cap", "huge": "over the size cap"}
    assert any("size cap (60 bytes) left out 2" in note for note in manifest["notes"])
    assert manifest["complete"] is True, "complete: every file within the cap was saved"


def test_the_time_budget_stops_uploads_and_still_writes_the_manifest(
    tmp_path: Path, bucket: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, base = bucket
    monkeypatch.setattr(autosave, "MANIFEST_RESERVE", 0.2)
    for index in range(10):
        write(tmp_path / f"f{index}.txt", "x")

    def slow_put(filesystem: Any, local: str, remote: str) -> None:
        time.sleep(0.4 if not local.endswith("f9.txt") else 60)  # the last one hangs
        filesystem.put_file(local, remote)

    began = time.monotonic()
    manifest = autosave.save(
        str(tmp_path), fs, base, max_bytes=10**6, budget_seconds=1.5, upload=slow_put
    )
    assert time.monotonic() - began < 2.5, "a stuck upload must not hold up the stop"
    late = [entry["path"] for entry in manifest["skipped"] if entry["reason"] == "time budget"]
    assert 0 < len(manifest["saved"]) < 10 and len(late) == 10 - len(manifest["saved"])
    assert manifest["complete"] is False
    stored = json.loads(fs.cat_file(f"{manifest['destination']}/manifest.json"))
    assert stored["skipped"] == manifest["skipped"]


def test_a_failed_upload_is_reported_and_the_rest_saved(tmp_path: Path, bucket: tuple) -> None:
    fs, base = bucket
    write(tmp_path / "good.txt", "ok")
    write(tmp_path / "bad.txt", "no")

    def put(filesystem: Any, local: str, remote: str) -> None:
        if local.endswith("bad.txt"):
            raise PermissionError("403 from the bucket")
        filesystem.put_file(local, remote)

    manifest = autosave.save(str(tmp_path), fs, base, max_bytes=100, budget_seconds=10, upload=put)
    assert [entry["path"] for entry in manifest["saved"]] == ["good.txt"]
    assert reasons(manifest) == {"bad.txt": "upload failed: 403 from the bucket"}


def run_script(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_hook_command_saves_and_the_user_lists_and_restores(home: Path, tmp_path: Path) -> None:
    """The hook's exact arguments, then the user's --list and --restore, as command lines
    against a file:// bucket (the script's own $PERSISTENT_BUCKET and $HOME defaults)."""
    bucket_url = f"file://{tmp_path / 'bucket'}/alice"
    hook = values_module.prestop_command(AutosaveSettings())
    assert hook[:2] == ["python3", autosave.MOUNT_PATH]
    env = {"HOME": str(home), "PERSISTENT_BUCKET": bucket_url}
    saved = run_script(*hook[2:], env=env, cwd=home)
    assert saved.returncode == 0, saved.stderr
    assert "autosave: 6 file(s)" in saved.stdout
    [stamp] = os.listdir(tmp_path / "bucket" / "alice" / "autosave")

    listed = run_script("--list", env=env, cwd=home)
    assert listed.stdout.startswith(f"{stamp}  6 file(s)")

    work = tmp_path / "work"
    restored = run_script("--restore", stamp, env=env, cwd=write(work / "x", "").parent)
    assert restored.returncode == 0, restored.stderr
    target = work / f"autosave-{stamp}"
    assert (target / "project" / "edited.py").read_text() == "x = 2  # not committed\n"
    assert (target / "analysis.ipynb").read_text() == '{"cells": []}'
    assert not (target / "project" / "committed.py").exists()

    # Restoring in place keeps newer work unless asked to overwrite.
    write(home / "analysis.ipynb", "newer")
    again = run_script("--restore", stamp, "--to", str(home), env=env, cwd=home)
    assert "kept 6 existing file(s)" in again.stdout
    assert (home / "analysis.ipynb").read_text() == "newer"
    run_script("--restore", stamp, "--to", str(home), "--overwrite", env=env, cwd=home)
    assert (home / "analysis.ipynb").read_text() == '{"cells": []}'


def test_images_without_the_tools_are_skipped_and_the_stop_goes_on(home: Path) -> None:
    """gcsfs is not installed here, as in an image without it: exit 0 and say so."""
    env = {"HOME": str(home), "PERSISTENT_BUCKET": "gs://hub-persistent/alice"}
    result = run_script("--save", "--budget", "20", env=env, cwd=home)
    assert result.returncode == 0
    assert "autosave: skipped, this image cannot write to gs://hub-persistent/alice" in (
        result.stdout
    )
    no_bucket = run_script("--save", env={"HOME": str(home)}, cwd=home)
    assert (no_bucket.returncode, no_bucket.stdout.strip()) == (
        0,
        "autosave: no $PERSISTENT_BUCKET, nothing saved",
    )


def test_list_and_restore_as_functions(home: Path, bucket: tuple, tmp_path: Path) -> None:
    fs, base = bucket
    assert autosave.list_snapshots(fs, base) == []
    for stamp in ("20260102T000000Z", "20260101T000000Z"):
        autosave.save(str(home), fs, base, max_bytes=10**6, budget_seconds=30, stamp=stamp)
    snapshots = autosave.list_snapshots(fs, base)
    assert [s["timestamp"] for s in snapshots] == ["20260101T000000Z", "20260102T000000Z"]
    assert snapshots[0]["saved"] == 6 and snapshots[0]["complete"] is True
    result = autosave.restore(fs, base, "20260101T000000Z", str(tmp_path / "back"))
    assert len(result["restored"]) == 6 and result["kept"] == []
    with pytest.raises(FileNotFoundError, match="no autosave"):
        autosave.restore(fs, base, "19990101T000000Z", str(tmp_path / "none"))


# --- the pod side ----------------------------------------------------------------------------


def test_settings_turn_into_one_grace_period_everywhere() -> None:
    settings = AutosaveSettings(max_megabytes=200, grace_seconds=300)
    single = values_module.autosave_singleuser(settings)
    assert single["lifecycleHooks"]["preStop"]["exec"]["command"] == [
        "python3",
        autosave.MOUNT_PATH,
        "--save",
        "--max-megabytes",
        "200",
        "--budget",
        str(300 - values_module.SERVER_STOP_SECONDS),
    ]
    assert single["extraPodConfig"] == {"terminationGracePeriodSeconds": 300}
    assert values_module.autosave_spawner(settings) == {"delete_grace_period": 300}
    off = AutosaveSettings(enabled=False)
    assert values_module.autosave_singleuser(off) == values_module.autosave_spawner(off) == {}


@pytest.mark.usefixtures("chart_files")
def test_every_user_pod_gets_the_hook_and_the_file(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    validate_values(JUPYTERHUB, values)
    single = values["singleuser"]
    hook = single["lifecycleHooks"]["preStop"]["exec"]["command"]
    assert hook == values_module.prestop_command(AutosaveSettings())
    assert single["extraPodConfig"]["terminationGracePeriodSeconds"] == 120
    assert values["hub"]["config"]["KubeSpawner"]["delete_grace_period"] == 120
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    secret = find(objects, "Secret", "singleuser")[0]
    assert secret["stringData"][values_module.FILE_KEY] == source("autosave")
    seen = yaml.safe_load(
        base64.b64decode(find(objects, "Secret", "hub")[0]["data"]["values.yaml"])
    )
    assert seen["singleuser"]["lifecycleHooks"] == single["lifecycleHooks"]
    assert seen["singleuser"]["extraPodConfig"] == single["extraPodConfig"]
    assert seen["hub"]["config"]["KubeSpawner"]["delete_grace_period"] == 120
    # No profile option replaces what autosave sets (a kubespawner_override of lifecycle_hooks,
    # extra_pod_config, volumes or volume_mounts would drop it for that profile).
    dropped = {"lifecycle_hooks", "extra_pod_config", "volumes", "volume_mounts"}
    for override in overrides(single["profileList"]):
        assert not dropped & set(override), override


def overrides(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every kubespawner_override in a profile list: profiles, their options and choices."""
    found = []
    for profile in profiles:
        found.append(profile.get("kubespawner_override", {}))
        for option in profile.get("profile_options", {}).values():
            for choice in option.get("choices", {}).values():
                found.append(choice.get("kubespawner_override", {}))
            found.append(option.get("unlisted_choice", {}).get("kubespawner_override", {}))
    return found


@pytest.mark.usefixtures("chart_files")
def test_kubespawner_builds_each_profiles_pod_with_the_hook(
    staging: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's jupyterhub_config.py, run on the rendered files, configures KubeSpawner;
    its `get_pod_manifest` (no API call) gives every profile's pod the hook, the mounted
    script and the grace period."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    values = release(staging, "gcp", "jupyterhub")["values"]
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    config = hub_config(objects, tmp_path, "binder", monkeypatch)
    profiles = values["singleuser"]["profileList"]

    async def pods() -> dict[str, dict[str, Any]]:
        built = {}
        async with ApiClient() as api:
            for profile in profiles:
                spawner = KubeSpawner(config=config, _mock=True)
                spawner.profile_list = profiles  # the list hub_access filters per user
                spawner.user_options = {"profile": profile["slug"]}
                await spawner.load_user_options()
                manifest = await spawner.get_pod_manifest()
                built[profile["slug"]] = api.sanitize_for_serialization(manifest)["spec"]
                # KubeSpawner's stop() deletes the pod with this, not the pod's own value.
                assert spawner.delete_grace_period == 120
        return built

    specs = run_on_own_loop(pods())
    assert len(specs) == len(profiles) >= 2
    for slug, spec in specs.items():
        container = spec["containers"][0]
        assert spec["terminationGracePeriodSeconds"] == 120, slug
        assert container["lifecycle"]["preStop"]["exec"]["command"] == (
            values_module.prestop_command(AutosaveSettings())
        ), slug
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == autosave.MOUNT_PATH)
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == "singleuser"
        assert mount["subPath"] == values_module.FILE_KEY


def test_a_home_that_is_itself_a_repository(tmp_path: Path, bucket: tuple) -> None:
    """Files deep in a repository at the top are matched to it, however the path is spelled."""
    fs, base = bucket
    write(tmp_path / "src" / "deep" / "kept.py", "a = 1\n")
    write(tmp_path / "src" / "deep" / "changed.py", "b = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    write(tmp_path / "src" / "deep" / "changed.py", "b = 2\n")
    manifest = autosave.save(f"{tmp_path}/", fs, base, max_bytes=10**6, budget_seconds=30)
    assert [entry["path"] for entry in manifest["saved"]] == ["src/deep/changed.py"]
    assert reasons(manifest)["src/deep/kept.py"] == "unchanged in git"
