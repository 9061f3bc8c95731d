"""Save a notebook server's working directory to its persistent bucket before the pod goes.

Runs in the user's own container, not the hub: z2jh mounts this file into every user pod
(`singleuser.extraFiles`) and the container's `preStop` hook runs `--save`, so a server that is
culled, stopped or evicted leaves `$PERSISTENT_BUCKET/autosave/<UTC timestamp>/` behind. Users
run the same file with `--list` and `--restore TIMESTAMP`.

Only the standard library and, when the image has them, `fsspec` with `gcsfs` or `s3fs`. A
save never fails the stop: it stays inside its time budget, reports what it did in a manifest
next to the files, and exits 0 whatever happens.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# Where the chart mounts this file in user pods (also what the user guide tells users to run).
MOUNT_PATH = "/etc/pangeo-binder/autosave.py"
IGNORE_FILE = ".autosaveignore"
MANIFEST = "manifest.json"
# Regenerable or already kept elsewhere: git's own store, editor and tool caches, installs.
BUILTIN_EXCLUDES = (
    ".git/",
    ".ipynb_checkpoints/",
    "__pycache__/",
    "*.pyc",
    ".cache/",
    ".local/",
    ".conda/",
    ".npm/",
    "node_modules/",
    ".virtual_documents/",
    ".Trash-*/",
)
# Seconds kept back from the budget to write the manifest after the uploads stop.
MANIFEST_RESERVE = 5.0
GIT_TIMEOUT = 20.0


def read_ignore_file(root: str) -> list[str]:
    """The user's glob patterns from `<root>/.autosaveignore` (one a line, `#` comments)."""
    try:
        with open(os.path.join(root, IGNORE_FILE), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def excluded_by(rel: str, is_dir: bool, patterns: list[str]) -> str | None:
    """The first pattern that excludes `rel` (a path relative to the saved directory).

    Like .gitignore, simplified: a trailing `/` matches directories only; a pattern with a `/`
    inside matches the relative path, one without matches the name at any depth."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        glob = pattern.rstrip("/")
        if not glob or (dir_only and not is_dir):
            continue
        if "/" in glob:
            if fnmatch.fnmatchcase(rel, glob.lstrip("/")):
                return pattern
        elif fnmatch.fnmatchcase(name, glob):
            return pattern
    return None


def _git(repo: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", repo, *args], capture_output=True, timeout=GIT_TIMEOUT, check=False
    )


def git_held(repo: str) -> tuple[set[str], str | None]:
    """Paths (relative to `repo`) that git holds as they are: tracked and identical to HEAD.

    Modified, staged and untracked files are not in it, so they are saved. Any git failure
    gives an empty set and a note: saving too much beats losing work."""
    if shutil.which("git") is None:
        return set(), "git not found: files tracked by git are saved too"
    try:
        if _git(repo, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
            return set(), None  # no commit yet: git holds nothing
        tracked = _git(repo, "ls-files", "-z")
        changed = _git(repo, "diff", "--name-only", "-z", "HEAD", "--")
    except (OSError, subprocess.SubprocessError) as error:
        return set(), f"git failed in {repo}: {error}"
    if tracked.returncode or changed.returncode:
        message = (tracked.stderr or changed.stderr).decode(errors="replace").strip()
        return set(), f"git failed in {repo}: {message}"
    names = {n.decode(errors="surrogateescape") for n in tracked.stdout.split(b"\0") if n}
    modified = {n.decode(errors="surrogateescape") for n in changed.stdout.split(b"\0") if n}
    return names - modified, None


def plan(root: str, max_bytes: int) -> dict[str, Any]:
    """What to save from `root`: files in, files skipped with the reason, and notes.

    Within the cap the smallest files go first, so one large file cannot crowd out many
    notebooks; files beyond it are skipped, the largest first."""
    root = os.path.abspath(root)  # walk paths and their parents compare as strings below
    patterns = list(BUILTIN_EXCLUDES) + read_ignore_file(root)
    candidates: list[tuple[str, int]] = []
    skipped: list[dict[str, Any]] = []
    notes: list[str] = []
    held: dict[str, set[str]] = {}
    repo_of: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        repo = repo_of.get(os.path.dirname(dirpath)) if rel_dir else None
        if ".git" in dirnames or ".git" in filenames:
            repo = dirpath
            held[repo], note = git_held(repo)
            if note:
                notes.append(note)
        repo_of[dirpath] = repo
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            pattern = excluded_by(rel, True, patterns)
            if pattern is None and os.path.islink(os.path.join(dirpath, name)):
                pattern = "symbolic link"
            if pattern is not None:
                dirnames.remove(name)
                skipped.append({"path": rel + "/", "reason": f"excluded: {pattern}"})
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = os.path.join(dirpath, name)
            pattern = excluded_by(rel, False, patterns)
            if pattern is not None:
                skipped.append({"path": rel, "reason": f"excluded: {pattern}"})
                continue
            if os.path.islink(full) or not os.path.isfile(full):
                skipped.append({"path": rel, "reason": "not a regular file"})
                continue
            if repo is not None:
                in_repo = os.path.relpath(full, repo).replace(os.sep, "/")
                if in_repo in held[repo]:
                    skipped.append({"path": rel, "reason": "unchanged in git"})
                    continue
            try:
                candidates.append((rel, os.lstat(full).st_size))
            except OSError as error:
                skipped.append({"path": rel, "reason": f"unreadable: {error}"})
    chosen: list[tuple[str, int]] = []
    total = 0
    for rel, size in sorted(candidates, key=lambda item: (item[1], item[0])):
        if total + size <= max_bytes:
            chosen.append((rel, size))
            total += size
        else:
            skipped.append({"path": rel, "bytes": size, "reason": "over the size cap"})
    if len(chosen) < len(candidates):
        notes.append(
            f"the size cap ({max_bytes} bytes) left out {len(candidates) - len(chosen)} "
            "file(s), the largest ones"
        )
    return {"files": chosen, "skipped": skipped, "notes": notes}


def filesystem(url: str) -> tuple[Any, str]:
    """fsspec filesystem and path of a bucket URL (gs:// needs gcsfs, s3:// s3fs).

    Raises ImportError when the image lacks them. `file://` and `memory://` stand in for a
    bucket in tests."""
    import fsspec.core  # optional: images without it are skipped

    options = {"auto_mkdir": True} if url.startswith(("file://", "/")) else {}
    return fsspec.core.url_to_fs(url, **options)


def _utc_stamp(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _run_with_deadline(work: Callable[[], None], seconds: float) -> bool:
    """Run `work` in a daemon thread; True if it finished within `seconds`. A stuck upload
    (a network stall, a credential lookup) is left behind instead of holding up the stop."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(max(seconds, 0.0))
    return not thread.is_alive()


def save(
    root: str,
    fs: Any,
    base: str,
    *,
    max_bytes: int,
    budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    stamp: str | None = None,
    upload: Callable[[Any, str, str], None] | None = None,
) -> dict[str, Any]:
    """Copy `root` to `<base>/autosave/<stamp>/files/` on `fs` and write the manifest there.

    Returns the manifest. Uploads stop at the budget (minus time for the manifest); files not
    reached are listed as skipped for the time budget."""
    started = clock()
    deadline = started + budget_seconds
    stamp = stamp or _utc_stamp()
    dest = f"{base.rstrip('/')}/autosave/{stamp}"
    put = upload or (lambda f, local, remote: f.put_file(local, remote))
    chosen = plan(root, max_bytes)
    saved: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    stop = threading.Event()

    def upload_all() -> None:
        for rel, size in chosen["files"]:
            if stop.is_set():
                return
            try:
                put(fs, os.path.join(root, *rel.split("/")), f"{dest}/files/{rel}")
                saved.append({"path": rel, "bytes": size})
            except Exception as error:  # one bad file must not end the save
                failed.append({"path": rel, "bytes": size, "reason": f"upload failed: {error}"})

    complete = _run_with_deadline(upload_all, deadline - MANIFEST_RESERVE - clock())
    stop.set()
    done = {entry["path"] for entry in saved + failed}
    late = [
        {"path": rel, "bytes": size, "reason": "time budget"}
        for rel, size in chosen["files"]
        if rel not in done
    ]
    notes = list(chosen["notes"])
    if late:
        notes.append(f"the time budget ({budget_seconds:.0f} s) ran out: {len(late)} file(s)")
    manifest = {
        "version": 1,
        "source": root,
        "destination": dest,
        "timestamp": stamp,
        "capBytes": max_bytes,
        "budgetSeconds": round(budget_seconds, 1),
        "complete": complete and not late and not failed,
        "savedBytes": sum(entry["bytes"] for entry in saved),
        "saved": list(saved),
        "skipped": chosen["skipped"] + failed + late,
        "notes": notes,
    }
    body = json.dumps(manifest, indent=1).encode()

    def write_manifest() -> None:
        fs.pipe_file(f"{dest}/{MANIFEST}", body)

    if not _run_with_deadline(write_manifest, max(deadline - clock(), 1.0)):
        manifest["notes"].append("the manifest could not be written in time")
    return manifest


def list_snapshots(fs: Any, base: str) -> list[dict[str, Any]]:
    """The autosaves under `<base>/autosave/`, oldest first, with their manifests' counts."""
    root = f"{base.rstrip('/')}/autosave"
    if not fs.exists(root):
        return []
    snapshots = []
    for path in sorted(fs.ls(root, detail=False)):
        stamp = path.rstrip("/").rsplit("/", 1)[-1]
        entry: dict[str, Any] = {"timestamp": stamp}
        try:
            manifest = json.loads(fs.cat_file(f"{root}/{stamp}/{MANIFEST}"))
            entry.update(
                saved=len(manifest["saved"]),
                skipped=len(manifest["skipped"]),
                savedBytes=manifest["savedBytes"],
                complete=manifest["complete"],
            )
        except (OSError, ValueError, KeyError):
            entry["note"] = "no manifest: the save was cut short"
        snapshots.append(entry)
    return snapshots


def restore(
    fs: Any, base: str, stamp: str, target: str, *, overwrite: bool = False
) -> dict[str, list[str]]:
    """Download one autosave's files into `target`. Existing files are kept unless
    `overwrite`: restoring next to newer work must not clobber it."""
    files_root = f"{base.rstrip('/')}/autosave/{stamp}/files"
    if not fs.exists(files_root):
        raise FileNotFoundError(f"no autosave {stamp!r} under {base}")
    prefix = fs._strip_protocol(files_root).rstrip("/") + "/"
    result: dict[str, list[str]] = {"restored": [], "kept": []}
    for remote in sorted(fs.find(files_root)):
        rel = remote[len(prefix) :] if remote.startswith(prefix) else remote.rsplit("/", 1)[-1]
        local = os.path.join(target, *rel.split("/"))
        if os.path.exists(local) and not overwrite:
            result["kept"].append(rel)
            continue
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fs.get_file(remote, local)
        result["restored"].append(rel)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python3 {MOUNT_PATH}",
        description="Autosaves of your server's working directory in $PERSISTENT_BUCKET/autosave/.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list the autosaves")
    action.add_argument("--restore", metavar="TIMESTAMP", help="download one autosave")
    action.add_argument("--save", action="store_true", help="save now (the preStop hook)")
    parser.add_argument("--bucket", default=os.environ.get("PERSISTENT_BUCKET", ""))
    parser.add_argument("--to", help="restore into this directory (default ./autosave-TIMESTAMP)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--dir", default=os.environ.get("HOME") or os.getcwd())
    parser.add_argument("--max-megabytes", type=float, default=500)
    parser.add_argument("--budget", type=float, default=60, help="seconds for the whole save")
    return parser


def run_save(args: argparse.Namespace, started: float) -> int:
    """The preStop hook: save, print a summary, return 0 whatever happened."""
    try:
        if not args.bucket:
            print("autosave: no $PERSISTENT_BUCKET, nothing saved")
            return 0
        try:
            fs, base = filesystem(args.bucket)
        except ImportError as error:
            print(f"autosave: skipped, this image cannot write to {args.bucket} ({error})")
            return 0
        manifest = save(
            args.dir,
            fs,
            base,
            max_bytes=int(args.max_megabytes * 1024 * 1024),
            budget_seconds=args.budget - (time.monotonic() - started),
        )
        print(
            f"autosave: {len(manifest['saved'])} file(s), {manifest['savedBytes']} bytes to "
            f"{args.bucket}/autosave/{manifest['timestamp']}/ "
            f"({len(manifest['skipped'])} skipped, see {MANIFEST})"
        )
    except Exception as error:  # the stop must go on
        print(f"autosave: failed, nothing more saved ({error!r})")
    return 0


def main(argv: list[str]) -> int:
    """Command line: --save (the hook), --list, --restore TIMESTAMP."""
    started = time.monotonic()
    args = _parser().parse_args(argv)
    if args.save:
        return run_save(args, started)
    if not args.bucket:
        print("no $PERSISTENT_BUCKET: give --bucket URL", file=sys.stderr)
        return 2
    fs, base = filesystem(args.bucket)
    if args.list:
        snapshots = list_snapshots(fs, base)
        for entry in snapshots:
            detail = entry.get("note") or (
                f"{entry['saved']} file(s), {entry['savedBytes']} bytes, "
                f"{entry['skipped']} skipped" + ("" if entry["complete"] else ", incomplete")
            )
            print(f"{entry['timestamp']}  {detail}")
        if not snapshots:
            print(f"no autosaves under {args.bucket}/autosave/")
        return 0
    target = args.to or f"autosave-{args.restore}"
    result = restore(fs, base, args.restore, target, overwrite=args.overwrite)
    print(f"restored {len(result['restored'])} file(s) into {target}")
    if result["kept"]:
        print(f"kept {len(result['kept'])} existing file(s) (--overwrite replaces them)")
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    # Exit without waiting for an upload thread left behind at the deadline.
    os._exit(code)
