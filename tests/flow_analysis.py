"""The flow matrix (pangeo_binder.flows) judged by IBM's network-config-analyzer (NCA).

For one stack and one cloud (one cluster), `cluster_of` gathers:

- the namespaces the program registers (their symbolic names in flows.yaml: `hub`, `public`,
  `support`), with `kube-system`;
- every NetworkPolicy the program registers and every one its Helm releases render (the real
  chart templates, tests/chart_render.py), as applied;
- the pods: the rendered workloads (Deployments, StatefulSets, DaemonSets, CronJobs) and the
  program's own, and the pods made at run time, by the upstream code at our pins where it can
  run here: KubeSpawner 7.0.0 builds each user server's manifest from the hub's rendered
  config (tests/local_hub.py), dask-gateway-server 2026.3.0's `KubeController.make_pod` builds
  a scheduler and a worker with the gateway instance the chart configures. BinderHub's build
  pods (binderhub/build.py, not installed here) and kube-dns carry their role's labels.

`judge` writes the policies and the pods to a folder, one NetworkPolicy per flow that allows
exactly that flow (ingress of the destination pods, or egress to an address), and runs one NCA
scheme: for a needed flow `permits` (the cluster's policies allow everything the flow's policy
allows), for a forbidden one `forbids` (they allow none of it). NCA reads the policies as
Kubernetes defines them: pods and IP blocks are separate, as under GKE's Dataplane V2 (Cilium
never matches a pod with an `ipBlock`).

NCA lives in its own locked environment (tests/nca-tools, `make nca-tools`); without it the
tests skip naming that command, or fail under CI=true.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_render import render
from harness import ROOT, Run, skip_or_fail
from pangeo_binder.charts import PINS
from pangeo_binder.flows import ALL_PORTS, Flow, Matrix, Role

TOOLS = ROOT / "tests" / "nca-tools"
NCA = TOOLS / ".venv" / "bin" / "nca"
HELM = "kubernetes:helm.sh/v4:Chart"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
# The program's own workloads (beside the charts'), by Pulumi type.
WORKLOAD_TYPES = {
    "kubernetes:apps/v1:Deployment": "Deployment",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:apps/v1:DaemonSet": "DaemonSet",
    "kubernetes:batch/v1:CronJob": "CronJob",
    "kubernetes:batch/v1:Job": "Job",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"}
# The registered Namespace of each symbolic namespace: `<cloud>-<suffix>`.
NAMESPACE_RESOURCES = {
    "hub": "hub-namespace",
    "public": "public-binder-namespace",
    "support": "support-namespace",
}
PINNED = {(pin.name, pin.version): pin for pin in PINS}


def require_nca() -> Path:
    """NCA's own environment, or skip with the command that installs it (fail under CI)."""
    if NCA.exists():
        return NCA
    message = f"network-config-analyzer is not installed in {TOOLS}: run `make nca-tools`"
    skip_or_fail(message)


def plain(value: Any) -> Any:
    """Pulumi's mock engine passes numbers as floats (8081.0): back to ints, as applied."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the four operators)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    """The labels of the pods a workload (or pod) object makes."""
    kind = workload["kind"]
    if kind == "Pod":
        return dict(workload["metadata"].get("labels", {}))
    spec = workload["spec"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["metadata"].get("labels", {}))


@dataclass
class Cluster:
    """One stack's cluster on one cloud: what NCA reads."""

    stack: str
    cloud: str
    namespaces: dict[str, str]  # symbolic -> real name
    namespace_labels: dict[str, dict[str, str]]
    policies: list[dict[str, Any]]  # (origin in metadata.annotations is not read by NCA)
    workloads: list[dict[str, Any]]
    origins: dict[str, str] = field(default_factory=dict)  # "ns/name" of a policy -> origin
    releases: set[tuple[str, str]] = field(default_factory=set)  # (namespace, release name)

    @property
    def case(self) -> str:
        return f"{self.stack}-{self.cloud}"

    def pods_of(self, role: Role) -> list[dict[str, Any]]:
        """The workloads and pods `role` stands for here (empty when its namespace is absent)."""
        namespace = self.namespaces.get(role.namespace)
        if role.is_address or namespace is None:
            return []
        return [
            w
            for w in self.workloads
            if w["metadata"]["namespace"] == namespace
            and matches(role.selector or {}, pod_labels(w))
        ]

    def applies(self, flow: Flow) -> bool:
        """Judged here: the cloud is one of the flow's, both ends' namespaces exist and so do
        the releases that make them (the public gateway only with `publicBinder.dask`)."""
        return (
            self.cloud in flow.clouds
            and all(ns in self.namespaces for ns in flow.namespaces())
            and all(
                (self.namespaces[ns], release) in self.releases for ns, release in flow.releases()
            )
        )


# --- gathering one cluster --------------------------------------------------------------------


def _namespaces(run: Run, cloud: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    names: dict[str, str] = {"kube-system": "kube-system"}
    labels: dict[str, dict[str, str]] = {"kube-system": {}}
    for registration in run.of_type(NAMESPACE):
        for symbol, suffix in NAMESPACE_RESOURCES.items():
            if registration.name == f"{cloud}-{suffix}":
                metadata = registration.inputs["metadata"]
                names[symbol] = metadata["name"]
                labels[metadata["name"]] = dict(metadata.get("labels", {}))
    return names, labels


def _releases(run: Run, cloud: str) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """(release name, namespace, chart, rendered objects) of every release of `cloud`."""
    found = []
    for registration in run.of_type(HELM):
        if not registration.name.startswith(f"{cloud}-"):
            continue
        inputs = registration.inputs
        pin = PINNED.get((inputs["chart"], inputs["version"]))
        assert pin, f"{registration.name}: {inputs['chart']} {inputs['version']} is not pinned"
        objects = render(
            pin, inputs["values"], release=inputs["name"], namespace=inputs["namespace"]
        )
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("namespace", inputs["namespace"])
        found.append((inputs["name"], inputs["namespace"], pin.name, objects))
    return found


def _user_servers(
    objects: list[dict[str, Any]], namespace: str, users: Iterable[str], root: Path
) -> list[dict[str, Any]]:
    """The pods KubeSpawner 7.0.0 makes for `users` with the hub's rendered config."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner
    from kubespawner.spawner import MockObject

    from local_hub import hub_config, run_on_own_loop

    with pytest.MonkeyPatch.context() as monkeypatch:
        config = hub_config(objects, root, namespace, monkeypatch)

        async def build() -> list[dict[str, Any]]:
            pods = []
            async with ApiClient() as api:
                for user in users:
                    named = MockObject()  # what KubeSpawner's own _mock user is, named
                    named.name, named.id, named.url = user, user, f"/user/{user}/"
                    spawner = KubeSpawner(config=config, _mock=True, user=named)
                    manifest = api.sanitize_for_serialization(await spawner.get_pod_manifest())
                    manifest["metadata"]["namespace"] = namespace
                    pods.append(manifest)
            return pods

        return run_on_own_loop(build())


def _gateway_instance(objects: list[dict[str, Any]]) -> str:
    """`c.KubeController.gateway_instance`, as the chart's controller ConfigMap sets it."""
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            for text in obj.get("data", {}).values():
                found = re.search(r"KubeController\.gateway_instance = '([^']+)'", text)
                if found:
                    return found.group(1)
    raise AssertionError("the dask-gateway release configures no gateway_instance")


def _dask_pods(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """A scheduler and a worker as dask-gateway-server 2026.3.0's controller makes them."""
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
    from dask_gateway_server.backends.kubernetes.controller import KubeController

    controller = KubeController(gateway_instance=_gateway_instance(objects))
    pods = []
    for is_worker in (False, True):
        pod = controller.make_pod(namespace, "flows", KubeClusterConfig(), is_worker=is_worker)
        pod["metadata"]["namespace"] = namespace
        pod["metadata"].setdefault("name", pod["metadata"].pop("generateName", "") + "0")
        pods.append({"apiVersion": "v1", "kind": "Pod", **pod})
    return pods


def _role_pod(role: Role, namespace: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """A pod carrying a role's labels: BinderHub's build pods and the cluster's kube-dns."""
    labels = role.labels()
    if role.made_by == "binderhub":
        labels["name"] = "build-flows"  # binderhub/build.py: labels name and component
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": role.name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": role.name, "image": "none", "ports": ports}]},
    }


def cluster_of(run: Run, stack: str, cloud: str, matrix: Matrix, root: Path) -> Cluster:
    """Everything NCA needs for `stack` on `cloud`."""
    namespaces, namespace_labels = _namespaces(run, cloud)
    policies: list[dict[str, Any]] = []
    origins: dict[str, str] = {}
    workloads: list[dict[str, Any]] = []
    for registration in run.of_type(POLICY):
        if registration.name.startswith(f"{cloud}-"):
            manifest = plain(
                {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}
                | registration.inputs
            )
            policies.append(manifest)
            origins[_key(manifest)] = f"program {registration.name}"
    for typ, kind in WORKLOAD_TYPES.items():
        for registration in run.of_type(typ):
            if registration.name.startswith(f"{cloud}-"):
                workloads.append(plain({"apiVersion": "v1", "kind": kind} | registration.inputs))
    releases = _releases(run, cloud)
    for resource, _, _, objects in releases:
        for obj in objects:
            if obj["kind"] == "NetworkPolicy":
                policies.append(obj)
                origins[_key(obj)] = f"chart {resource}"  # the release's name
            elif obj["kind"] in WORKLOAD_KINDS:
                workloads.append(obj)
    by_namespace = {(ns, chart): objs for _, ns, chart, objs in releases}
    for symbol, namespace in namespaces.items():
        users = [
            r.labels()["hub.jupyter.org/username"]
            for r in matrix.roles.values()
            if r.made_by == "kubespawner" and r.namespace == symbol
        ]
        hub = by_namespace.get((namespace, "jupyterhub"))
        if hub is not None and users:
            workloads += _user_servers(hub, namespace, users, root / f"hub-{symbol}")
        gateway = by_namespace.get((namespace, "dask-gateway"))
        if gateway is not None:
            workloads += _dask_pods(gateway, namespace)
        binder = (namespace, "binderhub-service") in by_namespace
        for role in matrix.roles.values():
            if role.namespace != symbol:
                continue
            if role.made_by == "binderhub" and binder:
                workloads.append(_role_pod(role, namespace, []))
            if role.made_by == "cluster":
                dns = [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ]
                workloads.append(_role_pod(role, namespace, dns))
    releases_here = {(ns, name) for name, ns, _, _ in releases}
    return Cluster(
        stack, cloud, namespaces, namespace_labels, policies, workloads, origins, releases_here
    )


def _key(policy: Mapping[str, Any]) -> str:
    return f"{policy['metadata']['namespace']}/{policy['metadata']['name']}"


# --- one NetworkPolicy per flow ---------------------------------------------------------------


def _ports(flow: Flow) -> list[dict[str, Any]] | None:
    if flow.ports == (ALL_PORTS,):
        return [{"protocol": protocol} for protocol in flow.protocols]
    ports = []
    for protocol in flow.protocols:
        for low, high in flow.ports:
            port: dict[str, Any] = {"protocol": protocol, "port": low}
            if high != low:
                port["endPort"] = high
            ports.append(port)
    return ports


def flow_policy(flow: Flow, cluster: Cluster, name: str) -> dict[str, Any]:
    """A NetworkPolicy that allows exactly `flow` (and nothing else) in `cluster`."""
    source, destination = flow.source, flow.destination
    src_ns = cluster.namespaces[source.namespace]
    if destination.is_address:
        peers = [
            {"ipBlock": {"cidr": cidr, **({"except": list(excluding)} if excluding else {})}}
            for cidr, excluding in destination.blocks
        ]
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": src_ns},
            "spec": {
                "podSelector": copy.deepcopy(dict(source.selector or {})),
                "policyTypes": ["Egress"],
                "egress": [{"to": peers, "ports": _ports(flow)}],
            },
        }
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": src_ns}},
        "podSelector": copy.deepcopy(dict(source.selector or {})),
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": cluster.namespaces[destination.namespace]},
        "spec": {
            "podSelector": copy.deepcopy(dict(destination.selector or {})),
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer], "ports": _ports(flow)}],
        },
    }


# --- running NCA --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    holds: bool  # needed: permitted; forbidden: forbidden
    text: str  # NCA's own words, with its counterexamples


def _write(folder: Path, name: str, objects: Iterable[Mapping[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False))
    return path


def topology(cluster: Cluster) -> list[dict[str, Any]]:
    """Namespaces and pods as NCA reads them (a pod needs a spec; a workload its template)."""
    objects: list[dict[str, Any]] = []
    for name, labels in cluster.namespace_labels.items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {**labels, "kubernetes.io/metadata.name": name},
                },
            }
        )
    objects += cluster.workloads
    return objects


def judge(
    cluster: Cluster, flows: Iterable[Flow], folder: Path, nca: Path, policies: list | None = None
) -> list[Verdict]:
    """One NCA run over `cluster` (or the same pods with `policies` instead of its own):
    a verdict per flow that applies there."""
    flows = [flow for flow in flows if cluster.applies(flow)]
    base = policies if policies is not None else cluster.policies
    topo = _write(folder / "topology", "objects.yaml", topology(cluster))
    policy_dir = folder / "policies"
    _write(policy_dir, "policies.yaml", base)
    configs = [{"name": "cluster", "networkPolicyList": [str(policy_dir)]}]
    queries = []
    for index, flow in enumerate(flows):
        name = f"flow-{index:03d}"
        path = _write(folder / "flows", f"{name}.yaml", [flow_policy(flow, cluster, name)])
        configs.append({"name": name, "networkPolicyList": [str(path)]})
        queries.append(
            {
                "name": name,
                ("permits" if flow.kind == "needed" else "forbids"): ["cluster", name],
                "outputConfiguration": {
                    "fullExplanation": True,  # every counterexample, not only the first
                    "outputFormat": "yaml",
                    "outputPath": str(folder / "out" / f"{name}.yaml"),
                },
            }
        )
    (folder / "out").mkdir(parents=True, exist_ok=True)
    scheme = folder / "scheme.yaml"
    scheme.write_text(
        yaml.safe_dump(
            {"resourceList": [str(topo.parent)], "networkConfigList": configs, "queries": queries}
        )
    )
    result = subprocess.run(
        [str(nca), "--scheme", str(scheme)], capture_output=True, text=True, timeout=900
    )
    verdicts = []
    for index, flow in enumerate(flows):
        out = folder / "out" / f"flow-{index:03d}.yaml"
        assert out.exists(), f"NCA wrote no result for {flow.name}:\n{result.stdout[-3000:]}"
        (report,) = yaml.safe_load(out.read_text())
        verdicts.append(
            Verdict(flow, report["numerical_result"] == 0, yaml.safe_dump(report, width=120))
        )
    return verdicts
