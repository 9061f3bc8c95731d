"""The hub database's backups: the in-cluster script against a real JupyterHub sqlite database
(made by the pinned JupyterHub's own ORM) with fsspec's `memory://` standing in for the bucket;
the CronJob as the program registers it, against the rendered hub pod and Kubernetes' schemas;
the identities that may write only `backups/`; the alert rule."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest
from jupyterhub import orm

from chart_render import render, validate_objects
from conftest import release
from harness import Run
from pangeo_binder import cron
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.hub import backup as backup_module
from pangeo_binder.hub.config import BackupSettings
from pangeo_binder.hub.incluster import hub_db, source
from pangeo_binder.outputs import BACKUP_PREFIX, LEGACY_BACKUP_PREFIXES

CRONJOB = "kubernetes:batch/v1:CronJob"


def _hub_database(path: Path, users: list[str]) -> None:
    """A database as JupyterHub creates it (its ORM, alembic stamp included), with users."""
    session = orm.new_session_factory(f"sqlite:///{path}")()
    for name in users:
        session.add(orm.User(name=name))
    session.commit()
    session.close()


def _users(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM users"))
    finally:
        db.close()


def _upload(out: Path, prefix: str) -> None:
    """What the CronJob's upload container does with the cloud's CLI: the copy, then
    latest.json, to the bucket prefix (here an fsspec stand-in)."""
    for copy in out.glob("jupyterhub-*.sqlite"):
        with fsspec.open(prefix + copy.name, "wb") as f:
            f.write(copy.read_bytes())
    with fsspec.open(prefix + hub_db.LATEST, "wb") as f:
        f.write((out / hub_db.LATEST).read_bytes())


@pytest.fixture
def bucket() -> str:
    return f"memory://bucket-{uuid.uuid4().hex}/_backups/"


def test_backup_then_restore_brings_the_rows_back(tmp_path: Path, bucket: str) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice", "bob"])
    manifest = hub_db.backup(str(db), str(tmp_path / "out"), datetime(2026, 12, 3, 6, 17, 0))
    assert manifest["object"] == "jupyterhub-20261203T061700Z.sqlite"
    assert manifest["rows"]["users"] == 2
    _upload(tmp_path / "out", bucket)
    # Mistakes: users deleted, then the file itself destroyed.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM users")
    assert _users(db) == []
    db.write_bytes(b"not a database any more")

    result = hub_db.restore(bucket, str(db))  # a prefix: its latest.json names the backup

    assert result["restored"] == bucket + manifest["object"]
    assert _users(db) == ["alice", "bob"]
    assert Path(str(result["kept"])).read_bytes() == b"not a database any more"
    assert hub_db.check(str(db))["users"] == 2


def test_a_backup_taken_while_the_hub_holds_a_write_transaction_is_consistent(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    writer = sqlite3.connect(db, isolation_level=None)
    # RESERVED lock: an open write transaction, as the hub holds while it commits a spawn.
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO users (name, admin, cookie_id) VALUES ('carol', 0, 'carol-cookie')")
    hub_db.backup(str(db), str(tmp_path / "during"))
    (copy,) = (tmp_path / "during").glob("jupyterhub-*.sqlite")
    assert _users(copy) == ["alice"], "uncommitted rows never reach the copy"

    writer.execute("COMMIT")
    writer.close()
    hub_db.backup(str(db), str(tmp_path / "after"))
    (copy,) = (tmp_path / "after").glob("jupyterhub-*.sqlite")
    assert _users(copy) == ["alice", "carol"]


def test_a_backup_blocked_by_an_exclusive_writer_waits_for_its_commit(tmp_path: Path) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")  # no reader may start until it ends
    writer.execute("INSERT INTO users (name, admin, cookie_id) VALUES ('erin', 0, 'erin-cookie')")

    def commit_later() -> None:
        time.sleep(0.5)
        writer.execute("COMMIT")

    thread = threading.Thread(target=commit_later)
    thread.start()
    started = time.monotonic()
    hub_db.backup(str(db), str(tmp_path / "out"))
    thread.join()
    writer.close()
    assert time.monotonic() - started >= 0.4, "the backup waited for the lock"
    (copy,) = (tmp_path / "out").glob("jupyterhub-*.sqlite")
    assert _users(copy) == ["alice", "erin"]


def test_a_backup_gives_up_on_a_lock_held_too_long(tmp_path: Path) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        hub_db.backup(str(db), str(tmp_path / "out"), lock_wait=0.3)
    writer.execute("ROLLBACK")
    writer.close()
    assert list((tmp_path / "out").glob("jupyterhub-*.sqlite")) == []


def test_a_bad_backup_is_refused_and_the_database_left_alone(tmp_path: Path, bucket: str) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    with fsspec.open(bucket + "broken.sqlite", "wb") as f:
        f.write(b"SQLite format 3\x00" + b"\x00" * 100)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    for bad in (bucket + "broken.sqlite", str(other)):
        with pytest.raises(hub_db.BadBackup):
            hub_db.restore(bad, str(db))
    assert _users(db) == ["alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jupyterhub.sqlite", "other.sqlite"]


def test_the_shipped_script_runs_alone_without_fsspec(tmp_path: Path) -> None:
    """The ConfigMap's text, run as the job runs it (`python3 hub_db.py backup ...`) in an
    interpreter where fsspec cannot be imported (the hub image has none)."""
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    script = tmp_path / "hub_db.py"
    script.write_text(backup_module.backup_configmap("binder")["data"]["hub_db.py"])
    assert script.read_text() == source("hub_db")
    blocker = "import sys, runpy; sys.modules['fsspec'] = None; sys.argv = sys.argv[1:]; "
    blocker += "runpy.run_path(sys.argv[0], run_name='__main__')"
    args = ["backup", "--db", str(db), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-I", "-c", blocker, str(script), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    latest = json.loads((tmp_path / "out" / "latest.json").read_text())
    assert printed == latest and latest["rows"]["users"] == 1
    assert (tmp_path / "out" / latest["object"]).stat().st_size == latest["bytes"]


def test_the_restore_command_line(tmp_path: Path, bucket: str, capsys: Any) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    _hub_database(db, ["alice"])
    assert hub_db.main(["backup", "--db", str(db), "--out", str(tmp_path / "out")]) == 0
    _upload(tmp_path / "out", bucket)
    db.unlink()
    assert hub_db.main(["restore", "--from", bucket, "--to", str(db)]) == 0
    assert _users(db) == ["alice"]
    assert hub_db.main(["restore", "--from", str(tmp_path / "nothing"), "--to", str(db)]) == 1
    assert "hub_db restore:" in capsys.readouterr().err


# --- the CronJob ---------------------------------------------------------------------------


def _cronjob(run: Run, cloud: str) -> dict[str, Any]:
    reg = run.one(CRONJOB, f"{cloud}-hub-backup")
    return {"apiVersion": "batch/v1", "kind": "CronJob", **reg.inputs}


@pytest.mark.usefixtures("chart_files")
def test_the_cronjob_lands_beside_the_hub_and_reads_its_volume(case: tuple[Run, str]) -> None:
    run, cloud = case
    job = _cronjob(run, cloud)
    validate_objects([job])
    hub_objects = render(
        JUPYTERHUB,
        release(run, cloud, "jupyterhub")["values"],
        release="jupyterhub",
        namespace="binder",
    )
    (hub,) = [
        o for o in hub_objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "hub"
    ]
    hub_pod = hub["spec"]["template"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= hub_pod["metadata"]["labels"].items()
    hub_claim = next(v for v in hub_pod["spec"]["volumes"] if "persistentVolumeClaim" in v)
    (db_volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert db_volume["persistentVolumeClaim"] == {
        "claimName": hub_claim["persistentVolumeClaim"]["claimName"],
        "readOnly": True,
    }
    hub_container = hub_pod["spec"]["containers"][0]
    hub_mount = next(m for m in hub_container["volumeMounts"] if m["name"] == hub_claim["name"])
    (snapshot,) = pod["initContainers"]
    assert snapshot["image"] == hub_container["image"], "the hub's own image, already pulled"
    assert f"{hub_mount['mountPath']}/jupyterhub.sqlite" in snapshot["command"]
    assert pod["securityContext"]["runAsUser"] == hub["spec"]["template"]["spec"][
        "securityContext"
    ].get("runAsUser", 1000)
    assert pod["serviceAccountName"] == "hub-db-backup"
    (upload,) = pod["containers"]
    if cloud == "gcp":
        # The upload is the shipped backup_upload.py in the hub's image (its Python), read
        # from the job's ConfigMap: no gcloud, whose cp lists the bucket first.
        assert upload["image"] == hub_container["image"]
        assert upload["command"][:2] == ["python3", "/etc/hub-db-backup/backup_upload.py"]
        script_volume = next(v for v in pod["volumes"] if "configMap" in v)
        shipped = run.one("kubernetes:core/v1:ConfigMap", f"{cloud}-hub-backup-script").inputs
        assert shipped["metadata"]["name"] == script_volume["configMap"]["name"]
        assert shipped["data"]["backup_upload.py"] == source("backup_upload")
        assert {
            "name": script_volume["name"],
            "mountPath": "/etc/hub-db-backup",
            "readOnly": True,
        } in (upload["volumeMounts"])
    else:
        assert upload["image"].startswith("public.ecr.aws/aws-cli/aws-cli:")
        assert "aws s3api put-object" in upload["command"][2]
    bucket = run.one(
        "gcp:storage/bucket:Bucket" if cloud == "gcp" else "aws:s3/bucket:Bucket",
        f"{cloud}-storage-persistent",
    )
    assert bucket.inputs  # the persistent bucket exists; the job writes under its backups/
    dest = next(e["value"] for e in upload["env"] if e["name"] == "DEST")
    assert dest.endswith("-persistent/_backups/")
    assert dest.startswith("gs://" if cloud == "gcp" else "s3://")
    assert job["spec"]["schedule"] == "17 */6 * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_backup_account_carries_the_backup_identity(case: tuple[Run, str]) -> None:
    run, cloud = case
    sa = run.one("kubernetes:core/v1:ServiceAccount", f"{cloud}-hub-backup-sa").inputs
    assert sa["metadata"]["name"] == "hub-db-backup"
    annotations = sa["metadata"]["annotations"]
    key = "iam.gke.io/gcp-service-account" if cloud == "gcp" else "eks.amazonaws.com/role-arn"
    assert set(annotations) == {key}
    assert "backup" in annotations[key]
    users = run.one("kubernetes:core/v1:ServiceAccount", f"{cloud}-hub-user-sa").inputs
    assert users["metadata"]["annotations"][key] != annotations[key]


def test_gcp_backup_identity_writes_only_backups(staging: Run) -> None:
    grants = [
        r
        for r in staging.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        if "backup" in r.name
    ]
    (grant,) = grants
    bucket = staging.one("gcp:storage/bucket:Bucket", "gcp-storage-persistent").inputs["name"]
    condition = grant.inputs["condition"]
    assert condition["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/_backups/")'
    ), "new copies only under the prefix no GitHub login can be"
    account = staging.one("gcp:serviceaccount/account:Account", "gcp-storage-backup")
    # Nothing else is granted to the backup account: no other bucket, no project role.
    member_of = [
        r
        for r in staging.registrations
        if r.inputs.get("member") == grant.inputs["member"] and r is not grant
    ]
    assert member_of == []
    binding = staging.one("gcp:serviceaccount/iAMMember:IAMMember", "gcp-storage-backup-wi")
    assert binding.inputs["member"].endswith("[binder/hub-db-backup]")
    assert account.inputs["accountId"] == "pb-staging-backup"


def test_gcp_users_cannot_reach_the_backups(staging: Run) -> None:
    bucket = staging.one("gcp:storage/bucket:Bucket", "gcp-storage-persistent").inputs["name"]
    grant = staging.one(
        "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp-storage-persistent-users"
    )
    # Fenced off the new prefix and the first release's, whose copies stay until they expire.
    assert grant.inputs["condition"]["expression"] == (
        f'!(resource.name.startsWith("projects/_/buckets/{bucket}/objects/_backups/")'
        f' || resource.name.startsWith("projects/_/buckets/{bucket}/objects/backups/"))'
    )
    scratch = staging.one(
        "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp-storage-scratch-users"
    )
    assert "condition" not in scratch.inputs


def test_gcp_backups_expire_by_a_lifecycle_rule_on_the_prefix(staging: Run) -> None:
    persistent = staging.one("gcp:storage/bucket:Bucket", "gcp-storage-persistent").inputs
    (rule,) = persistent["lifecycleRules"]
    assert rule["action"] == {"type": "Delete"}
    assert rule["condition"]["matchesPrefixes"] == ["_backups/", "backups/"]
    assert rule["condition"]["age"] == 30
    scratch = staging.one("gcp:storage/bucket:Bucket", "gcp-storage-scratch").inputs
    assert all("matchesPrefixes" not in r["condition"] for r in scratch["lifecycleRules"])


def test_aws_backup_role_may_only_put_under_backups(staging: Run) -> None:
    policy = staging.one("aws:iam/rolePolicy:RolePolicy", "aws-storage-backup-policy")
    document = json.loads(policy.inputs["policy"])
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["s3:PutObject"]
    assert statement["Resource"].endswith("-persistent/_backups/*")
    role = staging.one("aws:iam/role:Role", "aws-storage-backup")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
    assert "system:serviceaccount:binder:hub-db-backup" in condition.values()
    attachments = [
        r
        for r in staging.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("aws-storage-backup")
    ]
    assert attachments == []


def test_aws_users_cannot_reach_the_backups(staging: Run) -> None:
    policy = staging.one("aws:iam/rolePolicy:RolePolicy", "aws-storage-users-policy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*"
    bucket = staging.one("aws:s3/bucket:Bucket", "aws-storage-persistent").inputs["bucket"]
    assert deny["Resource"] == [
        f"arn:aws:s3:::{bucket}/_backups/*",
        f"arn:aws:s3:::{bucket}/backups/*",
    ]


def test_aws_backups_expire_by_a_lifecycle_rule_on_the_prefix(staging: Run) -> None:
    lifecycle = staging.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws-storage-persistent-lifecycle",
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["expire-backups"]["filter"] == {"prefix": "_backups/"}
    assert rules["expire-backups"]["expiration"] == {"days": 30}
    # The first release's copies are not moved: they age out where they are.
    assert rules["expire-legacy-backups"]["filter"] == {"prefix": "backups/"}
    assert rules["expire-legacy-backups"]["expiration"] == {"days": 30}


def test_backups_off_means_no_job_and_no_identity() -> None:
    from harness import run_program, stack_config, with_value

    config = with_value(stack_config("staging"), "hub.backup.enabled", False)
    run = run_program("staging", config=config)
    assert run.of_type(CRONJOB) == []
    assert not [r for r in run.registrations if "backup" in r.name]


# --- schedule and alert --------------------------------------------------------------------


def test_schedules_parse_as_cron_reads_them() -> None:
    assert cron.longest_gap("17 */6 * * *").total_seconds() == 6 * 3600
    assert cron.longest_gap("@daily").total_seconds() == 86400
    assert cron.longest_gap("0 3 * * 1-5").days == 3  # Friday 03:00 to Monday 03:00
    # Day of month and day of week both set: either fires (the 1st, and every Sunday).
    times = cron.fire_times("0 0 1 * 0", datetime(2026, 3, 1, tzinfo=timezone.utc), 10)
    assert [t.day for t in times] == [1, 8]
    for bad in ("* * * *", "60 * * * *", "5-1 * * * *", "*/0 * * * *", "a * * * *"):
        with pytest.raises(ValueError):
            cron.parse(bad)


def test_the_alert_fires_after_two_periods_of_the_schedule() -> None:
    settings = BackupSettings(schedule="17 */6 * * *", retention_days=30)
    group = backup_module.backup_alert_rules("binder", settings)
    late, never = group["rules"]
    assert late["expr"] == (
        'time() - kube_cronjob_status_last_successful_time{namespace="binder", '
        'cronjob="hub-db-backup"} > 43200'
    )
    assert never["expr"].startswith("absent(kube_cronjob_status_last_successful_time{")
    assert never["for"] == "43200s"


# --- the backups' prefix and users' prefixes -------------------------------------------------

# GitHub's login rule (its sign-up form: alphanumerics or single hyphens, not at either end,
# at most 39), plus Enterprise Managed Users' `_<shortcode>` suffix.
GITHUB_LOGIN = re.compile(r"[a-z\d](?:[a-z\d]|-(?=[a-z\d])){0,38}(?:_[a-z\d]+)?", re.IGNORECASE)


def test_no_github_login_is_the_backups_prefix() -> None:
    """Users' prefixes are `<bucket>/<login>/`: the backups' prefix is none of them, the first
    release's (`backups/`) was one (a user named `backups`)."""
    top = BACKUP_PREFIX.rstrip("/")
    assert GITHUB_LOGIN.fullmatch(top) is None
    assert not top[0].isalnum(), "no login starts with it, so no login's prefix contains it"
    assert [GITHUB_LOGIN.fullmatch(p.rstrip("/")) is not None for p in LEGACY_BACKUP_PREFIXES] == [
        True
    ]
    for login in ["backups", "_backups", "Backups", "alice", "a-b", "backups_corp"]:
        if GITHUB_LOGIN.fullmatch(login):
            assert not f"{login.lower()}/notebook.ipynb".startswith(BACKUP_PREFIX)


def test_the_job_writes_where_its_identity_and_the_lifecycle_rule_point(
    case: tuple[Run, str],
) -> None:
    """One prefix for the job's destination, its write grant and the expiry: new copies go
    under `_backups/` only, never under the first release's `backups/`."""
    run, cloud = case
    pod = _cronjob(run, cloud)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    dest = next(e["value"] for e in pod["containers"][0]["env"] if e["name"] == "DEST")
    assert dest.rsplit("/", 2)[1] + "/" == BACKUP_PREFIX
    if cloud == "gcp":
        grant = run.one(
            "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp-storage-persistent-backup"
        )
        assert grant.inputs["condition"]["expression"].endswith(f'/objects/{BACKUP_PREFIX}")')
    else:
        policy = json.loads(
            run.one("aws:iam/rolePolicy:RolePolicy", "aws-storage-backup-policy").inputs["policy"]
        )
        assert policy["Statement"][0]["Resource"].endswith(f"/{BACKUP_PREFIX}*")
