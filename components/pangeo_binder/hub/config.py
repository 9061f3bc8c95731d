"""Hub settings: who may log in, what they may start, and where their data goes.

The hub layer reads them; the cloud stacks never do (they take the service accounts to bind
as arguments, from `HubSettings.workload_service_accounts`). Nothing here reads Pulumi config.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

from pangeo_binder import cron
from pangeo_binder.config_shared import GitHubLogin, Model, OrgOrTeam, Team
from pangeo_binder.outputs import BackupWriter, KubernetesServiceAccount, WorkloadServiceAccounts
from pangeo_binder.support.config import MonitoringSecrets

K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# Kubernetes service account of notebook servers and Dask pods, bound to the bucket identity.
USER_SERVICE_ACCOUNT = "user-sa"
# Kubernetes service account (and CronJob) of the hub database backups.
BACKUP_SERVICE_ACCOUNT = "hub-db-backup"

# registry/path/name:tag or ...@sha256:digest. A bare name would float on `latest`.
# Hyphens escaped: browsers compile the form's `pattern` with the `v` flag, which refuses an
# unescaped `-` in a class and then skips the check (the server's `re.match` still runs).
IMAGE_REF = (
    r"^[a-z0-9]+([._\-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._\-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[a-f0-9]{64})$"
)
ImageRef = Annotated[str, StringConstraints(pattern=IMAGE_REF)]
# The hub image as z2jh's hub.image takes it: name and tag (no digest form).
HUB_IMAGE_REF = IMAGE_REF.replace(r"|@sha256:[a-f0-9]{64}", "")
HubImage = Annotated[str, StringConstraints(pattern=HUB_IMAGE_REF)]


class MenuImage(Model):
    """One image of the spawn form's menu."""

    display_name: str = Field(min_length=1, description="What users see in the menu.")
    image: ImageRef = Field(
        description="Image reference with a tag or digest (quay.io/pangeo/pangeo-notebook:"
        "2026.06.04): a floating `latest` changes under running users."
    )
    hardware: Literal["cpu", "gpu", "any"] = Field(
        "cpu",
        description="Which profiles offer it: cpu images on CPU machines, gpu images (CUDA "
        "builds) on GPU machines, any on both. The first image listed for a kind of machine "
        "is that machine's default.",
    )


# Pangeo's images, pinned. pangeo-docker-images publishes every tag to quay.io/pangeo and
# Docker Hub; ml-notebook is pangeo-notebook plus CUDA builds of TensorFlow and JAX, for GPU
# machines. 2026.06.04 is the newest tag we found in use (2i2c's LEAP hub config, July 2026);
# check quay.io/pangeo for a newer one when you bump it. Its dask-gateway client should match
# the gateway server (2026.3.0): a notebook image with an older client may not connect.
DEFAULT_IMAGES: dict[str, MenuImage] = {
    "pangeo": MenuImage(
        display_name="Pangeo notebook",
        image="quay.io/pangeo/pangeo-notebook:2026.06.04",
        hardware="cpu",
    ),
    "ml": MenuImage(
        display_name="Pangeo ML (GPU)",
        image="quay.io/pangeo/ml-notebook:2026.06.04",
        hardware="gpu",
    ),
}


def images_for(images: dict[str, MenuImage], kind: Literal["cpu", "gpu"]) -> dict[str, MenuImage]:
    """The menu images a kind of machine offers, in menu order (the first is its default)."""
    return {slug: image for slug, image in images.items() if image.hardware in (kind, "any")}


class DaskSettings(Model):
    """Dask Gateway: limits per cluster, so one notebook cannot fill the dask pool."""

    idle_timeout_minutes: int = Field(
        30,
        ge=1,
        description="A cluster with no client connected for this long is shut down (the chart "
        "default never stops one, and forgotten clusters keep spot nodes up).",
    )
    max_workers: int = Field(
        50, ge=1, description="Workers per cluster, for everyone; a cost ceiling per user."
    )
    max_cores: int = Field(
        200, ge=1, description="Cores per cluster (scheduler and workers), for everyone."
    )
    max_memory_gb: int = Field(
        1600, ge=1, description="Memory per cluster in GiB (scheduler and workers), for everyone."
    )


# repo2docker 2026.04.0 (git tag 2026-04-22; its release workflow pushes every tag to
# quay.io/jupyterhub/repo2docker:<version>), the newest release on 2026-11-26. BinderHub's default
# build image is 2024.07.0 (binderhub/build.py at b9fad99).
DEFAULT_BUILD_IMAGE = "quay.io/jupyterhub/repo2docker:2026.04.0"


class BinderSettings(Model):
    """BinderHub: images built from a repository in the spawn form, in the cloud's registry."""

    enabled: bool = Field(
        True,
        description='Offer "build from a repository" in the spawn form (binderhub-service as '
        "the hub service `binder`). On by default: both clouds' stacks create a registry and "
        "a keyless builder identity.",
    )
    build_image: ImageRef = Field(
        DEFAULT_BUILD_IMAGE,
        description="repo2docker image of the build pods, pinned (BinderHub's own default is "
        "from 2024).",
    )
    build_memory_gb: int = Field(
        8,
        ge=1,
        description="Memory limit of the docker daemon that runs the builds on a user node; "
        "a build that needs more fails instead of starving the notebooks beside it.",
    )
    docker_disk_gb: int = Field(
        50,
        ge=10,
        description="Disk of the docker daemon's layer cache (an emptyDir with this size "
        "limit): beyond it the daemon is evicted and restarts with an empty cache, so builds "
        "never fill a user node's disk (100 GB by default).",
    )


class AutosaveSettings(Model):
    """Autosave: a stopping server copies its working directory to the persistent bucket."""

    enabled: bool = Field(
        True,
        description="Every user pod's preStop hook copies the working directory (the home "
        "directory, `/home/jovyan` in Pangeo images) to `$PERSISTENT_BUCKET/autosave/<UTC "
        "timestamp>/` before the pod goes (culled, stopped, or its node drained), skipping "
        "files git holds unchanged and those `.autosaveignore` lists. Images without "
        "`fsspec` and `gcsfs`/`s3fs` skip it.",
    )
    max_megabytes: int = Field(
        500,
        ge=1,
        description="Most a save copies, in MiB; the largest files are left out first and "
        "listed in the manifest. 500: notebooks and code fit many times over, data belongs in "
        "the buckets already, and 500 MiB uploads well within the default grace period.",
    )
    grace_seconds: int = Field(
        120,
        ge=30,
        le=3600,
        description="How long a stopping pod is given (its terminationGracePeriodSeconds and "
        "KubeSpawner's delete_grace_period): the save gets this minus 15 s, the server the "
        "rest. The pod's node stays up that much longer after a stop.",
    )


class BackupSettings(Model):
    """Backups of the hub's sqlite database to the persistent bucket's `_backups/` prefix."""

    enabled: bool = Field(
        True,
        description="A CronJob copies the hub database (sqlite's online backup, consistent "
        "while the hub writes) to `<persistent bucket>/_backups/` (no GitHub login starts with "
        "`_`, so no user's prefix is that one; copies earlier releases wrote under `backups/` "
        "stay, fenced off users, until they expire), under an identity that can write only "
        "there. Restore: docs/howto/restore.md.",
    )
    schedule: str = Field(
        "17 */6 * * *",
        description="When, as a Kubernetes CronJob schedule in UTC (five fields, or @hourly, "
        "@daily, ...). Every 6 hours by default: a restore loses at most 6 hours of logins "
        "and server records.",
    )
    retention_days: int = Field(
        30,
        ge=1,
        description="Backups are deleted this many days after they are written (a lifecycle "
        "rule on `_backups/` and the older `backups/`); at least two schedule periods, so a late "
        "run never leaves none.",
    )

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron.longest_gap(value)  # parses, and fires at least twice in four years
        return value

    @model_validator(mode="after")
    def _keeps_two_periods(self) -> BackupSettings:
        gap = cron.longest_gap(self.schedule)
        if self.retention_days * 86400 < 2 * gap.total_seconds():
            raise ValueError(
                f"retentionDays {self.retention_days} keeps less than two periods of "
                f"schedule {self.schedule!r} (up to {gap} apart): one late run would leave "
                "no backup"
            )
        return self

    def period_seconds(self) -> int:
        """The longest time between two scheduled runs."""
        return int(cron.longest_gap(self.schedule).total_seconds())


class HubSettings(Model):
    """Hub settings shared by every cloud (`pangeo-binder:hub`)."""

    namespace: str = Field(
        "binder",
        pattern=K8S_NAME,
        description="Kubernetes namespace of JupyterHub, BinderHub and Dask Gateway; the "
        "bucket identity is bound to <namespace>/user-sa.",
    )
    builder_service_account: str = Field(
        "binderhub",
        pattern=K8S_NAME,
        description="Kubernetes service account the BinderHub pod runs as; the cloud layer binds "
        "it to the registry-writer identity, and BinderHub mints each build's push credentials "
        "under it (build pods and the docker daemon run as the namespace's default account, "
        "which carries no identity).",
    )
    allowed_organizations: list[OrgOrTeam] = Field(
        description="GitHub organizations (`org`) or teams (`org:team`, the team's slug) whose "
        "members may log in; nobody else can. Required: with none, nobody could log in.",
    )
    admin_users: list[GitHubLogin] = Field(
        default_factory=list,
        description="GitHub logins of hub admins. They can log in even when they are in no "
        "allowed organization: OAuthenticator 17.4 admits admin_users before it checks "
        "organizations, and we keep that on purpose, so the operators can still reach a hub "
        "whose organization or team check is failing. So list only the people who run the "
        "hub, and remove anyone who leaves. None by default: admin is a deliberate grant "
        "(and admins cannot open users' servers: admin_access is off).",
    )
    privileged_groups: list[Team] = Field(
        default_factory=list,
        description="GitHub teams (`org:team`) that may start GPU and high-memory servers and "
        "the largest Dask workers. Empty by default: those machines cost the most, so only "
        "admins see them until a team is named. A cloud's `hub.poolGroups` overrides this "
        "per pool.",
    )
    high_memory_gb: int = Field(
        64,
        ge=1,
        description="A user pool whose machine has more memory than this (GiB) is high-memory, "
        "and its profiles are for privileged groups only.",
    )
    images: dict[Annotated[str, StringConstraints(pattern=K8S_NAME)], MenuImage] = Field(
        default_factory=lambda: dict(DEFAULT_IMAGES),
        description="The image menu, by slug. Defaults: a Pangeo notebook image for CPU "
        "machines and the Pangeo ML image for GPU machines, tags pinned. Users can also give "
        "their own image (with a tag or digest) in the spawn form.",
    )
    cull_idle_minutes: int = Field(
        60,
        ge=5,
        description="Servers idle this long are stopped, so their nodes can scale down.",
    )
    home_volume_gb: int | None = Field(
        None,
        ge=1,
        description="Per-user volume mounted as the home directory. Unset: no home volume; "
        "data lives in the buckets ($SCRATCH_BUCKET, $PERSISTENT_BUCKET), which nobody has to "
        "resize or back up.",
    )
    sharing: bool = Field(
        True,
        description="Users may share their running server with other users and with groups "
        "(their GitHub teams), directly or through a share code that expires (JupyterHub 5's "
        "sharing; docs/user-guide.md). Whoever accepts gets into that one server only, as "
        "its owner; false turns it off.",
    )
    dask: DaskSettings = Field(default_factory=DaskSettings)
    autosave: AutosaveSettings = Field(default_factory=AutosaveSettings)
    binder: BinderSettings = Field(default_factory=BinderSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    hub_image: HubImage | None = Field(
        None,
        description="A prebuilt hub image, name:tag, used as it is. Unset (the default): "
        "`pulumi up` builds images/hub (the chart's k8s-hub image plus "
        'jupyterhub-fancy-profiles, for the spawn form\'s "build from a repository"), pushes '
        "it to the cloud's registry and runs the hub on it by digest; that needs Docker with "
        "buildx where `pulumi up` runs. Set: no build; an image without "
        "jupyterhub-fancy-profiles gives users KubeSpawner's plain form.",
    )

    def workload_service_accounts(self) -> WorkloadServiceAccounts:
        """The hub's Kubernetes service accounts, for a cloud stack to bind its identities to:
        notebooks and Dask pods run as `user-sa`, BinderHub as the builder account, the
        database backups (when on) as `hub-db-backup`."""
        backup = self.backup
        return WorkloadServiceAccounts(
            users=KubernetesServiceAccount(self.namespace, USER_SERVICE_ACCOUNT),
            builder=KubernetesServiceAccount(self.namespace, self.builder_service_account),
            backup=BackupWriter(
                KubernetesServiceAccount(self.namespace, BACKUP_SERVICE_ACCOUNT),
                retention_days=backup.retention_days,
            )
            if backup.enabled
            else None,
        )

    def default_image(self, kind: Literal["cpu", "gpu"] = "cpu") -> str:
        """The image a kind of machine starts by default (and Dask workers fall back to)."""
        return next(iter(images_for(self.images, kind).values())).image

    @field_validator("allowed_organizations")
    @classmethod
    def _someone_can_log_in(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                "name at least one GitHub organization or org:team: nobody else can log in, "
                "so with none nobody can"
            )
        return value

    @field_validator("images")
    @classmethod
    def _menu_for_cpu(cls, images: dict[str, MenuImage]) -> dict[str, MenuImage]:
        """Every hub has CPU machines. A GPU image is needed only where a GPU pool exists,
        which the stack-wide rules check (`config._gpu_menu_problems`)."""
        if not images_for(images, "cpu"):
            raise ValueError(menu_gap("cpu"))
        return images


def menu_gap(kind: Literal["cpu", "gpu"]) -> str:
    """The message for a menu with no image a kind of machine can start."""
    return f"no image for {kind} machines; give at least one image with hardware: {kind} or any"


class CloudSecrets(Model):
    """Secret values of one cloud's hub and caches, set only with `pulumi config set --secret`."""

    github_client_secret: SecretStr = Field(
        min_length=1, description="Client secret of the cloud's GitHub OAuth app."
    )
    docker_hub_token: SecretStr | None = Field(
        None,
        min_length=1,
        description="Docker Hub access token of clouds.<cloud>.imageCache.dockerHubUsername, "
        "kept in the cloud's secret store for the Docker Hub cache.",
    )
    ghcr_token: SecretStr | None = Field(
        None,
        min_length=1,
        description="GitHub token of clouds.aws.imageCache.ghcrUsername for the ghcr.io cache "
        "(AWS only: GCP's ghcr.io cache pulls anonymously).",
    )

    def registry_tokens(self) -> dict[str, str]:
        """Upstream registry tokens by cache key (dockerHub, ghcr), for those that are set."""
        tokens = {"dockerHub": self.docker_hub_token, "ghcr": self.ghcr_token}
        return {key: token.get_secret_value() for key, token in tokens.items() if token}


class Secrets(Model):
    """`pangeo-binder:secrets`: secret values only, each set with --secret."""

    gcp: CloudSecrets | None = None
    aws: CloudSecrets | None = None
    monitoring: MonitoringSecrets | None = None
