"""The idle cluster holds everything it must run: every pod pinned to core nodes has requests,
and their sum (read from the real charts' rendered objects), the clouds' system pods and other
components' core workloads (`core_fit.EXTRA_CORE_WORKLOADS`) fit on the core pool at
`minNodes`, on both stacks and both clouds."""

from __future__ import annotations

from typing import Any

import pytest

from chart_render import render
from conftest import HELM
from harness import Run, stack_config
from pangeo_binder import core_fit, machines
from pangeo_binder.charts import PINS
from pangeo_binder.core_fit import Workload

# Containers the charts give no resources key: z2jh 4.4.0's autohttps init container
# (templates/proxy/autohttps/deployment.yaml renders load-acme without `resources`). It runs
# before Traefik, once; the pod stays Burstable (its other containers have requests), and the
# scheduler reserves max(init, sum of containers), so it reserves nothing extra.
CHART_GAPS = {"Deployment/autohttps: load-acme"}


def _objects(run: Run, cloud: str) -> list[dict[str, Any]]:
    """Every object the cloud's Helm releases render (the hub's, the public Binder's, the
    support stack's: each registered chart at its pin, release name and namespace), plus the
    objects the hub registers itself."""
    pins = {(pin.name, pin.version): pin for pin in PINS}
    objects: list[dict[str, Any]] = []
    for reg in run.of_type(HELM):
        if reg.name.startswith(f"{cloud}-"):
            pin = pins[(reg.inputs["chart"], reg.inputs["version"])]
            objects += render(
                pin, reg.inputs["values"], release=reg.inputs["name"],
                namespace=reg.inputs["namespace"],
            )  # fmt: skip
    for reg in run.of_type("kubernetes:batch/v1:CronJob"):
        if reg.name.startswith(f"{cloud}-"):
            objects.append({"kind": "CronJob", **reg.inputs})
    return objects


def _cluster_workloads(run: Run, cloud: str) -> list[Workload]:
    """Core pods the cloud layer installs itself (EKS: the cluster autoscaler's chart, whose
    templates are not cached here, so its pod is read from the values' `resources`)."""
    if cloud != "aws":
        return []
    values = run.one("kubernetes:helm.sh/v3:Release", "aws-autoscaler-release").inputs["values"]
    pod = {"nodeSelector": values["nodeSelector"], "containers": [values]}
    cpu, memory = core_fit.pod_requests(pod)
    return [Workload("Deployment/cluster-autoscaler", cpu, memory, "aws/autoscaler.py")]


def _core_pool(stack: str, cloud: str) -> tuple[str, int]:
    pools = stack_config(stack)["clouds"][cloud]["nodePools"]
    core = next(p for p in pools.values() if p["purpose"] == "core")
    return core["machineType"], core["minNodes"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
@pytest.mark.usefixtures("chart_files")
def test_every_core_pod_has_requests(stack: str, cloud: str, staging: Run, prod: Run) -> None:
    run = staging if stack == "staging" else prod
    objects = _objects(run, cloud)
    assert core_fit.core_workloads(objects), "no core pods found: the selector reading is wrong"
    assert set(core_fit.without_requests(objects)) <= CHART_GAPS


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
@pytest.mark.usefixtures("chart_files")
def test_the_idle_cluster_fits_on_its_core_pool(
    stack: str, cloud: str, staging: Run, prod: Run
) -> None:
    run = staging if stack == "staging" else prod
    machine, nodes = _core_pool(stack, cloud)
    ours = core_fit.core_workloads(_objects(run, cloud), "rendered") + _cluster_workloads(
        run, cloud
    )
    names = {w.name for w in ours}
    # The pods issue 17 names, read from the charts: a missing one means a wrong reading.
    assert {
        "Deployment/hub",
        "Deployment/proxy",
        "Deployment/autohttps",
        "Deployment/user-scheduler",
        "Deployment/binderhub",
        "Deployment/api-dask-gateway",
        "Deployment/controller-dask-gateway",
        "Deployment/traefik-dask-gateway",
        "CronJob/hub-db-backup",
    } <= names, names
    fit = core_fit.core_fit(cloud, machine, nodes, ours, core_fit.EXTRA_CORE_WORKLOADS)
    print(f"\n{stack} {cloud} {machine} x{nodes}\n{fit.table()}")
    assert fit.fits, fit.table()


def test_requests_are_summed_as_the_scheduler_does() -> None:
    pod = {
        "nodeSelector": {"hub.jupyter.org/node-purpose": "core"},
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "0.2", "memory": "1G"}}},
        ],
    }
    cpu, memory = core_fit.pod_requests(pod)
    assert cpu == pytest.approx(1.0)  # the init container's 1 core beats 0.3
    assert memory == pytest.approx(0.5 + 1e9 / 2**30)  # 512Mi + 1G beats the init's 1Gi
    deployment = {"kind": "Deployment", "metadata": {"name": "x"}}
    deployment["spec"] = {"replicas": 2, "template": {"spec": pod}}
    assert core_fit.core_workloads([deployment])[0].cpu == pytest.approx(2.0)
    elsewhere = {**pod, "nodeSelector": {"k8s.dask.org/node-purpose": "worker"}}
    assert not core_fit.on_core(elsewhere)
    assert core_fit.on_core({"containers": []}), "an unpinned pod lands on the untainted core"
    assert core_fit.without_requests([deployment]) == []
    bare = {"kind": "Deployment", "metadata": {"name": "y"}}
    bare["spec"] = {"template": {"spec": {"containers": [{"name": "c"}]}}}
    assert core_fit.without_requests([bare]) == ["Deployment/y: c"]


def test_extra_core_workloads_count_against_the_core_node() -> None:
    node = machines.allocatable("gcp", "e2-standard-2")
    assert node is not None
    fit = core_fit.core_fit("gcp", "e2-standard-2", 1, [])
    assert fit.fits
    big = Workload("support/prometheus", node.cpu, 1.0, "monitoring")
    assert not core_fit.core_fit("gcp", "e2-standard-2", 1, [], [big]).fits
    assert core_fit.core_fit("gcp", "e2-standard-2", 2, [], [big]).fits
