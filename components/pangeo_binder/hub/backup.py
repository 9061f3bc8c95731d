"""The hub database's backup CronJob and its alert: pure functions of the settings.

How the job reaches the file. The hub's volume (`hub-db-dir`) is ReadWriteOnce: a volume
attached to one node at a time, which any number of pods *on that node* may mount
(Kubernetes "Persistent Volumes", access modes: ReadWriteOnce "can allow multiple pods to
access the volume when the pods are running on the same node"; ReadWriteOncePod is the mode
that forbids it). So the job's pod has a required pod affinity to the hub pod on
`kubernetes.io/hostname`, and mounts the claim read-only. Both pods then see the same
filesystem through the same kernel, so sqlite's POSIX locks coordinate them as they would two
processes on one machine, and the backup API's shared lock waits out the hub's writes. If the
hub is not running (scaled to 0), the job stays Pending until its deadline: there is nothing
new to back up then.

Two containers: `snapshot` (the hub's own image, already on that node; `incluster/hub_db.py`
from a ConfigMap) writes the copy and `latest.json` to an emptyDir; `upload` writes both to
`<persistent bucket>/_backups/` (`outputs.BACKUP_PREFIX`: no GitHub login can be a
prefix that starts with `_`), the copy first, as the job's service account's identity
(workload identity / IRSA), which can write only under that prefix. Each object is one write
call and nothing else, because that identity is refused everything else:

- GCP: the hub's image again, running `incluster/backup_upload.py` (standard library): one
  metadata-server token request, then one JSON API simple upload (objects.insert) per object.
  Not `gcloud storage cp`: it lists or stats the destination first, and the backup
  identity's IAM condition refuses bucket-level calls such as `storage.objects.list`.
- AWS: the AWS CLI image, `aws s3api put-object` per object: one PutObject request each (the
  `s3api` commands are one API operation each), the only action the backup role is granted.
  Not `aws s3 cp`, which switches to a multipart upload above 8 MiB (CreateMultipartUpload,
  UploadPart, CompleteMultipartUpload: all covered by `s3:PutObject`, but an interrupted one
  needs `s3:AbortMultipartUpload` to clean up its parts). PutObject takes up to 5 GiB, far
  above a hub database. The credentials come from IRSA's web identity token
  (AssumeRoleWithWebIdentity, which the role's trust policy allows, no permission needed).

Monitoring: kube-state-metrics exposes `kube_cronjob_status_last_successful_time` for the
CronJob; `backup_alert_rules` is the Prometheus rule group built on it.
"""

from __future__ import annotations

from typing import Any, Literal

from pangeo_binder.hub.config import BACKUP_SERVICE_ACCOUNT, BackupSettings
from pangeo_binder.hub.context import JUPYTERHUB_RELEASE
from pangeo_binder.hub.incluster import source
from pangeo_binder.outputs import BACKUP_PREFIX
from pangeo_binder.scheduling import PURPOSE_LABELS

NAME = BACKUP_SERVICE_ACCOUNT  # CronJob, ConfigMap and service account share it
SCRIPT = "hub_db.py"
UPLOAD_SCRIPT = "backup_upload.py"  # GCP's upload step, run with the hub image's Python
SCRIPT_DIR = "/etc/hub-db-backup"
OUT_DIR = "/backup"
DB_DIR = "/srv/jupyterhub"  # where z2jh 4.4.0 mounts the hub's volume (hub/deployment.yaml)
DB_FILE = "jupyterhub.sqlite"  # z2jh's db_url for sqlite-pvc (files/hub/jupyterhub_config.py)
DB_CLAIM = "hub-db-dir"
# z2jh 4.4.0's legacy match labels of the hub pod (jupyterhub.matchLabels).
HUB_POD_LABELS = {"app": "jupyterhub", "component": "hub", "release": JUPYTERHUB_RELEASE}
# The hub runs as uid/gid 1000 with fsGroup 1000 (z2jh values: hub.podSecurityContext,
# hub.containerSecurityContext): the same ids read its file.
HUB_UID = 1000
# AWS's upload image, pinned: the AWS CLI v2 (`aws s3api put-object`). GCP's upload runs in
# the hub's image (backup_upload.py needs only Python's standard library).
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.22.0"
# The whole job is small: a few-MiB file read and uploaded. Counted in tests/test_core_fit.py.
CONTAINER_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
LAST_SUCCESS_METRIC = "kube_cronjob_status_last_successful_time"


def upload_command(cloud: Literal["gcp", "aws"]) -> list[str]:
    """The upload container's command: the copy (the only `jupyterhub-*.sqlite` in the fresh
    emptyDir), then `latest.json` naming it, to `$DEST`, one write call per object."""
    if cloud == "gcp":
        return ["python3", f"{SCRIPT_DIR}/{UPLOAD_SCRIPT}", "--dir", OUT_DIR]
    put = "aws s3api put-object --no-cli-pager --output text --query ETag"
    script = (
        "set -eu\n"
        'rest="${DEST#s3://}"; bucket="${rest%%/*}"; prefix="${rest#*/}"\n'
        f"for f in {OUT_DIR}/jupyterhub-*.sqlite {OUT_DIR}/latest.json; do\n"
        f'  {put} --bucket "$bucket" --key "$prefix${{f##*/}}" --body "$f"\n'
        "done\n"
    )
    return ["sh", "-c", script]


def upload_image(cloud: Literal["gcp", "aws"], hub_image: str) -> str:
    """GCP uploads with the hub's image (already on the node); AWS with the AWS CLI's."""
    return hub_image if cloud == "gcp" else AWS_CLI_IMAGE


def backup_configmap(namespace: str) -> dict[str, Any]:
    """The scripts the job runs (the snapshot; GCP's upload), as a ConfigMap."""
    return {
        "metadata": {"name": NAME, "namespace": namespace},
        "data": {SCRIPT: source("hub_db"), UPLOAD_SCRIPT: source("backup_upload")},
    }


def backup_cronjob(
    *,
    cloud: Literal["gcp", "aws"],
    namespace: str,
    settings: BackupSettings,
    hub_image: str,
    persistent_bucket: str,
) -> dict[str, Any]:
    """The CronJob: metadata and spec, as `k8s.batch.v1.CronJob` takes them."""
    prefix_url = f"{persistent_bucket.rstrip('/')}/{BACKUP_PREFIX}"
    pod = {
        "serviceAccountName": NAME,
        "restartPolicy": "Never",
        "nodeSelector": dict(PURPOSE_LABELS["core"]),
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": dict(HUB_POD_LABELS)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "securityContext": {
            "runAsUser": HUB_UID,
            "runAsGroup": HUB_UID,
            "fsGroup": HUB_UID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": "db", "persistentVolumeClaim": {"claimName": DB_CLAIM, "readOnly": True}},
            {"name": "out", "emptyDir": {"sizeLimit": "2Gi"}},
            {"name": "script", "configMap": {"name": NAME}},
        ],
        "initContainers": [
            {
                "name": "snapshot",
                "image": hub_image,
                "command": [
                    "python3",
                    f"{SCRIPT_DIR}/{SCRIPT}",
                    "backup",
                    "--db",
                    f"{DB_DIR}/{DB_FILE}",
                    "--out",
                    OUT_DIR,
                ],
                "volumeMounts": [
                    {"name": "db", "mountPath": DB_DIR, "readOnly": True},
                    {"name": "out", "mountPath": OUT_DIR},
                    {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
                ],
                "resources": CONTAINER_RESOURCES,
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
        "containers": [
            {
                "name": "upload",
                "image": upload_image(cloud, hub_image),
                "command": upload_command(cloud),
                # The CLIs write their config and caches under $HOME.
                "env": [{"name": "DEST", "value": prefix_url}, {"name": "HOME", "value": "/tmp"}],
                "volumeMounts": [
                    {"name": "out", "mountPath": OUT_DIR, "readOnly": True},
                    {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
                ],
                "resources": CONTAINER_RESOURCES,
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
    }
    return {
        "metadata": {"name": NAME, "namespace": namespace, "labels": {"app": NAME}},
        "spec": {
            "schedule": settings.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            # A run missed by more than an hour (the cluster was down) is skipped, not queued.
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 2,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 1800,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {"metadata": {"labels": {"app": NAME}}, "spec": pod},
                }
            },
        },
    }


def backup_alert_rules(namespace: str, settings: BackupSettings) -> dict[str, Any]:
    """A Prometheus rule group: the last successful backup is older than two periods of the
    schedule (or there has never been one for that long). Needs kube-state-metrics, which
    exposes `kube_cronjob_status_last_successful_time` (seconds since the epoch)."""
    late = 2 * settings.period_seconds()
    selector = f'namespace="{namespace}", cronjob="{NAME}"'
    return {
        "name": "hub-db-backup",
        "rules": [
            {
                "alert": "HubDatabaseBackupLate",
                "expr": f"time() - {LAST_SUCCESS_METRIC}{{{selector}}} > {late}",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "The hub database's last backup is older than two periods",
                    "description": f"CronJob {namespace}/{NAME} (schedule "
                    f"{settings.schedule!r}) last succeeded more than {late} s ago; see "
                    "docs/howto/restore.md.",
                },
            },
            {
                "alert": "HubDatabaseNeverBackedUp",
                "expr": f"absent({LAST_SUCCESS_METRIC}{{{selector}}})",
                "for": f"{late}s",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "The hub database has had no successful backup for two periods",
                },
            },
        ],
    }
