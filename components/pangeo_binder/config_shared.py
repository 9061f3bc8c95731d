"""Config pieces shared by every cloud section: node pools, storage, registry, per-cloud hub.

The cloud modules (`gcp/config.py`, `aws/config.py`) subclass these and add
the rules that need that cloud's catalog. Keys are camelCase in YAML, snake_case in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

Purpose = Literal["core", "user", "dask", "public"]

# Pool keys become cloud resource names with a generated suffix (GKE: 40 characters in all,
# with 26 taken by the suffix), so they are short DNS labels.
POOL_KEY_PATTERN = r"^[a-z]([a-z0-9-]{0,11}[a-z0-9])?$"
PoolKey = Annotated[str, StringConstraints(pattern=POOL_KEY_PATTERN)]

# GitHub logins and organizations: alphanumerics and single inner hyphens.
GITHUB_NAME = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
# Team slugs are lowercase: GitHub derives them from the team name.
TEAM_SLUG = r"[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?"


# The messages below say what to type for the mistakes a newcomer makes (an `@`, a URL, an
# email, `org/team`), so that `init`'s flags and the stack file get the same words.
def _github_slip(value: str, example: str) -> str | None:
    """What to type instead, when `value` is a recognisable slip for a GitHub name."""
    if "://" in value or value.lower().startswith("github.com/"):
        return f"{value!r} is a URL; give the name only, e.g. {_name_in_url(value) or example}"
    if value.startswith("@") and re.fullmatch(GITHUB_NAME, value[1:]):
        return f"{value!r}: write it without the @, as {value[1:]}"
    if "@" in value:
        return f"{value!r} is an email address; give the GitHub name instead, e.g. {example}"
    return None


def _name_in_url(url: str) -> str | None:
    """The name a GitHub page's URL is about: github.com/ORG, github.com/orgs/ORG and
    github.com/orgs/ORG/teams/TEAM (-> ORG:TEAM)."""
    parts = [part for part in url.split("://", 1)[-1].split("?")[0].split("/")[1:] if part]
    if parts[:1] == ["orgs"]:
        parts = parts[1:]
        if len(parts) >= 3 and parts[1] == "teams":
            return f"{parts[0]}:{parts[2]}"
    return parts[0] if parts and re.fullmatch(GITHUB_NAME, parts[0]) else None


def _github_login(value: str) -> str:
    if re.fullmatch(GITHUB_NAME, value):
        return value
    raise ValueError(
        _github_slip(value, "alice")
        or f"{value!r} is not a GitHub login; type the name in github.com/LOGIN, e.g. alice "
        "(letters, digits and single hyphens inside)"
    )


def _team_hint(value: str) -> str | None:
    """`org/team`, or a team slug with capitals or spaces: the `org:slug` form to type."""
    org, sep, team = value.replace("/", ":", 1).partition(":")
    if not sep or not re.fullmatch(GITHUB_NAME, org):
        return None
    slug = re.sub(r"[^a-z0-9_-]+", "-", team.strip().lower()).strip("-")
    if "/" in value:
        return f"{value!r}: a team is written org:team, as {org}:{slug or 'TEAM'}"
    return (
        f"{value!r}: a team is named by its slug (lowercase, hyphens for spaces, as in the "
        f"team page's URL), e.g. {org}:{slug or 'TEAM'}"
    )


def _team(value: str) -> str:
    if re.fullmatch(rf"{GITHUB_NAME}:{TEAM_SLUG}", value):
        return value
    if re.fullmatch(GITHUB_NAME, value):
        raise ValueError(
            f"{value!r} is an organization; this key takes teams (org:team), e.g. {value}:TEAM"
        )
    raise ValueError(
        _github_slip(value, "my-org:gpu-users")
        or _team_hint(value)
        or f"{value!r} is not a GitHub team; type org:team (the team's slug), e.g. my-org:gpu-users"
    )


def _org_or_team(value: str) -> str:
    if re.fullmatch(rf"{GITHUB_NAME}(:{TEAM_SLUG})?", value):
        return value
    raise ValueError(
        _github_slip(value, "my-org")
        or _team_hint(value)
        or f"{value!r} is not a GitHub organization or team; type org (e.g. my-org) or "
        "org:team (e.g. my-org:hub-users)"
    )


GitHubLogin = Annotated[str, AfterValidator(_github_login)]
Team = Annotated[str, AfterValidator(_team)]
OrgOrTeam = Annotated[str, AfterValidator(_org_or_team)]


# Anyone may reach the control plane's API endpoint unless the operator narrows it: GitHub-hosted
# runners deploy from addresses that change with every job. Authentication still applies.
OPEN_TO_ALL = [IPv4Network("0.0.0.0/0")]
CONTROL_PLANE_ACCESS = (
    "CIDR ranges (a.b.c.d/n) that may reach the Kubernetes API endpoint from the internet. "
    "Default: anyone (authentication still applies), because GitHub-hosted runners deploy "
    "from addresses that change with every job; narrow it to your offices, VPN and "
    "self-hosted runners if you deploy only from those. Nodes reach the API internally."
)


def _cidr(value: Any) -> Any:
    """A CIDR range as written in a stack file, with a message saying what is wrong."""
    if not isinstance(value, str):
        return value
    try:
        return IPv4Network(value)
    except ValueError:
        pass
    try:
        network = IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4 CIDR range; accepted: a.b.c.d/n, as in 192.0.2.0/24"
        ) from None
    raise ValueError(f"{value!r} has host bits set; the range is {network}")


Cidr = Annotated[IPv4Network, BeforeValidator(_cidr)]


class Model(BaseModel):
    """Base for every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )


class Gpu(Model):
    """GPUs attached to each node of a pool."""

    type: str = Field(description="Accelerator type, in the cloud's own naming (nvidia-tesla-t4).")
    count: int = Field(1, ge=1, description="GPUs per node; 1 suits one notebook per node.")


class NodePool(Model):
    """One autoscaled node pool. Field order matters: later validators read earlier fields."""

    purpose: Purpose = Field(
        description="core: hub, proxy and controllers; user: notebook servers; dask: workers; "
        "public: the public Binder's servers only (clouds.<cloud>.publicBinder)."
    )
    machine_type: str = Field(description="Machine or instance type, e.g. n2-highmem-4.")
    gpu: Gpu | None = Field(None, description="GPUs per node; only on GPU-capable machines.")
    spot: bool = Field(
        False,
        description="Spot capacity. Defaults to true for dask pools (workers are restartable) "
        "and false otherwise; never allowed on the core pool.",
    )
    min_nodes: int = Field(
        0,
        ge=0,
        description="Lower autoscaling bound. 0 lets the pool cost nothing when idle; the core "
        "pool defaults to 1 because the hub must always run somewhere.",
    )
    max_nodes: int = Field(ge=1, description="Upper autoscaling bound (a cost ceiling).")
    disk_size_gb: int = Field(
        100,
        ge=30,
        description="Boot disk per node. Defaults to 30 GB on core (system images only) and 100 "
        "GB elsewhere, where large user images are pulled and cached.",
    )
    zones: list[str] | None = Field(
        None,
        min_length=1,
        description="Zones the pool's nodes run in, a subset of the cluster's. Unset: dask pools "
        "use one zone (worker-to-worker traffic across zones is billed per GB each way), GPU "
        "pools the cluster's zones that offer their GPU, other pools the cluster's zones (GKE); "
        "on EKS every group the VPC's first zone (EBS volumes are zonal; docs/howto/aws.md).",
    )

    @model_validator(mode="before")
    @classmethod
    def _purpose_defaults(cls, data: Any) -> Any:
        """Fill the defaults that depend on `purpose` before the fields are validated."""
        if not isinstance(data, dict):
            return data
        purpose = data.get("purpose")
        filled = dict(data)
        if "minNodes" not in data and "min_nodes" not in data:
            filled["minNodes"] = 1 if purpose == "core" else 0
        if "spot" not in data:
            filled["spot"] = purpose == "dask"
        if "diskSizeGb" not in data and "disk_size_gb" not in data:
            filled["diskSizeGb"] = 30 if purpose == "core" else 100
        return filled

    @field_validator("spot")
    @classmethod
    def _core_not_spot(cls, spot: bool, info: ValidationInfo) -> bool:
        if spot and info.data.get("purpose") == "core":
            raise ValueError(
                "the core pool cannot be spot: a reclaimed node takes the hub and proxy down; "
                "accepted: false"
            )
        return spot

    @field_validator("max_nodes")
    @classmethod
    def _max_not_below_min(cls, max_nodes: int, info: ValidationInfo) -> int:
        min_nodes = info.data.get("min_nodes")
        if min_nodes is not None and max_nodes < min_nodes:
            raise ValueError(f"must be at least minNodes ({min_nodes}); got {max_nodes}")
        return max_nodes

    @field_validator("zones")
    @classmethod
    def _distinct_zones(cls, zones: list[str] | None) -> list[str] | None:
        if zones is not None and len(set(zones)) != len(zones):
            raise ValueError(f"list each zone once; got {zones}")
        return zones


def pool_error(key: str, field: str, kind: str, message: str, value: Any) -> InitErrorDetails:
    """A problem with one pool's key, reported at `nodePools.<key>.<field>`."""
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=(key, field), input=value)


def _role_errors(pools: Any) -> list[InitErrorDetails]:
    """Exactly one core pool and at least one user pool, read from the raw mapping."""
    if not isinstance(pools, dict):
        return []
    purposes = {key: pool.get("purpose") for key, pool in pools.items() if isinstance(pool, dict)}
    cores = sorted(key for key, purpose in purposes.items() if purpose == "core")
    users = [key for key, purpose in purposes.items() if purpose == "user"]
    errors: list[InitErrorDetails] = []
    if len(cores) != 1:
        found = ", ".join(cores) if cores else "none"
        errors.append(
            InitErrorDetails(
                type=PydanticCustomError(
                    "core_pool_count",
                    "exactly one pool must have purpose core (it runs the hub); found: {found}",
                    {"found": found},
                ),
                loc=(),
                input=sorted(pools),
            )
        )
    if not users:
        errors.append(
            InitErrorDetails(
                type=PydanticCustomError(
                    "user_pool_missing",
                    "at least one pool must have purpose user (notebook servers run there)",
                ),
                loc=(),
                input=sorted(pools),
            )
        )
    return errors


def validate_pools(
    value: Any,
    handler: Callable[[Any], Any],
    cloud_rules: Callable[[dict[str, Any]], list[InitErrorDetails]] | None = None,
) -> Any:
    """Wrap validator for `nodePools`: the pools' own errors, the role rules and the cloud's
    rules that need the rest of its section (`cloud_rules`, given the raw mapping), all at once.

    A plain after-validator would only run once every pool is valid, hiding the role problems.
    """
    errors: list[InitErrorDetails] = []
    result = None
    try:
        result = handler(value)
    except ValidationError as exc:
        errors = [
            InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx", {}))
            for e in exc.errors()
        ]
    errors += _role_errors(value)
    if cloud_rules is not None and isinstance(value, dict):
        errors += cloud_rules(value)
    if errors:
        raise ValidationError.from_exception_data("nodePools", errors)
    return result


# GitHub App client ids: `Iv1.` and 16 hex digits (apps made before 2024), `Iv23li` and 14
# alphanumerics (newer). OAuth apps' ids start `Ov23li` (or are 20 hex digits, older ones).
GITHUB_APP_CLIENT_ID = r"^(Iv1\.[0-9a-f]{16}|Iv23li[A-Za-z0-9]{14})$"
# A GitHub App's public page: its slug is the app's name, lower case, hyphens inside.
GITHUB_APP_URL = r"^https://github\.com/apps/[a-z0-9]+(-[a-z0-9]+)*$"


class PushApp(Model):
    """The GitHub App that users' `gh-scoped-creds` asks for short-lived push tokens."""

    client_id: str = Field(
        description="Client ID of the GitHub App (Iv1.<16 hex> or Iv23li<14 alphanumerics>, "
        "from the app's settings page): not the login's OAuth app, which cannot hand out "
        "tokens limited to the repositories a user picks.",
    )
    url: str = Field(
        description="The app's public page, `https://github.com/apps/<slug>`: users install "
        "the app there, on the repositories they want to push to.",
    )

    @field_validator("client_id")
    @classmethod
    def _github_app_client_id(cls, value: str) -> str:
        if re.match(GITHUB_APP_CLIENT_ID, value):
            return value
        kind = " (an OAuth app's client id)" if value.startswith("Ov") else ""
        raise ValueError(
            f"{value!r}{kind} is not a GitHub App client id; accepted: Iv1. and 16 hex digits, "
            "or Iv23li and 14 letters or digits (the app's settings page shows it)"
        )

    @field_validator("url")
    @classmethod
    def _github_app_url(cls, value: str) -> str:
        if re.match(GITHUB_APP_URL, value):
            return value
        raise ValueError(
            f"{value!r} is not a GitHub App's page; accepted: https://github.com/apps/<slug>, "
            "the app's public link"
        )


def missing_client_id(cloud: str) -> str:
    """What a stack without its OAuth app's client id is told (init may leave it for later):
    the app to create and the command that records its id."""
    return (
        "required: the client id of the hub's GitHub OAuth app (callback "
        "https://<domain>/hub/oauth_callback; README, Quickstart step 2); set it with "
        f"pulumi config set --path 'clouds.{cloud}.hub.github.clientId' CLIENT_ID --stack NAME"
    )


class GitHubApp(Model):
    """The GitHub OAuth app of one hub (an app has one callback URL, so one app per hub)."""

    client_id: str = Field(
        pattern=r"^[A-Za-z0-9._-]{8,64}$",
        description="Client ID of the OAuth app whose callback URL is "
        "`https://<domain>/hub/oauth_callback`. Its secret is set with pulumi config set "
        "--secret --path 'secrets.<cloud>.githubClientSecret'.",
    )
    push_app: PushApp | None = Field(
        None,
        description="A GitHub App with Contents read and write, for pushing from notebooks: "
        "every server gets its client id and page (GH_SCOPED_CREDS_CLIENT_ID, "
        "GH_SCOPED_CREDS_APP_URL), and `gh-scoped-creds` gets a token for the repositories "
        "the user installed the app on, valid 8 hours (docs/howto/push-app.md). Unset: no "
        "push credentials; the login never asks for more than read:org.",
    )


DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _domain(value: str) -> str:
    """A DNS name, with what to type for a URL, an email, capitals or a trailing dot."""
    if re.match(DOMAIN_PATTERN, value):
        return value
    if "://" in value:
        host = value.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()
        raise ValueError(f"{value!r} is a URL; give the host name only, e.g. {host}")
    if "@" in value:
        raise ValueError(f"{value!r} is an email address; give a DNS name such as hub.example.org")
    cleaned = value.strip().rstrip(".").lower()
    if cleaned != value and re.match(DOMAIN_PATTERN, cleaned):
        raise ValueError(f"{value!r}: write it lowercase without a trailing dot, as {cleaned}")
    raise ValueError(
        f"{value!r} is not a DNS name; give one such as hub.example.org (lowercase letters, "
        "digits and hyphens, in dot-separated labels)"
    )


def _email(value: str) -> str:
    bare = value.removeprefix("mailto:")
    if bare != value and re.match(EMAIL_PATTERN, bare):
        raise ValueError(f"{value!r}: give the address only, as {bare}")
    if re.match(EMAIL_PATTERN, value):
        return value
    raise ValueError(f"{value!r} is not an email address; give one such as ops@example.org")


Domain = Annotated[str, AfterValidator(_domain)]
Email = Annotated[str, AfterValidator(_email)]


def in_zone(domain: str, zone_domain: str) -> bool:
    """`domain` is the zone's apex or a name under it (hub.example.org in example.org)."""
    domain, zone_domain = domain.rstrip(".").lower(), zone_domain.rstrip(".").lower()
    return domain == zone_domain or domain.endswith(f".{zone_domain}")


def check_zone(dns: HubDns, reported_name: str, *, cloud: str, kind: str) -> None:
    """At deploy time: refuse a zone whose own DNS name (as the cloud reports it, with or
    without the trailing dot) is not the configured `zoneDomain`, naming both."""
    if reported_name.rstrip(".").lower() != dns.zone_domain.lower():
        raise ValueError(
            f"clouds.{cloud}.hub.dns: {kind} {dns.zone} is for {reported_name.rstrip('.')}, "
            f"not {dns.zone_domain} as zoneDomain says; name the zone that serves "
            f"{dns.zone_domain}, or correct zoneDomain"
        )


class HubDns(Model):
    """A DNS zone you already have, where the program writes the hub's A record(s)."""

    zone: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
        description="The zone as the cloud names it: a Cloud DNS managed zone's name (in the "
        "stack's project) on GCP, a Route 53 hosted zone id (Z0123456789ABC) on AWS.",
    )
    zone_domain: Domain = Field(
        description="The zone's DNS name (example.org), without the trailing dot. The hub's "
        "domain must be it or a name under it; the deploy looks the zone up and refuses to "
        "write a record when the zone's own name differs.",
    )


class CloudHub(Model):
    """Per-cloud hub settings (`clouds.<cloud>.hub`)."""

    domain: Domain = Field(
        description="DNS name the hub is served at (hub.example.org). Its record points at "
        "the hub's reserved address (the `hubAddress` output): written by the program when "
        "`dns` is set, else by you after the first deploy (docs/howto/https.md).",
    )
    contact_email: Email = Field(
        description="Email of the Let's Encrypt account that issues the hub's certificate "
        "(z2jh's autohttps refuses to render without one).",
    )
    github: GitHubApp
    pool_groups: dict[PoolKey, list[Team]] = Field(
        default_factory=dict,
        description="Per user pool, the teams (`org:team`) that may use it, overriding the "
        "default (everyone for ordinary pools, hub.privilegedGroups for GPU and high-memory "
        "pools). An empty list: admins only.",
    )
    user_placeholders: int = Field(
        0,
        ge=0,
        description="Warm capacity: this many user-sized placeholder pods (z2jh "
        "`scheduling.userPlaceholder`) on the default user pool, each the size of that pool's "
        "default choice. A user's server takes a placeholder's place at once, on a node that "
        "is already up (the placeholder then waits for a new node in the background). The "
        "nodes they hold are paid while idle (the plan prices them); at most what the pool's "
        "`maxNodes` can hold. 0: none, every first user of a node waits for it to boot "
        "(docs/topics/cold-start.md).",
    )
    dns: HubDns | None = Field(
        None,
        description="A DNS zone you already have (Cloud DNS on GCP, Route 53 on AWS) that "
        "contains `domain`: the program writes the hub's A record(s) there, pointing at the "
        "reserved address, before the hub starts, so its certificate is issued on the first "
        "deploy. Unset: you write the record yourself (docs/howto/https.md).",
    )

    @field_validator("dns")
    @classmethod
    def _domain_in_zone(cls, dns: HubDns | None, info: ValidationInfo) -> HubDns | None:
        domain = info.data.get("domain")
        if dns is not None and domain is not None and not in_zone(domain, dns.zone_domain):
            raise ValueError(
                f"the hub's domain {domain} is not in zone {dns.zone} ({dns.zone_domain}): "
                f"the zone can only hold {dns.zone_domain} and names ending in "
                f".{dns.zone_domain}"
            )
        return dns


class StorageSettings(Model):
    """Object storage that replaces home directories for data."""

    delete_after_days: int = Field(
        7,
        ge=1,
        le=3650,
        description="Scratch objects are deleted this many days after creation: scratch is for "
        "intermediate results, and a week bounds its cost.",
    )
    public_access_forbidden: bool = Field(
        False,
        description="Set when the account or organization forbids public buckets (AWS: "
        "account-level Block Public Access; GCP: the org policy "
        "storage.publicAccessPrevention, or domain-restricted sharing, which refuses allUsers): "
        "a public bucket would fail mid-deploy there, so publicBucket is refused up front.",
    )
    public_bucket: bool = Field(
        False,
        description="A third bucket anyone on the internet can read (not list), which hub users "
        "write under their own prefix (PUBLIC_PERSISTENT_BUCKET): for publishing results. Off "
        "by default: what is put there is world-readable, and its downloads are billed to us.",
    )

    @field_validator("public_bucket")
    @classmethod
    def _public_allowed(cls, public: bool, info: ValidationInfo) -> bool:
        """Refused where the account or organization forbids public buckets: the deploy would
        fail at the bucket policy or IAM binding, after the cluster was already built."""
        if public and info.data.get("public_access_forbidden"):
            raise ValueError(
                "this cloud's account or organization forbids public buckets "
                "(publicAccessForbidden: true), so a public bucket cannot be made here; lift "
                "that policy for this project/account first, or leave publicBucket false"
            )
        return public


class RegistrySettings(Model):
    """Cleanup of images BinderHub builds and pushes."""

    delete_untagged_after_days: int = Field(
        1,
        ge=1,
        description="Untagged images (superseded layers of a rebuilt tag) are removed after this "
        "many days; nothing pulls them.",
    )
    keep_recent_versions: int = Field(
        10,
        ge=1,
        description="Per image, this many most recent versions are always kept; older ones are "
        "removed once older than deleteAfterDays.",
    )
    delete_after_days: int = Field(
        30,
        ge=1,
        description="Tagged versions older than this (beyond the recent ones kept) are removed; "
        "BinderHub rebuilds an image on demand if a repository is launched again.",
    )


# Public registries an in-region cache can stand in for: config key -> the host image
# references name, and the cache repository's name after the environment (`staging-quay`).
CACHE_UPSTREAMS = {
    "dockerHub": "docker.io",
    "quay": "quay.io",
    "ghcr": "ghcr.io",
    "ecrPublic": "public.ecr.aws",
    "k8s": "registry.k8s.io",
}
CACHE_NAMES = {
    "dockerHub": "docker-hub",
    "quay": "quay",
    "ghcr": "ghcr",
    "ecrPublic": "ecr-public",
    "k8s": "k8s",
}
# Within both clouds' limits: Artifact Registry repository ids and ECR pull-through prefixes
# (2-30 characters).
CacheName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,28}[a-z0-9]$")]
# Docker Hub and GitHub user names.
RegistryUser = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


class ImageCacheSettings(Model):
    """In-region pull-through caches of public registries: images come from the cloud's own
    registry in the cluster's region, without Docker Hub's pull limits."""

    enabled: bool = Field(
        True,
        description="Create the caches. On by default: a cache stores only what is pulled "
        "through it (billed as registry storage, bounded by deleteAfterDays), and pulls from "
        "it stay in the region.",
    )
    docker_hub_username: RegistryUser | None = Field(
        None,
        description="Docker Hub account the Docker Hub cache logs in as (higher pull limits "
        "than anonymous pulls); its access token is the secret secrets.<cloud>.dockerHubToken.",
    )
    delete_after_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Cached images are removed this many days after they were cached; the "
        "next pull fetches them again from upstream.",
    )
    repositories: dict[str, CacheName] = Field(
        default_factory=dict,
        description="Cache repository names (ECR: prefixes) by upstream: dockerHub, quay, ghcr "
        "(AWS also ecrPublic, k8s). Default `<environment>-docker-hub`, `<environment>-quay`, "
        "... so staging and prod can share a project or account; none may be the build "
        "registry's repository.",
    )

    @field_validator("repositories")
    @classmethod
    def _known_upstreams(cls, names: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(names) - set(cls.upstreams_offered()))
        if unknown:
            raise ValueError(
                f"no cache for {', '.join(unknown)} on this cloud; accepted: "
                f"{', '.join(cls.upstreams_offered())}"
            )
        taken: dict[str, str] = {}
        for key, name in names.items():
            if name in taken:
                raise ValueError(f"{key} and {taken[name]} both use the name {name!r}")
            taken[name] = key
        return names

    @classmethod
    def upstreams_offered(cls) -> tuple[str, ...]:
        """The upstreams this cloud can cache (config keys of CACHE_UPSTREAMS)."""
        return tuple(CACHE_UPSTREAMS)

    def cached(self) -> list[str]:
        """The upstreams cached, in CACHE_UPSTREAMS order; none when the cache is off."""
        return list(self.upstreams_offered()) if self.enabled else []

    def name(self, key: str, qualifier: str) -> str:
        """The cache repository (GCP) or repository prefix (ECR) for upstream `key`;
        `qualifier` tells stacks apart (`pangeo_binder.naming.qualifier`)."""
        return self.repositories.get(key) or f"{qualifier}-{CACHE_NAMES[key]}"


def secret_command(cloud: str, stack: str | None = None) -> str:
    """The exact command that sets a cloud's GitHub client secret (`secrets.<cloud>`, the hub's
    `Secrets`); here, below the hub, so the offline plan can name it without importing the hub."""
    target = f" --stack {stack}" if stack else ""
    return f"pulumi config set --secret --path 'secrets.{cloud}.githubClientSecret' VALUE{target}"
