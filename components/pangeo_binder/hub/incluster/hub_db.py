"""Back up and restore the hub's sqlite database.

`backup` runs in the cluster, in the backup CronJob's first container (the hub's own image:
Python with sqlite3, already on the node). It takes a consistent copy with sqlite's online
backup API, never a file copy: the API reads under a shared lock, so a transaction the hub
holds open is either wholly in the copy (committed before) or not at all. It writes the copy
and `latest.json` to a local directory; the CronJob's second container uploads both to the
persistent bucket (`backup_upload.py` on GCP, `aws s3api put-object` on AWS), the copy first,
so `latest.json` never names an object that is not there.

`restore` runs on an operator's machine (docs/howto/restore.md): it fetches a backup (any
fsspec URL: a local file, gs://, s3:// with gcsfs / s3fs installed), checks it is a sound
JupyterHub database, and puts it in place atomically, keeping the file it replaces.

Standard library only for `backup` (the hub image has no fsspec); `restore` imports fsspec.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

LATEST = "latest.json"
# How long a backup waits for the hub to finish a write before it gives up (and the job fails,
# and the alert sees it). sqlite's own backup step would retry a busy lock forever.
LOCK_WAIT_SECONDS = 60.0
# A JupyterHub database has these tables (jupyterhub/orm.py); a file without them is not one.
HUB_TABLES = {"users", "servers", "api_tokens", "alembic_version"}


class BadBackup(ValueError):
    """A file that is not a sound JupyterHub database."""


def snapshot(db_path: str, out_path: str, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
    """Copy `db_path` to `out_path` with sqlite's backup API, opening the source read-only
    (the job mounts the hub's volume read-only). A read transaction is taken first, waiting
    at most `lock_wait` seconds for a writer; the copy is then made inside it, all pages in
    one step: one consistent read of committed data."""
    source = sqlite3.connect(
        f"file:{db_path}?mode=ro", uri=True, timeout=lock_wait, isolation_level=None
    )
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the shared lock
        target = sqlite3.connect(out_path)
        try:
            source.backup(target)
        finally:
            target.close()
        source.execute("COMMIT")
    finally:
        source.close()


def check(path: str) -> dict[str, int]:
    """Raise BadBackup unless `path` passes sqlite's integrity check and has JupyterHub's
    tables; return the row count of each of those tables."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if result != "ok":
                raise BadBackup(f"{path}: integrity check says {result}")
            missing = HUB_TABLES - tables
            if missing:
                raise BadBackup(f"{path}: not a JupyterHub database (no {sorted(missing)})")
            return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in HUB_TABLES}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise BadBackup(f"{path}: {exc}") from exc


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup(
    db_path: str, out_dir: str, now: datetime | None = None, lock_wait: float = LOCK_WAIT_SECONDS
) -> dict[str, object]:
    """Snapshot the database into `out_dir` as `jupyterhub-<UTC time>.sqlite`, check it, and
    write `latest.json` naming it (what the upload step publishes last)."""
    now = now or datetime.now(timezone.utc)
    name = f"jupyterhub-{now.strftime('%Y%m%dT%H%M%SZ')}.sqlite"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{name}.partial"
    snapshot(db_path, str(partial), lock_wait)
    rows = check(str(partial))
    os.replace(partial, out / name)
    manifest: dict[str, object] = {
        "object": name,
        "time": now.isoformat(),
        "unixTime": int(now.timestamp()),
        "bytes": (out / name).stat().st_size,
        "sha256": _sha256(str(out / name)),
        "rows": rows,
    }
    (out / LATEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def resolve(source: str) -> str:
    """A backup's URL: `source` itself, or, for a prefix ending in `/`, the object its
    `latest.json` names."""
    if not source.endswith("/"):
        return source
    import fsspec

    with fsspec.open(source + LATEST, "rt") as f:
        return source + json.load(f)["object"]


def restore(source: str, db_path: str, now: datetime | None = None) -> dict[str, object]:
    """Put the backup at `source` (a URL, or a prefix: its latest) at `db_path`. The backup
    is fetched and checked beside the target first; the file it replaces is kept as
    `<db>.before-restore-<time>`. Stop the hub before, start it after (docs/howto/restore.md)."""
    import fsspec

    url = resolve(source)
    target = Path(db_path)
    now = now or datetime.now(timezone.utc)
    handle, partial = tempfile.mkstemp(prefix=".restore-", dir=target.parent)
    os.close(handle)
    try:
        with fsspec.open(url, "rb") as src, open(partial, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        rows = check(partial)
        kept = None
        if target.exists():
            kept = target.with_name(f"{target.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")
            os.replace(target, kept)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return {"restored": url, "to": str(target), "kept": str(kept) if kept else None, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub_db", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("backup", help="snapshot the database into a directory")
    take.add_argument("--db", required=True, help="the hub's sqlite file")
    take.add_argument("--out", required=True, help="directory for the copy and latest.json")
    put = commands.add_parser("restore", help="put a backup in place of the database")
    put.add_argument(
        "--from", dest="source", required=True, help="backup URL or path, or a prefix ending in /"
    )
    put.add_argument("--to", required=True, help="the sqlite file to replace")
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            result = backup(args.db, args.out)
        else:
            result = restore(args.source, args.to)
    except (BadBackup, sqlite3.Error, OSError) as exc:
        print(f"hub_db {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
