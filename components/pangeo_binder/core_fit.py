"""Does everything that must run on the idle cluster fit on its core nodes?

At idle only the core pool is up (`minNodes` nodes of its machine). On it run the hub's pods
(read from the rendered chart objects), the cloud's own system pods (`data/system_pods.yaml`,
each entry with its source) and whatever other components add (`EXTRA_CORE_WORKLOADS`). Their
CPU and memory requests must fit in the core nodes' allocatable (`machines.allocatable`), or
the scheduler leaves a pod Pending with nodes that never scale up for it.

`machines.allocatable` already keeps `DAEMONSET_CPU` / `DAEMONSET_MEMORY_GIB` per node for the
daemonsets; only what the cloud's daemonsets request beyond that is counted again here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from pangeo_binder import machines
from pangeo_binder.machines import Cloud
from pangeo_binder.scheduling import PURPOSE_LABELS

CORE_PURPOSE = PURPOSE_LABELS["core"]
_NON_CORE_VALUES = {"user", "scheduler", "worker"}
_UNITS = {
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


@dataclass(frozen=True)
class Workload:
    """Requests of one pod kind on the core pool, all its replicas together."""

    name: str
    cpu: float
    memory_gib: float
    source: str = ""


# Other components' pods that run on core nodes (name, CPU cores, memory GiB, where the figure
# comes from). The monitoring `support` namespace, image caches and the like add theirs here,
# and tests/test_core_fit.py counts them against the core node.
EXTRA_CORE_WORKLOADS: list[Workload] = []


def cpu_cores(quantity: str | float | int) -> float:
    """A Kubernetes CPU quantity ("100m", "0.5", 2) in cores."""
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_gib(quantity: str | float | int) -> float:
    """A Kubernetes memory quantity ("512Mi", "4G", 1073741824) in GiB."""
    match = _QUANTITY.match(str(quantity))
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return float(match.group(1)) * _UNITS[match.group(2)] / 2**30


def _requests(container: dict[str, Any]) -> dict[str, Any]:
    return (container.get("resources") or {}).get("requests") or {}


def pod_requests(spec: dict[str, Any]) -> tuple[float, float]:
    """What the scheduler reserves for one pod: the containers' sum, or the largest init
    container if that is more (init containers run one at a time, before the others)."""
    totals = []
    for key in ("cpu", "memory"):
        convert = cpu_cores if key == "cpu" else memory_gib
        main = sum(convert(_requests(c).get(key, 0)) for c in (spec.get("containers") or []))
        init = [convert(_requests(c).get(key, 0)) for c in spec.get("initContainers") or []]
        totals.append(max([main, *init]))
    return totals[0], totals[1]


def _purposes(spec: dict[str, Any]) -> set[str]:
    """Node purposes a pod spec requires, by nodeSelector or required node affinity."""
    found = {value for key, value in (spec.get("nodeSelector") or {}).items() if "purpose" in key}
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms", []):
        for expression in term.get("matchExpressions", []):
            if "purpose" in expression.get("key", "") and expression.get("operator") == "In":
                found.update(expression.get("values", []))
    return found


def on_core(spec: dict[str, Any]) -> bool:
    """Whether a pod can land on a core node: it asks for core, or for no purpose at all (the
    core pool is the only untainted one, so an unpinned pod goes there)."""
    purposes = _purposes(spec)
    return not purposes or not purposes <= _NON_CORE_VALUES


def pod_templates(objects: Iterable[dict[str, Any]]) -> list[tuple[str, int, dict[str, Any]]]:
    """(kind/name, replicas, pod spec) of every workload object among rendered manifests.
    DaemonSets count once (one pod per core node is counted per node by the caller)."""
    found = []
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        name = f"{kind}/{obj.get('metadata', {}).get('name')}"
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            found.append((name, int(spec.get("replicas", 1)), spec["template"]["spec"]))
        elif kind == "DaemonSet" or kind == "Job":
            found.append((name, 1, spec["template"]["spec"]))
        elif kind == "CronJob":
            found.append((name, 1, spec["jobTemplate"]["spec"]["template"]["spec"]))
    return found


def core_workloads(objects: Iterable[dict[str, Any]], source: str = "") -> list[Workload]:
    """The rendered objects' pods that land on core nodes, replicas multiplied in."""
    workloads = []
    for name, replicas, spec in pod_templates(objects):
        if replicas and on_core(spec):
            cpu, memory = pod_requests(spec)
            workloads.append(Workload(name, cpu * replicas, memory * replicas, source))
    return workloads


def without_requests(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Containers of core pods with no CPU or no memory request (they would be BestEffort or
    Burstable with nothing reserved): `kind/name: container`."""
    missing = []
    for name, _, spec in pod_templates(objects):
        if not on_core(spec):
            continue
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if not {"cpu", "memory"} <= set(_requests(container)):
                missing.append(f"{name}: {container['name']}")
    return missing


@cache
def _system_data() -> dict[str, Any]:
    text = resources.files("pangeo_binder").joinpath("data", "system_pods.yaml").read_text()
    return yaml.safe_load(text)


def system_pods(cloud: Cloud) -> tuple[list[Workload], list[Workload]]:
    """The cloud's own pods on an idle cluster: (deployments, per-node daemonsets)."""
    data = _system_data()[cloud]

    def load(entries: list[dict[str, Any]]) -> list[Workload]:
        return [
            Workload(
                e["name"],
                e.get("replicas", 1) * cpu_cores(e["cpu"]),
                e.get("replicas", 1) * memory_gib(e["memory"]),
                e["source"],
            )
            for e in entries
        ]

    return load(data["deployments"]), load(data["daemonsets"])


@dataclass(frozen=True)
class CoreFit:
    """Requests on the idle core pool against what its nodes offer."""

    nodes: int
    allocatable_cpu: float
    allocatable_memory_gib: float
    workloads: tuple[Workload, ...]

    @property
    def cpu(self) -> float:
        return sum(w.cpu for w in self.workloads)

    @property
    def memory_gib(self) -> float:
        return sum(w.memory_gib for w in self.workloads)

    @property
    def fits(self) -> bool:
        return self.cpu <= self.allocatable_cpu and self.memory_gib <= self.allocatable_memory_gib

    def table(self) -> str:
        """A plain-text table: each workload, then the totals against allocatable."""
        rows = [f"{w.name:<58} {w.cpu:6.3f} {w.memory_gib:7.3f}" for w in self.workloads]
        rows.append(f"{'total requests':<58} {self.cpu:6.3f} {self.memory_gib:7.3f}")
        rows.append(
            f"{f'allocatable ({self.nodes} node(s))':<58} "
            f"{self.allocatable_cpu:6.3f} {self.allocatable_memory_gib:7.3f}"
        )
        return "\n".join([f"{'pod':<58} {'cpu':>6} {'GiB':>7}", *rows])


def core_fit(
    cloud: Cloud,
    machine_type: str,
    nodes: int,
    workloads: Iterable[Workload],
    extra: Iterable[Workload] = (),
) -> CoreFit:
    """Our workloads plus the cloud's system pods and `extra` against `nodes` core nodes."""
    node = machines.allocatable(cloud, machine_type)
    if node is None:
        raise ValueError(f"no shape known for {cloud} machine {machine_type}")
    deployments, daemonsets = system_pods(cloud)
    # Daemonsets run on every core node; allocatable() already kept DAEMONSET_* per node.
    beyond = Workload(
        "daemonsets beyond machines.DAEMONSET_* (per node x nodes)",
        max(0.0, sum(d.cpu for d in daemonsets) - machines.DAEMONSET_CPU) * nodes,
        max(0.0, sum(d.memory_gib for d in daemonsets) - machines.DAEMONSET_MEMORY_GIB) * nodes,
        "data/system_pods.yaml",
    )
    return CoreFit(
        nodes,
        round(node.cpu * nodes, 3),
        round(node.memory_gib * nodes, 3),
        (*workloads, *deployments, beyond, *extra),
    )
