"""GCP's backup upload makes only the calls its identity may make: the metadata server's token
request and one objects.insert per object, no listing, no existence check.

A real JupyterHub sqlite database (the pinned JupyterHub's ORM) is backed up with the shipped
`hub_db.py` (sqlite's backup API), then the shipped `backup_upload.py` runs as the CronJob runs
it, in a separate interpreter, against a local HTTP server standing in for both the metadata
server and Cloud Storage, which records every request it gets. The AWS upload command is
checked for its one call per object."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jupyterhub import orm

from pangeo_binder.hub import backup as backup_module
from pangeo_binder.hub.incluster import backup_upload, hub_db, source
from pangeo_binder.outputs import BACKUP_PREFIX

TOKEN = "ya29.fake-token"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeGoogle:
    """Records every request; answers the token request and simple uploads as GCS does."""

    calls: list[Call] = field(default_factory=list)
    refuse_uploads: bool = False
    wrong_md5: bool = False
    objects: dict[str, bytes] = field(default_factory=dict)
    url: str = ""


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _record(self) -> Call:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            call = Call(
                self.command,
                parsed.path,
                urllib.parse.parse_qs(parsed.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            fake.calls.append(call)
            return call

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            call = self._record()
            if call.path == backup_upload.TOKEN_PATH and call.headers.get("metadata-flavor") == (
                "Google"
            ):
                self._answer(200, {"access_token": TOKEN, "expires_in": 3599})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            call = self._record()
            prefix = "/upload/storage/v1/b/"
            if not call.path.startswith(prefix) or call.query.get("uploadType") != ["media"]:
                self._answer(404, {"error": "not found"})
                return
            if fake.refuse_uploads:
                self._answer(403, {"error": {"code": 403, "message": "no storage.objects.create"}})
                return
            bucket = call.path[len(prefix) :].removesuffix("/o")
            (name,) = call.query["name"]
            fake.objects[f"{bucket}/{name}"] = call.body
            md5 = base64.b64encode(hashlib.md5(call.body).digest()).decode()
            self._answer(
                200,
                {
                    "bucket": bucket,
                    "name": name,
                    "size": str(len(call.body)),
                    "md5Hash": "AAAA" + md5[4:] if fake.wrong_md5 else md5,
                },
            )

        def do_HEAD(self) -> None:
            self._record()
            self._answer(405, {})

        do_PUT = do_DELETE = do_PATCH = do_HEAD

    return Handler


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _backup(tmp_path: Path, users: list[str]) -> Path:
    """A real hub database, backed up by the shipped script's backup API into `out/`."""
    db = tmp_path / "jupyterhub.sqlite"
    session = orm.new_session_factory(f"sqlite:///{db}")()
    for name in users:
        session.add(orm.User(name=name))
    session.commit()
    session.close()
    out = tmp_path / "out"
    assert hub_db.main(["backup", "--db", str(db), "--out", str(out)]) == 0
    return out


def _run_upload(tmp_path: Path, out: Path, fake: FakeGoogle) -> subprocess.CompletedProcess:
    """The ConfigMap's text, run as the CronJob's upload container runs it."""
    script = tmp_path / backup_module.UPLOAD_SCRIPT
    script.write_text(backup_module.backup_configmap("binder")["data"][script.name])
    assert script.read_text() == source("backup_upload")
    command = backup_module.upload_command("gcp")
    assert command[:2] == ["python3", f"{backup_module.SCRIPT_DIR}/{script.name}"]
    args = [a.replace(backup_module.OUT_DIR, str(out)) for a in command[2:]]
    env = {
        "DEST": f"gs://pb-staging-persistent/{BACKUP_PREFIX}",
        "GCE_METADATA_HOST": fake.url.removeprefix("http://"),
        "STORAGE_EMULATOR_HOST": fake.url,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-I", str(script), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_the_upload_makes_only_the_token_call_and_one_insert_per_object(
    tmp_path: Path, google: FakeGoogle
) -> None:
    out = _backup(tmp_path, ["alice", "bob"])
    latest = json.loads((out / hub_db.LATEST).read_text())
    done = _run_upload(tmp_path, out, google)
    assert done.returncode == 0, done.stderr
    copy_name = f"{BACKUP_PREFIX}{latest['object']}"
    assert [(c.method, c.path, c.query) for c in google.calls] == [
        ("GET", backup_upload.TOKEN_PATH, {}),
        (
            "POST",
            "/upload/storage/v1/b/pb-staging-persistent/o",
            {"uploadType": ["media"], "name": [copy_name]},
        ),
        (
            "POST",
            "/upload/storage/v1/b/pb-staging-persistent/o",
            {"uploadType": ["media"], "name": [f"{BACKUP_PREFIX}latest.json"]},
        ),
    ], "no list, no get, no bucket call: only what storage.objects.create allows"
    token, *uploads = google.calls
    assert token.headers["metadata-flavor"] == "Google"
    assert "authorization" not in token.headers
    assert {u.headers["authorization"] for u in uploads} == {f"Bearer {TOKEN}"}
    # What landed is the backup API's copy, byte for byte, and a sound hub database.
    stored = google.objects[f"pb-staging-persistent/{copy_name}"]
    assert stored == (out / latest["object"]).read_bytes()
    landed = tmp_path / "landed.sqlite"
    landed.write_bytes(stored)
    assert hub_db.check(str(landed))["users"] == 2
    assert json.loads(google.objects[f"pb-staging-persistent/{BACKUP_PREFIX}latest.json"]) == latest
    assert json.loads(done.stdout) == {"uploaded": [copy_name, f"{BACKUP_PREFIX}latest.json"]}


def test_a_refused_upload_fails_the_job_before_latest_json(
    tmp_path: Path, google: FakeGoogle
) -> None:
    out = _backup(tmp_path, ["alice"])
    google.refuse_uploads = True
    done = _run_upload(tmp_path, out, google)
    assert done.returncode == 1
    assert "403" in done.stderr
    assert [c.method for c in google.calls] == ["GET", "POST"], "stops at the first refusal"
    assert google.objects == {}


def test_an_upload_whose_checksum_differs_fails_the_job(tmp_path: Path, google: FakeGoogle) -> None:
    out = _backup(tmp_path, ["alice"])
    google.wrong_md5 = True
    done = _run_upload(tmp_path, out, google)
    assert done.returncode == 1
    assert "MD5" in done.stderr


@pytest.mark.parametrize(
    "dest", ["s3://bucket/backups/", "gs://bucket/backups", "gs:///backups/", ""]
)
def test_a_destination_that_is_not_a_gcs_prefix_is_refused(dest: str) -> None:
    with pytest.raises(backup_upload.UploadError):
        backup_upload.split_destination(dest)


def test_the_aws_upload_is_one_put_object_per_file(tmp_path: Path) -> None:
    """`aws s3api put-object` is one PutObject request (the backup role's only action); the
    script is run with a stand-in `aws` that records its arguments."""
    out = _backup(tmp_path, ["alice"])
    latest = json.loads((out / hub_db.LATEST).read_text())
    command = backup_module.upload_command("aws")
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace(backup_module.OUT_DIR, str(out))
    assert "aws s3 " not in script, "s3 cp goes multipart above 8 MiB"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "aws.log"
    fake_aws = bin_dir / "aws"
    fake_aws.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    fake_aws.chmod(0o755)
    done = subprocess.run(
        ["sh", "-c", script],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "DEST": f"s3://pb-staging-persistent/{BACKUP_PREFIX}",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    for call, name in zip(calls, [latest["object"], hub_db.LATEST], strict=True):
        assert call.startswith("s3api put-object ")
        assert (
            f"--bucket pb-staging-persistent --key {BACKUP_PREFIX}{name} --body {out}/{name}"
            in call
        )
