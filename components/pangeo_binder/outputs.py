"""What a cloud stack hands to the hub layer: the same shape on GCP and AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pulumi

if TYPE_CHECKING:
    import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class KubernetesServiceAccount:
    """A Kubernetes service account a cloud identity is bound to (workload identity, IRSA)."""

    namespace: str
    name: str

    @property
    def ref(self) -> str:
        """`namespace/name`, the form both clouds' trust conditions name."""
        return f"{self.namespace}/{self.name}"


# Where the hub database's backups go in the persistent bucket. Users' prefixes are
# `<bucket>/<JupyterHub user name>/`, and the names are GitHub logins, which GitHub allows
# only alphanumerics and single inner hyphens (its sign-up form: "Username may only contain
# alphanumeric characters or single hyphens, and cannot begin or end with a hyphen");
# OAuthenticator lowercases them. Enterprise Managed Users' logins add `_<shortcode>` at the
# end, never at the start. A leading underscore is none of those, so no user's prefix can be
# the backups' prefix. The first release wrote `backups/`, which a GitHub user named
# `backups` would have shared.
BACKUP_PREFIX = "_backups/"
# Prefixes earlier releases wrote backups under. Nothing is moved: copies there stay fenced
# off from users and expire by the same lifecycle rule; new copies go to BACKUP_PREFIX only.
LEGACY_BACKUP_PREFIXES = ("backups/",)


@dataclass(frozen=True)
class BackupWriter:
    """An account that may write under one prefix of the persistent bucket (`_backups/`),
    and how long objects there are kept (a lifecycle rule on that prefix). The cloud stack
    gives it its own identity, which can write nothing else."""

    account: KubernetesServiceAccount
    retention_days: int
    prefix: str = BACKUP_PREFIX
    legacy_prefixes: tuple[str, ...] = LEGACY_BACKUP_PREFIXES

    @property
    def fenced_prefixes(self) -> tuple[str, ...]:
        """Every prefix holding copies of the hub's database, new or old: users' identity may
        touch none of them, and each expires after `retention_days`."""
        return (self.prefix, *self.legacy_prefixes)


@dataclass(frozen=True)
class WorkloadServiceAccounts:
    """The Kubernetes service accounts a cloud stack binds its keyless identities to.

    The cluster layer knows nothing of the hub: whoever installs workloads on the cluster (our
    hub, or another hub of a different shape) says which accounts get bucket access (`users`)
    and which may push to the registry (`builder`), and optionally which may write backups
    (`backup`) under a prefix of the persistent bucket.
    """

    users: KubernetesServiceAccount
    builder: KubernetesServiceAccount
    backup: BackupWriter | None = None
    # The public Binder's BinderHub (clouds.<cloud>.publicBinder): pushes as its own identity
    # (GKE: its own Google service account and repository; EKS: its own IRSA role, under
    # `<prefix>/public/` only). None without it.
    public_builder: KubernetesServiceAccount | None = None


@dataclass(frozen=True)
class RegistryLogin:
    """What a push to the stack's registry logs in with, minted by the cloud at deploy time for
    the identity running Pulumi: no key is created or kept in config. `password` is a secret
    Output and short-lived (a Google access token: about an hour; an ECR token: 12 hours), so
    it serves the deploy that asked for it and nothing later."""

    address: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]


@dataclass(frozen=True)
class ReservedAddress:
    """A load balancer address reserved before its Service exists: the address (GKE: one IP;
    EKS: the Elastic IPs, comma-separated), the piece of z2jh's `proxy.service` values that
    makes the proxy use it, and the DNS records pointing a domain at it (may be empty)."""

    address: pulumi.Output[str]
    proxy_service: pulumi.Output[dict[str, Any]]
    records: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class CloudOutputs:
    """Typed outputs of one cloud's cluster, storage, registry and identities.

    `identities` and `service_account_annotations` are keyed by role ("users", "builder"), so
    the hub layer annotates its Kubernetes service accounts without knowing the cloud;
    `identity_annotation` is the annotation key the cloud reads (GKE: the Google service account
    email, EKS: the IAM role ARN). `registry_login` pushes to `image_prefix` as the deploying
    identity (the hub image); BinderHub's pushes use the builder identity instead.

    The hub's public address is reserved by the cloud layer before the hub starts, so it
    survives the proxy Service's replacement: `hub_address` is that address (GKE: one IP; EKS:
    the Elastic IPs, comma-separated), `proxy_service` the piece of z2jh's `proxy.service`
    values that makes the proxy's load balancer use it, and `hub_dns` the DNS records pointing
    the hub's domain at it (empty without `hub.dns`), which the hub's release waits for.

    `public_bucket_url` is the world-readable bucket (`storage.publicBucket`), None without one.

    `image_cache` maps an upstream registry host to the in-region cache that serves it, None
    when `imageCache.enabled` is false. Keys are hosts as image references name them
    (`docker.io`, `quay.io`, `ghcr.io`; on AWS also `public.ecr.aws`, `registry.k8s.io`), only
    the upstreams actually cached (on AWS Docker Hub and ghcr.io only with their login).
    Values are the cache prefix without a trailing slash (GCP:
    `<region>-docker.pkg.dev/<project>/<repository>`; AWS:
    `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`). An image `<host>/<path>:<tag>` is
    pulled as `<value>/<path>:<tag>`, where a Docker Hub official image's path needs its
    implicit `library/` (`docker.io/python:3.12` -> `<value>/library/python:3.12`) on both
    clouds; a reference without a registry host is a Docker Hub one.
    `public_binder_address` is the public Binder's own address (`publicBinder`), None without.
    `public_image_prefix` is where the public Binder's builder (identity `publicBuilder`) may
    push, disjoint from `image_prefix`: GCP, its own repository; AWS, `<prefix>/public/`. The
    hub's builder can push nothing there, the public one nothing under the hub's images.
    """

    cloud: Literal["gcp", "aws"]
    cluster_name: pulumi.Output[str]
    kubernetes_provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    scratch_bucket_url: pulumi.Output[str]
    persistent_bucket_url: pulumi.Output[str]
    registry_host: pulumi.Output[str]
    image_prefix: pulumi.Output[str]
    registry_login: RegistryLogin
    identity_annotation: str
    identities: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    hub_address: pulumi.Output[str] | None = None
    proxy_service: pulumi.Output[dict[str, Any]] | None = None
    hub_dns: list[pulumi.Resource] = field(default_factory=list)
    public_bucket_url: pulumi.Output[str] | None = None
    image_cache: pulumi.Output[dict[str, str]] | None = None
    public_binder_address: ReservedAddress | None = None
    public_image_prefix: pulumi.Output[str] | None = None

    @property
    def service_account_annotations(self) -> dict[str, dict[str, pulumi.Output[str]]]:
        return {role: {self.identity_annotation: value} for role, value in self.identities.items()}

    def exports(self) -> dict[str, pulumi.Output[Any]]:
        """Stack outputs an operator reads (`pulumi stack output`). The kubeconfig is exported
        on its own, as a secret, so the rest of this map stays readable."""
        public = self.public_bucket_url
        return {
            "clusterName": self.cluster_name,
            "scratchBucket": self.scratch_bucket_url,
            "persistentBucket": self.persistent_bucket_url,
            **({"publicBucket": public} if public is not None else {}),
            "registry": self.registry_host,
            "imagePrefix": self.image_prefix,
            **{f"{role}Identity": value for role, value in self.identities.items()},
            **({"hubAddress": self.hub_address} if self.hub_address is not None else {}),
            **({"imageCache": self.image_cache} if self.image_cache is not None else {}),
            **(
                {"publicBinderAddress": self.public_binder_address.address}
                if self.public_binder_address is not None
                else {}
            ),
            **(
                {"publicImagePrefix": self.public_image_prefix}
                if self.public_image_prefix is not None
                else {}
            ),
        }
