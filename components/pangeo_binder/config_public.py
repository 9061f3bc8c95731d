"""The public Binder's config (`clouds.<cloud>.publicBinder`): anonymous launches of allowed
repositories, contained, beside the authenticated hub.

Pangeo's public BinderHubs (GCP, AWS) were open to any repository and were shut down by crypto
miners in 2021. So an allow list is required here, and limits have caps a stack file cannot
raise. Nothing here reads Pulumi config.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from pangeo_binder import machines
from pangeo_binder.config_shared import Domain, HubDns, Model

# What a stack file may raise the per-server limits to. A public server is for running a
# gallery's notebooks, not for mining: mybinder.org gives 1-2 CPU and 2-8 GB.
MAX_CPU = 2.0
MAX_MEMORY_GB = 8.0
# Culling bounds: inactivity (the issue's 10 minutes) and age (6 hours) may only be lowered.
MAX_CULL_IDLE_MINUTES = 10
MAX_AGE_HOURS = 6
# Public Dask caps per cluster, and the longest a cluster may sit idle.
MAX_DASK_WORKERS = 10
MAX_DASK_CORES = 16
MAX_DASK_MEMORY_GB = 64
MAX_DASK_IDLE_MINUTES = 30

# Specs (BinderHub's GitHub form `owner/repo/ref`) no operator means to allow. A pattern that
# admits any of them admits repositories of owners nobody named: `.*`, `^.*$`, `[a-z].*`,
# `^[^/]+/.*`. Owners here are short, long, digits-only, mixed case; refs a branch and a sha.
UNNAMED_SPECS = (
    "a/b/HEAD",
    "xmrig/xmrig/master",
    "0/0/main",
    "ZzUnlistedOwner-9f3e/cpuminer-multi/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
    "q-x/_/v1.0",
)


def spec_banned(spec: str, allowed: list[str], banned: list[str]) -> bool:
    """BinderHub's rule for whether a spec may launch, as its documentation states it
    (RepoProvider.allowed_specs and is_banned, jupyterhub/binderhub main at b9fad99): banned if
    any `banned` pattern `re.match`es it ignoring case; else, with a non-empty `allowed`,
    banned unless one of those matches. `re.match` anchors at the start only."""
    if any(re.match(pattern, spec, re.IGNORECASE) for pattern in banned):
        return True
    return bool(allowed) and not any(re.match(p, spec, re.IGNORECASE) for p in allowed)


def _admits_unnamed(pattern: str) -> str | None:
    """The first spec of an unnamed owner that `pattern` admits, or None."""
    return next((s for s in UNNAMED_SPECS if not spec_banned(s, [pattern], [])), None)


class PublicDask(Model):
    """Dask Gateway for anonymous users (`publicBinder.dask`)."""

    enabled: bool = Field(
        False,
        description="A separate Dask Gateway in the public namespace, behind the public hub: "
        "one small worker size, no cloud identity, workers on the dask pool (one is required), "
        "schedulers on the public pool, a ResourceQuota on the namespace "
        "(docs/howto/public-binder.md).",
    )
    max_workers: int = Field(4, ge=1, le=MAX_DASK_WORKERS, description="Workers per cluster.")
    max_cores: int = Field(4, ge=1, le=MAX_DASK_CORES, description="Cores per cluster.")
    max_memory_gb: int = Field(
        16, ge=1, le=MAX_DASK_MEMORY_GB, description="Memory per cluster, GiB."
    )
    idle_timeout_minutes: int = Field(
        30,
        ge=1,
        le=MAX_DASK_IDLE_MINUTES,
        description="A cluster with no client this long is shut down.",
    )


class PublicBinder(Model):
    """An anonymous BinderHub and JupyterHub, in their own namespace on the same cluster."""

    domain: Domain = Field(
        description="DNS name of the public Binder (binder.example.org); not the hub's. Its "
        "record points at the public proxy's reserved address (`publicBinderAddress`): "
        "written by the program when `dns` is set, else by you.",
    )
    dns: HubDns | None = Field(
        None,
        description="A DNS zone you already have that contains `domain` (may be the hub's "
        "zone): the program writes the public Binder's A record(s) there.",
    )
    namespace: str = Field(
        "binder-public",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Kubernetes namespace of the public releases; not the hub's.",
    )
    allowed_repositories: list[str] = Field(
        description="Required. Regular expressions over GitHub `owner/repo/ref` (BinderHub's "
        "GitHubRepoProvider.allowed_specs, matched from the start, ignoring case), e.g. "
        "`^pangeo-gallery/.*`. Only repositories one of them matches can be built or "
        "launched. An empty list, or a pattern that admits owners nobody named (`.*`), is "
        "refused.",
    )
    banned_repositories: list[str] = Field(
        default_factory=list,
        description="Regular expressions refused even when allowed (GitHubRepoProvider."
        "banned_specs).",
    )
    per_repo_quota: int = Field(
        20, ge=1, description="Servers of one repository at once (BinderHub.per_repo_quota)."
    )
    total_quota: int = Field(
        50,
        ge=1,
        description="Public servers at once (LaunchQuota.total_quota); the public pool's "
        "maxNodes is the hard ceiling on cost.",
    )
    cpu: float = Field(
        1.0, gt=0, le=MAX_CPU, description=f"CPU limit of a public server (at most {MAX_CPU})."
    )
    memory_gb: float = Field(
        2.0,
        gt=0,
        le=MAX_MEMORY_GB,
        description=f"Memory limit of a public server in GiB (at most {MAX_MEMORY_GB}).",
    )
    cull_idle_minutes: int = Field(
        10,
        ge=1,
        le=MAX_CULL_IDLE_MINUTES,
        description="A public server with no activity this long is stopped.",
    )
    max_age_hours: int = Field(
        6, ge=1, le=MAX_AGE_HOURS, description="A public server is stopped at this age."
    )
    dask: PublicDask = Field(default_factory=PublicDask)

    @field_validator("allowed_repositories")
    @classmethod
    def _names_its_repositories(cls, patterns: list[str]) -> list[str]:
        if not patterns:
            raise ValueError(
                "name at least one pattern (e.g. ^pangeo-gallery/.*): a public Binder open to "
                "every repository is what miners found in 2021"
            )
        problems = []
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                problems.append(f"{pattern!r} is not a regular expression ({error})")
                continue
            admitted = _admits_unnamed(pattern)
            if admitted is not None:
                problems.append(
                    f"{pattern!r} admits repositories of any owner (it matches {admitted}); "
                    "name the owner, as in ^pangeo-gallery/.*"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return patterns

    @field_validator("banned_repositories")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression ({error})") from None
        return patterns


def _section(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _num(value: Any, default: float) -> float | None:
    if value is None:
        return default
    return float(value) if isinstance(value, int | float) else None


def public_binder_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules across sections, as (key path, message), read from the raw mapping: the public
    Binder needs BinderHub building on, a domain and namespace of its own, a pool of purpose
    `public` that fits its servers; a `public` pool needs the public Binder."""
    problems: list[tuple[str, str]] = []
    hub = _section(raw, "hub")
    building = _section(hub, "binder").get("enabled", True) is not False
    hub_namespace = hub.get("namespace", "binder")
    for cloud, settings in sorted(_section(raw, "clouds").items()):
        if cloud not in ("gcp", "aws") or not isinstance(settings, dict):
            continue
        path = f"clouds.{cloud}.publicBinder"
        pools = _section(settings, "nodePools")
        public_pools = {
            key: pool
            for key, pool in pools.items()
            if isinstance(pool, dict) and pool.get("purpose") == "public"
        }
        public = settings.get("publicBinder")
        if not isinstance(public, dict):
            for key in sorted(public_pools):
                problems.append(
                    (
                        f"clouds.{cloud}.nodePools.{key}.purpose",
                        "purpose public is for the public Binder's servers, and "
                        f"{path} is not set; use purpose user, or configure {path}",
                    )
                )
            continue
        if not building:
            problems.append(
                (
                    path,
                    "the public Binder builds images with BinderHub, and hub.binder.enabled "
                    "is false; turn building on or remove publicBinder",
                )
            )
        domain = public.get("domain")
        if (
            isinstance(domain, str)
            and domain.lower() == str(_section(settings, "hub").get("domain", "")).lower()
        ):
            problems.append(
                (
                    f"{path}.domain",
                    f"{domain} is the authenticated hub's domain; the public Binder needs "
                    "its own name (its own address and certificate)",
                )
            )
        if public.get("namespace", "binder-public") == hub_namespace:
            problems.append(
                (
                    f"{path}.namespace",
                    f"{hub_namespace} is the hub's namespace (hub.namespace); the public "
                    "releases need their own, fenced off from the hub's",
                )
            )
        if not public_pools:
            problems.append(
                (
                    path,
                    "no node pool has purpose public: public servers run only on their own "
                    "tainted pool, whose maxNodes is the cost ceiling; add one, e.g. "
                    f"clouds.{cloud}.nodePools.public: {{purpose: public, machineType: ..., "
                    "maxNodes: 5}",
                )
            )
        dask = _section(public, "dask")
        dask_pools = [
            p for p in pools.values() if isinstance(p, dict) and p.get("purpose") == "dask"
        ]
        if dask.get("enabled") is True and not dask_pools:
            problems.append(
                (
                    f"{path}.dask.enabled",
                    "public Dask workers run on the dask pool (spot, tainted), and no node pool "
                    f"has purpose dask; add one (clouds.{cloud}.nodePools) or leave this false",
                )
            )
        problems += _fit_problems(cloud, path, public, public_pools)
    return problems


def _fit_problems(
    cloud: str, path: str, public: dict[str, Any], pools: dict[str, dict[str, Any]]
) -> list[tuple[str, str]]:
    """A public server's limits fit on one node of every public pool (else it never starts)."""
    cpu = _num(public.get("cpu"), 1.0)
    memory = _num(public.get("memoryGb"), 2.0)
    problems = []
    for key, pool in sorted(pools.items()):
        machine = pool.get("machineType")
        room = machines.allocatable(cloud, machine) if isinstance(machine, str) else None
        if room is None or cpu is None or memory is None or cpu > MAX_CPU or memory > MAX_MEMORY_GB:
            continue  # unknown machine, or limits their own rules refuse
        if cpu > room.cpu or memory > room.memory_gib:
            problems.append(
                (
                    path,
                    f"a public server ({cpu:g} CPU, {memory:g} GiB) does not fit on "
                    f"{machine} (pool {key}: {room.cpu:g} CPU, {room.memory_gib:g} GiB "
                    "allocatable); lower cpu/memoryGb or use a larger machine",
                )
            )
    return problems
