"""Cloud facts the config rules check against, loaded once from `pangeo_binder/data/*.yaml`.

The facts are data, not code, so they can be reviewed and extended without touching a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


def _load(name: str) -> dict[str, Any]:
    text = resources.files("pangeo_binder").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class GpuFacts:
    """Where an accelerator attaches and in which per-node counts."""

    families: tuple[str, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class GcpCatalog:
    """GCP regions and zones, machine families and GPU compatibility."""

    regions: dict[str, tuple[str, ...]]
    families: dict[str, dict[str, Any]]
    gpus: dict[str, GpuFacts]
    machine_gpus: dict[str, int]
    gpu_zone_suffixes: dict[str, dict[str, tuple[str, ...]]]

    def zones(self, region: str) -> tuple[str, ...]:
        return tuple(f"{region}-{suffix}" for suffix in self.regions.get(region, ()))

    def gpu_zones(self, gpu: str, region: str) -> tuple[str, ...] | None:
        """Zones of `region` that offer accelerator `gpu`: empty when the region has none,
        None when the catalog has no zone data for that GPU at all."""
        by_region = self.gpu_zone_suffixes.get(gpu)
        if by_region is None:
            return None
        return tuple(f"{region}-{suffix}" for suffix in by_region.get(region, ()))

    def gpu_regions(self, gpu: str) -> tuple[str, ...]:
        """Regions with at least one zone that offers `gpu`."""
        return tuple(self.gpu_zone_suffixes.get(gpu, {}))

    def builtin_gpus(self, family: str) -> tuple[str, ...]:
        """Accelerators an accelerator-optimized family comes with (g2 -> nvidia-l4); the
        machine series picks one where a family has several (a2-ultragpu: A100 80GB)."""
        builtin = self.families.get(family, {}).get("builtinGpu") or ()
        return (builtin,) if isinstance(builtin, str) else tuple(builtin)


@cache
def gcp() -> GcpCatalog:
    data = _load("gcp.yaml")
    return GcpCatalog(
        regions={region: tuple(zones) for region, zones in data["regions"].items()},
        families=dict(data["machineFamilies"]),
        gpus={
            name: GpuFacts(tuple(facts["families"]), tuple(facts["counts"]))
            for name, facts in data["gpus"].items()
        },
        machine_gpus=dict(data.get("acceleratorMachineGpus") or {}),
        gpu_zone_suffixes={
            gpu: {region: tuple(zones) for region, zones in by_region.items()}
            for gpu, by_region in (data.get("gpuZones") or {}).items()
        },
    )


@dataclass(frozen=True)
class AwsCatalog:
    """AWS regions and availability zones, instance families, GPUs per instance type."""

    regions: dict[str, tuple[str, ...]]
    families: dict[str, dict[str, Any]]
    gpu_counts: dict[str, int]
    kubernetes_versions: dict[str, dict[str, str]]

    def zones(self, region: str) -> tuple[str, ...]:
        return tuple(f"{region}{suffix}" for suffix in self.regions.get(region, ()))

    def gpu_type(self, family: str) -> str | None:
        return self.families.get(family, {}).get("gpu")

    def arm64(self, family: str) -> bool:
        """Graviton / Grace families need the ARM_64 AMIs."""
        return bool(self.families.get(family, {}).get("arm64"))

    def cluster_autoscaler_image(self, kubernetes_version: str) -> str:
        """The cluster-autoscaler tag whose minor matches the cluster's (as upstream requires)."""
        return self.kubernetes_versions[kubernetes_version]["clusterAutoscaler"]


@cache
def aws() -> AwsCatalog:
    data = _load("aws.yaml")
    return AwsCatalog(
        regions={region: tuple(zones) for region, zones in data["regions"].items()},
        families=dict(data["instanceFamilies"]),
        gpu_counts=dict(data.get("gpuCounts") or {}),
        kubernetes_versions={
            str(version): dict(facts)
            for version, facts in (data.get("kubernetesVersions") or {}).items()
        },
    )
