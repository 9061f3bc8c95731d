"""The `clouds.gcp` section of the stack config and the rules that need GCP's catalog."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from ipaddress import IPv4Network
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

from pangeo_binder import catalog
from pangeo_binder.config_public import PublicBinder
from pangeo_binder.config_shared import (
    CONTROL_PLANE_ACCESS,
    OPEN_TO_ALL,
    Cidr,
    CloudHub,
    Email,
    Gpu,
    ImageCacheSettings,
    Model,
    NodePool,
    PoolKey,
    RegistrySettings,
    StorageSettings,
    pool_error,
    validate_pools,
)

PROJECT_PATTERN = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"


def machine_family(machine_type: str) -> str:
    """`n2-highmem-4` -> `n2`."""
    return machine_type.split("-", 1)[0]


class GcpNodePool(NodePool):
    """A GKE node pool; machine types and GPUs are checked against `data/gcp.yaml`."""

    @field_validator("machine_type")
    @classmethod
    def _known_family(cls, machine_type: str) -> str:
        families = catalog.gcp().families
        family = machine_family(machine_type)
        if "-" not in machine_type or family not in families:
            raise ValueError(
                f"unknown machine family in {machine_type!r}; accepted families: "
                f"{', '.join(sorted(families))} (as in n2-highmem-4)"
            )
        if families[family].get("arm64"):
            raise ValueError(
                f"{family} machines are Arm: GKE taints them kubernetes.io/arch=arm64:NoSchedule, "
                "which the hub's and Dask's pods do not tolerate, and BinderHub builds amd64 "
                "images; choose an x86 family (n2, n2d, e2, c3, ...)"
            )
        return machine_type

    @field_validator("gpu")
    @classmethod
    def _gpu_fits_machine(cls, gpu: Gpu | None, info: ValidationInfo) -> Gpu | None:
        machine_type = info.data.get("machine_type")
        if machine_type is None:  # already reported as a machine type problem
            return gpu
        cat = catalog.gcp()
        family = machine_family(machine_type)
        builtin = cat.builtin_gpus(family)
        if gpu is None:
            if builtin:
                raise ValueError(
                    f"{machine_type} comes with GPUs: declare them as gpu: {{type: "
                    f"{' or '.join(builtin)}, count: {cat.machine_gpus.get(machine_type, 1)}}}"
                )
            return gpu
        facts = cat.gpus.get(gpu.type)
        if facts is None:
            raise ValueError(
                f"unknown GPU type {gpu.type!r}; accepted: {', '.join(sorted(cat.gpus))}"
            )
        if family not in facts.families:
            raise ValueError(
                f"{gpu.type} cannot attach to {family} machines; it attaches to: "
                f"{', '.join(facts.families)}"
            )
        expected = cat.machine_gpus.get(machine_type)
        if builtin and expected is not None and gpu.count != expected:
            raise ValueError(f"{machine_type} has exactly {expected} GPUs; got count {gpu.count}")
        if not builtin and gpu.count not in facts.counts:
            raise ValueError(
                f"{gpu.type} attaches in counts of {', '.join(map(str, facts.counts))}; "
                f"got {gpu.count}"
            )
        return gpu


class GcpBudget(Model):
    """A billing budget on the project, with alerts at 50/90/100/120% of the amount."""

    monthly_usd: float = Field(
        gt=0,
        description="Monthly amount the alerts are relative to, in `currency` (the key says USD "
        "because most research billing accounts are billed in it).",
    )
    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code; must be the billing account's own currency or the budgets "
        "API rejects the budget.",
    )
    billing_account: str = Field(
        pattern=r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$",
        description="Billing account id (012345-6789AB-CDEF01) the project is billed to.",
    )
    emails: list[Email] = Field(
        default_factory=list,
        max_length=5,
        description="Each address gets a Cloud Monitoring email channel that receives the alerts "
        "(a budget notifies at most 5 channels).",
    )
    pubsub_topic: str | None = Field(
        None,
        pattern=r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9_.~+%-]{2,254}$",
        description="Optional topic (projects/P/topics/T) that receives every budget update, "
        "for automation such as scaling pools down. The deployer needs "
        "pubsub.topics.setIamPolicy on it (Pub/Sub Admin on the topic).",
    )


class MaintenanceExclusion(Model):
    """A period in which GKE does not upgrade (a workshop, exams, a deadline)."""

    name: str = Field(pattern=r"^[a-z0-9-]{1,63}$")
    scope: Literal["NO_UPGRADES", "NO_MINOR_UPGRADES", "NO_MINOR_OR_NODE_UPGRADES"] = Field(
        "NO_MINOR_OR_NODE_UPGRADES",
        description="The default still lets control-plane patches through but never drains "
        "nodes, so running notebooks are not evicted.",
    )
    start: AwareDatetime = Field(description="RFC 3339 time with offset: 2026-12-01T00:00:00Z.")
    end: AwareDatetime

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is None:
            return end
        if end <= start:
            raise ValueError(f"must be after start ({start.isoformat()})")
        if info.data.get("scope") == "NO_UPGRADES" and end - start > timedelta(days=30):
            raise ValueError("a NO_UPGRADES exclusion lasts at most 30 days (a GKE limit)")
        return end


class Maintenance(Model):
    """When GKE may upgrade the control plane and drain nodes."""

    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(
        "REGULAR",
        description="REGULAR: versions proven on RAPID first, still patched quickly.",
    )
    window_start: AwareDatetime = Field(
        datetime.fromisoformat("2025-01-04T03:00:00+00:00"),
        description="Start of the recurring window; only its time of day and weekday matter. "
        "The default is Saturday and Sunday 03:00-09:00 UTC, when few users are logged in.",
    )
    window_end: AwareDatetime = Field(datetime.fromisoformat("2025-01-04T09:00:00+00:00"))
    recurrence: str = Field(
        "FREQ=WEEKLY;BYDAY=SA,SU",
        pattern=r"^FREQ=(DAILY|WEEKLY)(;BYDAY=((MO|TU|WE|TH|FR|SA|SU),)*(MO|TU|WE|TH|FR|SA|SU))?$",
        description="RFC 5545 rule; GKE needs at least 48 hours of windows in any 32 days.",
    )
    exclusions: list[MaintenanceExclusion] = Field(default_factory=list)

    @field_validator("window_end")
    @classmethod
    def _window_long_enough(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("window_start")
        if start is not None and (end - start).total_seconds() < 4 * 3600:
            raise ValueError("the window must last at least 4 hours (a GKE requirement)")
        return end

    @field_validator("recurrence")
    @classmethod
    def _enough_hours(cls, recurrence: str, info: ValidationInfo) -> str:
        """GKE wants at least 48 hours of maintenance windows in any 32 days."""
        start, end = info.data.get("window_start"), info.data.get("window_end")
        if start is None or end is None:
            return recurrence
        days = recurrence.partition("BYDAY=")[2]
        per_week = 7 if recurrence.startswith("FREQ=DAILY") else len(days.split(",")) if days else 1
        hours = (end - start).total_seconds() / 3600 * per_week * 32 / 7
        if hours < 48:
            raise ValueError(
                f"windows add up to {hours:.0f} hours in 32 days; GKE needs at least 48 "
                "(longer windows or more days)"
            )
        return recurrence


class GcpImageCache(ImageCacheSettings):
    """Artifact Registry remote repositories for Docker Hub, quay.io and ghcr.io in the region."""

    @classmethod
    def upstreams_offered(cls) -> tuple[str, ...]:
        return ("dockerHub", "quay", "ghcr")


class GcpCloud(Model):
    """Everything deployed on GCP for one stack."""

    project: str = Field(
        description="Project id: 6-30 lowercase letters, digits or hyphens, starting with a "
        "letter and not ending with a hyphen.",
    )
    region: str = Field(description="Region for the cluster, buckets and registry.")
    zone: str | None = Field(
        None,
        description="Set for a zonal cluster (cheaper; its control plane is down during "
        "upgrades). Unset: a regional cluster, as prod uses.",
    )
    node_pools: dict[PoolKey, GcpNodePool] = Field(
        description="Pools by name (1-13 lowercase letters, digits or hyphens: the name "
        "starts the GKE pool name, which a generated suffix completes)."
    )
    hub: CloudHub
    public_binder: PublicBinder | None = Field(
        None,
        description="An anonymous Binder for allowed repositories beside the hub "
        "(docs/howto/public-binder.md). Unset: none.",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    image_cache: GcpImageCache = Field(default_factory=GcpImageCache)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    budget: GcpBudget | None = None
    subnet_cidr: IPv4Network = Field(
        IPv4Network("10.0.0.0/20"),
        description="Node addresses (a /20 holds 4,000); the pod range is what caps the cluster.",
    )
    pods_cidr: IPv4Network = Field(
        IPv4Network("10.16.0.0/14"),
        description="Pod addresses (a secondary range): GKE gives each node a /24, so a /14 "
        "caps the cluster at 1,024 nodes.",
    )
    services_cidr: IPv4Network = Field(
        IPv4Network("10.20.0.0/20"), description="Service addresses (a secondary range)."
    )
    control_plane_access: list[Cidr] = Field(
        default_factory=lambda: list(OPEN_TO_ALL),
        min_length=1,
        max_length=50,
        description=f"{CONTROL_PLANE_ACCESS} GKE: master authorized networks (at most 50).",
    )

    @field_validator("node_pools", mode="wrap")
    @classmethod
    def _pools(cls, pools: Any, handler: Any, info: ValidationInfo) -> Any:
        # A bad region or zone is missing from info.data (already reported): without a region
        # nothing can be checked, without a zone pools are checked against the region.
        region, zone = info.data.get("region"), info.data.get("zone")
        if region is None:
            return validate_pools(pools, handler)
        return validate_pools(pools, handler, lambda raw: pool_zone_errors(raw, region, zone))

    @field_validator("project")
    @classmethod
    def _project_id(cls, project: str) -> str:
        if not re.fullmatch(PROJECT_PATTERN, project):
            raise ValueError(
                f"{project!r} is not a GCP project id; accepted: 6-30 lowercase letters, digits "
                "or hyphens, starting with a letter and not ending with a hyphen"
            )
        return project

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        regions = catalog.gcp().regions
        if region not in regions:
            raise ValueError(f"unknown GCP region {region!r}; accepted: {', '.join(regions)}")
        return region

    @field_validator("zone")
    @classmethod
    def _zone_in_region(cls, zone: str | None, info: ValidationInfo) -> str | None:
        region = info.data.get("region")
        if zone is None or region is None:
            return zone
        zones = catalog.gcp().zones(region)
        if zone not in zones:
            raise ValueError(
                f"zone {zone!r} is not in region {region}; accepted: {', '.join(zones)}"
            )
        return zone

    @field_validator("services_cidr")
    @classmethod
    def _ranges_disjoint(cls, services: IPv4Network, info: ValidationInfo) -> IPv4Network:
        named = {"subnetCidr": info.data.get("subnet_cidr"), "podsCidr": info.data.get("pods_cidr")}
        named["servicesCidr"] = services
        ranges = [(key, net) for key, net in named.items() if net is not None]
        for i, (key_a, net_a) in enumerate(ranges):
            for key_b, net_b in ranges[i + 1 :]:
                if net_a.overlaps(net_b):
                    raise ValueError(
                        f"{key_a} {net_a} overlaps {key_b} {net_b}; they must be disjoint"
                    )
        return services

    @property
    def location(self) -> str:
        """Where the cluster lives: the zone for a zonal cluster, else the region."""
        return self.zone or self.region

    def pool_zones(self, key: str) -> list[str] | None:
        """The zones pool `key` runs in (GKE `nodeLocations`); None leaves GKE's default.

        Configured zones win. A zonal cluster's pools run in its zone. In a regional cluster a
        GPU pool gets the region's zones that offer its GPU (GKE would otherwise pick zones
        that may lack it, and the pool's creation fails); a dask pool gets one zone (the first
        that offers its GPU, if any), since workers shuffle data among themselves and traffic
        between zones is billed per GB each way.
        """
        pool = self.node_pools[key]
        if pool.zones:
            return list(pool.zones)
        if self.zone:
            return [self.zone]
        candidates = list(catalog.gcp().zones(self.region))
        if pool.gpu:
            offered = catalog.gcp().gpu_zones(pool.gpu.type, self.region) or ()
            candidates = [zone for zone in candidates if zone in offered]
        if pool.purpose == "dask":
            return candidates[:1]
        return candidates if pool.gpu else None


def _gpu_type(pool: Any) -> str | None:
    gpu = pool.get("gpu") if isinstance(pool, dict) else None
    return gpu.get("type") if isinstance(gpu, dict) else None


def pool_zone_errors(
    pools: dict[str, Any], region: str, cluster_zone: str | None
) -> list[InitErrorDetails]:
    """Zones each pool asks for (or gets by default) exist in the region, agree with a zonal
    cluster's zone and offer the pool's GPU, per the GPU zone table in `data/gcp.yaml`."""
    errors = []
    for key, pool in pools.items():
        if not isinstance(pool, dict):
            continue
        problem = _zone_problem(pool, region, cluster_zone)
        if problem is not None:
            field, message = problem
            errors.append(pool_error(key, field, "pool_zones", message, pool.get(field)))
    return errors


def _zone_problem(
    pool: dict[str, Any], region: str, cluster_zone: str | None
) -> tuple[str, str] | None:
    """The first zone problem of one raw pool, as (field, message)."""
    cat = catalog.gcp()
    region_zones = cat.zones(region)
    zones = pool.get("zones")
    gpu = _gpu_type(pool)
    offered = cat.gpu_zones(gpu, region) if gpu in cat.gpus else None
    where = ", ".join(offered) if offered else "none"
    if isinstance(zones, list) and zones and all(isinstance(z, str) for z in zones):
        outside = [z for z in zones if z not in region_zones]
        if outside:
            return "zones", (
                f"{', '.join(outside)} not in region {region}; accepted: {', '.join(region_zones)}"
            )
        if cluster_zone is not None and zones != [cluster_zone]:
            return "zones", (
                f"the cluster is zonal (zone {cluster_zone}), so its pools run there: set "
                f"zones: [{cluster_zone}] or leave it unset; pools over several zones need a "
                "regional cluster (no `zone`)"
            )
        lacking = [z for z in zones if offered is not None and z not in offered]
        if lacking:
            return "zones", (
                f"{gpu} is not offered in {', '.join(lacking)}; zones of {region} that offer "
                f"it: {where}"
            )
        return None
    if zones is not None or gpu not in cat.gpus:
        return None  # a malformed list or GPU, reported by the pool's own rules
    if offered is None:
        if cluster_zone is not None:
            return None  # nothing to check against; the pool runs in the cluster's zone
        return "zones", (
            f"no zone data for {gpu} in pangeo_binder/data/gcp.yaml: list the zones of {region} "
            f'that offer it (gcloud compute accelerator-types list --filter="name={gpu} AND '
            f'zone~^{region}-")'
        )
    if cluster_zone is not None and cluster_zone not in offered:
        return "gpu", (
            f"{gpu} is not offered in the cluster's zone {cluster_zone}; zones of {region} "
            f"that offer it: {where} (choose one as clouds.gcp.zone)"
        )
    if not offered:
        return "gpu", (
            f"{gpu} is not offered in region {region}; regions that offer it: "
            f"{', '.join(cat.gpu_regions(gpu))}"
        )
    return None
