"""What a node of a pool offers to pods: its shape, and what the kubelet leaves allocatable.

Profiles and Dask worker sizes are cut from allocatable CPU and memory, not from the nominal
size: a "32 GiB" node offers about 28 GiB to pods, and a profile asking for 32 GiB would never
schedule there. Shapes come from `data/machine_shapes.yaml`; the reservations follow the
clouds' published formulas (GKE "Standard cluster architecture: node allocatable resources";
EKS AL2023 nodeadm's kube-reserved: 255 MiB + 11 MiB per pod). Reviewed 2026-11.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

Cloud = Literal["gcp", "aws"]

# Left for the daemonsets every node runs (CNI, metadata and CSI agents, log shipping, the
# image puller's pause containers), measured loosely; better too much than a pod that never fits.
DAEMONSET_CPU = 0.3
DAEMONSET_MEMORY_GIB = 1.0
EVICTION_GIB = 100 / 1024


@dataclass(frozen=True)
class Shape:
    """Nominal vCPUs and memory of one node."""

    vcpus: float
    memory_gib: float


@dataclass(frozen=True)
class Allocatable:
    """CPU and memory a node leaves for our pods after system reservations and daemonsets."""

    cpu: float
    memory_gib: float


@cache
def _data() -> dict[str, Any]:
    text = resources.files("pangeo_binder").joinpath("data", "machine_shapes.yaml").read_text()
    return yaml.safe_load(text)


def shape(cloud: Cloud, machine_type: str) -> Shape | None:
    """The shape of a machine type, or None when the table has no rule for it."""
    data = _data()[cloud]
    if machine_type in data["types"]:
        vcpus, memory = data["types"][machine_type]
        return Shape(vcpus, memory)
    if cloud == "gcp":
        family, _, rest = machine_type.partition("-")
        kind, _, count = rest.rpartition("-")
        per_vcpu = data["memoryPerVcpu"].get(family, {}).get(kind)
        if per_vcpu is None or not count.isdigit():
            return None
        return Shape(int(count), int(count) * per_vcpu)
    family, _, size = machine_type.partition(".")
    vcpus = data["sizes"].get(size)
    per_vcpu = data["memoryPerVcpu"].get(family)
    if vcpus is None or per_vcpu is None:
        return None
    return Shape(vcpus, vcpus * per_vcpu)


def _tiered(amount: float, tiers: list[tuple[float, float]], rest: float) -> float:
    """Sum of `share` x the part of `amount` inside each tier (`size`, `share`), then `rest`
    of whatever is beyond the last tier."""
    reserved = 0.0
    for size, share in tiers:
        part = min(amount, size)
        reserved += part * share
        amount -= part
    return reserved + amount * rest


def _kube_reserved_cpu(vcpus: float) -> float:
    # Both clouds: 6% of the first core, 1% of the next, 0.5% of the next two, 0.25% above 4.
    return _tiered(vcpus, [(1, 0.06), (1, 0.01), (2, 0.005)], 0.0025)


def _max_pods(machine_type: str) -> int:
    data = _data()["aws"]
    if machine_type in data["maxPodsTypes"]:
        return data["maxPodsTypes"][machine_type]
    return data["maxPods"].get(machine_type.partition(".")[2], 110)


def allocatable(cloud: Cloud, machine_type: str) -> Allocatable | None:
    """CPU and memory left for hub pods on one node of `machine_type` (None: unknown shape)."""
    node = shape(cloud, machine_type)
    if node is None:
        return None
    if cloud == "gcp":
        # GKE: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next
        # 112, 2% above 128 GiB (255 MiB on machines under 1 GiB).
        if node.memory_gib < 1:
            memory_reserved = 255 / 1024
        else:
            memory_reserved = _tiered(
                node.memory_gib, [(4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06)], 0.02
            )
    else:
        memory_reserved = (255 + 11 * _max_pods(machine_type)) / 1024
    cpu = node.vcpus - _kube_reserved_cpu(node.vcpus) - DAEMONSET_CPU
    memory = node.memory_gib - memory_reserved - EVICTION_GIB - DAEMONSET_MEMORY_GIB
    return Allocatable(round(max(cpu, 0.0), 3), round(max(memory, 0.0), 3))
