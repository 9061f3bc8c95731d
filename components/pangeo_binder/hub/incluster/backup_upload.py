"""Upload the hub database's backup to Cloud Storage with one create call per object.

Runs in the backup CronJob's upload container on GCP (the hub's own image: Python, standard
library only), after `hub_db.py backup` has written the copy and `latest.json` to a local
directory. It makes exactly these HTTP calls, and no others:

1. `GET http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token`
   with `Metadata-Flavor: Google`: an access token for the pod's Google service account. On
   GKE with workload identity, the GKE metadata server answers it for the service account the
   job's Kubernetes account is bound to. The address, not `metadata.google.internal`: no DNS
   lookup, and the address is what network policy sees on Dataplane V2.
2. For each file, the copy first and `latest.json` last (so `latest.json` never names an
   object that is not there): `POST https://storage.googleapis.com/upload/storage/v1/b/
   <bucket>/o?uploadType=media&name=<object>`, the JSON API's simple upload (objects.insert).

Why not `gcloud storage cp`: the backup identity's IAM condition admits only object names
under the backup prefix, so every bucket-level call is refused. gsutil's `cp` to a path lists
the bucket first to see whether the path is a "directory" (GoogleCloudPlatform/gsutil#546,
which made Google add `storage.objects.list` to cp's documented permissions), and gcloud
storage stats the destination before writing. A simple upload is one objects.insert, which
needs `storage.objects.create` on the object (and `storage.objects.delete` when it
overwrites, as `latest.json` does: the Object User role has both, the condition keeps them
inside the prefix). No existence check, no listing, no bucket metadata.

The response's `md5Hash` is compared with the file's own MD5, so a corrupted upload fails
the job (and the backup alert sees it) without a second call. `GCE_METADATA_HOST` and
`STORAGE_EMULATOR_HOST`, the variables Google's own client libraries read, point the two
endpoints elsewhere (the tests' recording server).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

LATEST = "latest.json"  # hub_db.LATEST: the manifest, uploaded last
METADATA_HOST = "169.254.169.254"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
STORAGE_URL = "https://storage.googleapis.com"
TIMEOUT_SECONDS = 120.0


class UploadError(RuntimeError):
    """A call the upload needs was refused or answered with something unexpected."""


def metadata_base() -> str:
    host = os.environ.get("GCE_METADATA_HOST", METADATA_HOST)
    return host if "://" in host else f"http://{host}"


def storage_base() -> str:
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if not host:
        return STORAGE_URL
    return host.rstrip("/") if "://" in host else f"http://{host}"


def _call(request: urllib.request.Request) -> dict[str, object]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise UploadError(
            f"{request.get_method()} {request.full_url}: {exc.code} {detail}"
        ) from exc
    except (urllib.error.URLError, ValueError) as exc:
        raise UploadError(f"{request.get_method()} {request.full_url}: {exc}") from exc


def access_token() -> str:
    """The pod's access token, from the metadata server."""
    request = urllib.request.Request(
        metadata_base() + TOKEN_PATH, headers={"Metadata-Flavor": "Google"}, method="GET"
    )
    token = _call(request).get("access_token")
    if not isinstance(token, str) or not token:
        raise UploadError("the metadata server's answer has no access_token")
    return token


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")


def upload(path: Path, bucket: str, name: str, token: str) -> dict[str, object]:
    """One simple upload (objects.insert, `uploadType=media`) of `path` as `name`."""
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    url = f"{storage_base()}/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?{query}"
    size = path.stat().st_size
    with path.open("rb") as body:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
            },
        )
        result = _call(request)
    if result.get("name") != name or str(result.get("size")) != str(size):
        raise UploadError(f"{name}: the upload's answer does not describe it: {result}")
    if result.get("md5Hash") not in (None, _md5(path)):
        raise UploadError(f"{name}: uploaded MD5 {result.get('md5Hash')} differs from the file's")
    return result


def split_destination(dest: str) -> tuple[str, str]:
    """`gs://bucket/prefix/` -> (`bucket`, `prefix/`)."""
    if not dest.startswith("gs://") or not dest.endswith("/"):
        raise UploadError(f"destination must be gs://<bucket>/<prefix>/, got {dest!r}")
    bucket, _, prefix = dest[len("gs://") :].partition("/")
    if not bucket:
        raise UploadError(f"no bucket in {dest!r}")
    return bucket, prefix


def upload_backup(directory: str, dest: str) -> list[str]:
    """Upload the copies in `directory` (`jupyterhub-*.sqlite`), then `latest.json`, under
    `dest`; return the object names written, in order."""
    bucket, prefix = split_destination(dest)
    out = Path(directory)
    copies = sorted(out.glob("jupyterhub-*.sqlite"))
    if not copies or not (out / LATEST).is_file():
        raise UploadError(f"{directory}: no copy or no {LATEST} to upload")
    token = access_token()
    written = []
    for path in [*copies, out / LATEST]:
        upload(path, bucket, prefix + path.name, token)
        written.append(prefix + path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backup_upload", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="directory holding the copy and latest.json")
    parser.add_argument(
        "--dest", default=os.environ.get("DEST", ""), help="gs://<bucket>/<prefix>/ ($DEST)"
    )
    args = parser.parse_args(argv)
    try:
        written = upload_backup(args.dir, args.dest)
    except (UploadError, OSError) as exc:
        print(f"backup_upload: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"uploaded": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
