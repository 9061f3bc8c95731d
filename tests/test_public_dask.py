"""Dask for public users (`publicBinder.dask`, docs/howto/public-binder.md#dask): a second
dask-gateway release in the public namespace behind the public hub.

Off in both stack files (AWS staging's one core node would be 10m CPU short with the gateway's
three pods: see test_gcp_staging_core_pool_still_holds_it), so the program runs here with it
turned on for both clouds through `with_value`. The release renders with the real chart and
validates; the public hub's config is loaded through z2jh's own jupyterhub_config.py with the
pinned KubeSpawner; the options handler runs against the pinned dask_gateway_server.
"""

from __future__ import annotations

import copy
import ipaddress
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_render import find, render, validate_objects, validate_values
from harness import ROOT, Run, run_program, stack_config, with_value
from local_hub import hub_config, run_on_own_loop
from pangeo_binder import core_fit, machines
from pangeo_binder.charts import DASK_GATEWAY, JUPYTERHUB
from pangeo_binder.hub.context import DASK_GATEWAY_RELEASE
from pangeo_binder.hub.incluster import public_gateway_options as pgo
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.public_dask_values import (
    DASK_CLUSTERS_IN_QUOTA,
    PLATFORM,
    PUBLIC_DASK_RELEASE,
    PUBLIC_TRAEFIK_LABELS,
    public_dask_hub_piece,
)
from pangeo_binder.hub.public_values import NOT_PUBLIC, PUBLIC_JUPYTERHUB_RELEASE
from pangeo_binder.scheduling import PURPOSE_LABELS, PURPOSE_TAINTS
from test_core_fit import _cluster_workloads, _core_pool, _objects
from test_hub_incluster import kube_cluster_config, process  # noqa: F401  (a fixture)
from test_network_policies import (
    _upstream_get_labels,
    assert_exactly_outside,
    matches,
    upstream_scheduler_api_port,
)
from test_public_binder import hub_values as public_hub_values
from test_public_binder import public_release as release

HELM = "kubernetes:helm.sh/v4:Chart"
CLOUDS = ["gcp", "aws"]
NAMESPACE = "binder-public"
CAPS = {"maxCores": 8, "maxMemoryGb": 64}


@pytest.fixture(scope="module")
def dask_run() -> Run:
    config = stack_config("staging")
    for cloud in CLOUDS:
        config = with_value(config, f"clouds.{cloud}.publicBinder.dask", {"enabled": True, **CAPS})
    return run_program("staging", config)


def gateway_values(run: Run, cloud: str) -> dict[str, Any]:
    return release(run, cloud, "dask-gateway")["values"]


# --- off by default --------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_off_by_default_nothing_of_it_is_registered(staging: Run, cloud: str) -> None:
    names = [r.name for r in staging.registrations if r.name.startswith(f"{cloud}-public")]
    assert f"{cloud}-public-binder-jupyterhub" in names
    assert not [n for n in names if "dask" in n or "quota" in n or "default-requests" in n]
    values = public_hub_values(staging, cloud)
    assert not [k for k in values["singleuser"]["extraEnv"] if k.startswith("DASK_")]
    assert set(values["hub"]["services"]) == {"binder"}


# --- the release -----------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_second_gateway_in_the_public_namespace_without_the_crds(
    dask_run: Run, cloud: str
) -> None:
    ours = release(dask_run, cloud, "dask-gateway")
    theirs = dask_run.one(HELM, f"{cloud}-hub-dask-gateway").inputs
    assert (ours["chart"], ours["version"]) == (DASK_GATEWAY.name, DASK_GATEWAY.version)
    assert (ours["name"], ours["namespace"]) == (PUBLIC_DASK_RELEASE, NAMESPACE)
    assert ours["values"]["fullnameOverride"] == PUBLIC_DASK_RELEASE != DASK_GATEWAY_RELEASE
    # The hub's gateway installs the shared CRDs; this one leaves them alone.
    assert ours["skipCrds"] is True
    assert "skipCrds" not in theirs
    # ... and waits for the hub's gateway (its CRDs) and the public hub (its token's Secret).
    chart = dask_run.one(HELM, f"{cloud}-public-binder-dask-gateway")
    for typ, before in (
        (HELM, "hub-dask-gateway"),
        (HELM, "public-binder-jupyterhub"),
        ("kubernetes:core/v1:ResourceQuota", "public-binder-quota"),
    ):
        assert dask_run.one(typ, f"{cloud}-{before}").urn in chart.dependencies, before


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_it_renders_validates_and_shares_no_cluster_wide_name(dask_run: Run, cloud: str) -> None:
    values = gateway_values(dask_run, cloud)
    validate_values(DASK_GATEWAY, values)
    ours = render(DASK_GATEWAY, values, release=PUBLIC_DASK_RELEASE, namespace=NAMESPACE)
    validate_objects(ours)
    theirs = render(
        DASK_GATEWAY,
        dask_run.one(HELM, f"{cloud}-hub-dask-gateway").inputs["values"],
        release=DASK_GATEWAY_RELEASE,
        namespace="binder",
    )
    scoped = {"ClusterRole", "ClusterRoleBinding"}

    def names(objects: list[dict[str, Any]], kinds: set[str]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in kinds}

    assert names(ours, scoped) and not names(ours, scoped) & names(theirs, scoped)
    # The CRDs are the same objects in both: the reason this release skips them.
    crds = {"CustomResourceDefinition"}
    assert names(ours, crds) == names(theirs, crds) and names(ours, crds)
    # Traefik and the controller watch only this release's objects.
    traefik = find(ours, "Deployment", f"traefik-{PUBLIC_DASK_RELEASE}")[0]
    args = traefik["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        f"--providers.kubernetescrd.labelselector=gateway.dask.org/instance={PUBLIC_DASK_RELEASE}"
        in args
    )
    controller = find(ours, "ConfigMap", f"controller-{PUBLIC_DASK_RELEASE}")[0]
    assert (
        f"gateway_instance = '{PUBLIC_DASK_RELEASE}'"
        in controller["data"]["dask_gateway_config.py"]
    )
    # The policies select the rendered pods by their labels.
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in find(ours, "Deployment")
    }
    assert pods[f"traefik-{PUBLIC_DASK_RELEASE}"].items() >= PUBLIC_TRAEFIK_LABELS.items()


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_it_authenticates_against_the_public_hub_with_its_own_token(
    dask_run: Run, cloud: str
) -> None:
    values = gateway_values(dask_run, cloud)
    auth = values["gateway"]["auth"]
    assert auth["type"] == "jupyterhub"
    assert auth["jupyterhub"]["apiUrl"] == f"http://hub.{NAMESPACE}:8081/hub/api"
    gateway = render(DASK_GATEWAY, values, release=PUBLIC_DASK_RELEASE, namespace=NAMESPACE)
    api = find(gateway, "Deployment", f"api-{PUBLIC_DASK_RELEASE}")[0]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    # The public z2jh release's Secret (namespace binder-public) holds that key, with the
    # token the public hub registered for the service; the hub's own token is another.
    hub_values = public_hub_values(dask_run, cloud)
    hub = render(JUPYTERHUB, hub_values, release=PUBLIC_JUPYTERHUB_RELEASE, namespace=NAMESPACE)
    secret = find(hub, "Secret", ref["name"])[0]
    assert ref["key"] in secret.get("stringData", secret.get("data", {}))
    token = hub_values["hub"]["services"]["dask-gateway"]["apiToken"]
    authenticated = dask_run.one(HELM, f"{cloud}-hub-jupyterhub").inputs["values"]
    assert token and token != authenticated["hub"]["services"]["dask-gateway"]["apiToken"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_clusters_have_no_identity_workers_on_spot_dask_schedulers_on_public(
    dask_run: Run, cloud: str
) -> None:
    backend = gateway_values(dask_run, cloud)["gateway"]["backend"]
    pools = stack_config("staging")["clouds"][cloud]["nodePools"]
    for role, purpose in (("worker", "dask"), ("scheduler", "public")):
        pod = backend[role]["extraPodConfig"]
        assert pod["automountServiceAccountToken"] is False
        assert "serviceAccountName" not in pod  # the namespace's default: no annotation
        assert pod["nodeSelector"].items() >= PURPOSE_LABELS[purpose].items()
        key, value = PURPOSE_TAINTS[purpose]
        assert [(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]] == [
            (key, value, "NoSchedule")
        ]
    assert pools["dask"]["purpose"] == "dask" and pools["dask"]["spot"] is True
    # The authenticated gateway's workers on the same pool, with the same toleration.
    hub_backend = dask_run.one(HELM, f"{cloud}-hub-dask-gateway").inputs["values"]["gateway"][
        "backend"
    ]
    hub_worker = hub_backend["worker"]["extraPodConfig"]
    assert backend["worker"]["extraPodConfig"]["nodeSelector"] == hub_worker["nodeSelector"]
    assert backend["worker"]["extraPodConfig"]["tolerations"] == hub_worker["tolerations"]


# --- the options handler ---------------------------------------------------------------------


def handler_settings(run: Run, cloud: str) -> tuple[dict[str, Any], types.SimpleNamespace]:
    """The extraConfig entries executed as the chart appends them to its config file."""
    extra = gateway_values(run, cloud)["gateway"]["extraConfig"]
    assert sorted(extra) == ["00-settings", "10-options"]
    assert extra["10-options"] == source("public_gateway_options")
    c = types.SimpleNamespace(Backend=types.SimpleNamespace())
    namespace: dict[str, Any] = {"c": c}
    text = "import os\nimport json\n\n" + "\n".join(extra[k] for k in sorted(extra))
    exec(compile(text, "dask_gateway_config.py", "exec"), namespace)
    return namespace["PANGEO_BINDER_PUBLIC_DASK"], c


@pytest.mark.parametrize("cloud", CLOUDS)
def test_anonymous_users_get_the_smallest_worker_and_the_caps(
    dask_run: Run,
    cloud: str,
    kube_cluster_config: type,  # noqa: F811
) -> None:
    from dask_gateway_server.backends.base import Backend, PublicException
    from dask_gateway_server.models import User

    settings, c = handler_settings(dask_run, cloud)
    machine = stack_config("staging")["clouds"][cloud]["nodePools"]["dask"]["machineType"]
    node = machines.allocatable(cloud, machine)
    assert node is not None
    size = settings["workerSize"]
    # The smallest cut of a dask node: an eighth of it, well under a whole node.
    assert size["cores"] == pytest.approx(node.cpu / 8, abs=0.001)
    options = c.Backend.cluster_options
    assert [f["field"] for f in options.get_specification()] == ["worker_size", "image"]
    sizes = next(f for f in options.get_specification() if f["field"] == "worker_size")
    assert sizes["spec"]["options"] == [size["name"]]
    backend = Backend(cluster_options=options, cluster_config_class=kube_cluster_config)
    prefix = public_hub_values(dask_run, cloud)["hub"]["config"]["PublicBinderSpawner"][
        "image_prefix"
    ]
    image = f"{prefix}pangeo-gallery-cmip6:0123abc"
    user = User("anonymous-1")
    _, config = process(backend, user, {"image": image})
    assert config.image == image
    assert config.worker_cores == config.worker_cores_limit == size["cores"]
    assert config.worker_memory == size["memoryMib"] * 2**20
    assert config.idle_timeout == 30 * 60
    assert config.cluster_max_cores == CAPS["maxCores"]
    assert config.cluster_max_memory == CAPS["maxMemoryGb"] * 2**30
    # The gateway caps workers by maxWorkers (4) and by what the caps leave after the scheduler.
    assert config.cluster_max_workers == min(
        4,
        int((CAPS["maxCores"] - 0.5) // size["cores"]),
        int((CAPS["maxMemoryGb"] * 1024 - 1024) // size["memoryMib"]),
    )
    assert config.scheduler_cores == 0.5
    # Every key the handler returns is a trait of the cluster config.
    overrides = pgo.cluster_config(settings, {"image": image, "worker_size": size["name"]}, user)
    assert set(overrides) <= set(kube_cluster_config.class_trait_names())
    # Refused: any image this Binder did not build, no image, a larger size, environment.
    for request in ({"image": "xmrig/xmrig:latest"}, {}, {"image": f"x{prefix}a:b"}):
        with pytest.raises(PublicException, match="not built by this Binder"):
            process(backend, user, request)
    with pytest.raises(PublicException, match="is not a valid option for worker_size"):
        process(backend, user, {"image": image, "worker_size": "64GiB-8cpu"})
    with pytest.raises(PublicException):
        process(backend, user, {"image": image, "environment": {"A": "1"}})


def test_the_handler_source_alone_configures_nothing() -> None:
    c = types.SimpleNamespace(Backend=types.SimpleNamespace())
    exec(source("public_gateway_options"), {"c": c})
    assert not hasattr(c.Backend, "cluster_options")


# --- the public hub's piece ------------------------------------------------------------------


def test_the_piece_is_what_the_component_merges(dask_run: Run, staging: Run) -> None:
    """The registered public z2jh values are the real public values with the piece merged:
    services, scopes, environment and rules added, nothing of the values replaced."""
    for cloud in CLOUDS:
        on, off = public_hub_values(dask_run, cloud), public_hub_values(staging, cloud)
        assert set(on["hub"]["services"]) == {"binder", "dask-gateway"}
        assert on["hub"]["loadRoles"]["binder"] == off["hub"]["loadRoles"]["binder"]
        policies = {
            "singleuser": ("singleuser",),
            "hub": ("hub",),
            "proxy": ("proxy", "chp"),
        }
        for component, keys in policies.items():
            for direction in ("egress", "ingress") if component == "hub" else ("egress",):
                grown, base = (
                    _dig(values, *keys, "networkPolicy", direction) for values in (on, off)
                )
                # The public values' rules first and unchanged, then one rule of the piece.
                assert grown[:-1] == base and len(grown) == len(base) + 1, (component, direction)


def _dig(values: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        values = values[key]
    return values


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_public_server_gets_the_gateway_settings_and_token_scope(
    dask_run: Run, cloud: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """z2jh's own jupyterhub_config.py on the rendered public release, with the pinned
    JupyterHub and KubeSpawner: the gateway is a service, a server's token may reach it, and
    the pod's environment points the client at the public gateway with the notebook's image."""
    from jupyterhub.objects import Server
    from kubernetes_asyncio.client import ApiClient

    values = public_hub_values(dask_run, cloud)
    objects = render(JUPYTERHUB, values, release=PUBLIC_JUPYTERHUB_RELEASE, namespace=NAMESPACE)
    validate_objects(objects)
    config = hub_config(objects, tmp_path, NAMESPACE, monkeypatch)
    services = {s["name"]: s for s in config.JupyterHub.services}
    assert services["dask-gateway"]["url"] == f"http://traefik-{PUBLIC_DASK_RELEASE}"
    access = "access:services!service=dask-gateway"
    roles = {r["name"]: r for r in config.JupyterHub.load_roles}
    assert access in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]
    spawner_class = config.JupyterHub.spawner_class
    prefix = values["hub"]["config"]["PublicBinderSpawner"]["image_prefix"]
    image = f"{prefix}pangeo-gallery-cmip6:0123abc"

    async def manifest() -> tuple[list[str], dict[str, Any]]:
        async with ApiClient() as api:
            spawner = spawner_class(config=config, _mock=True)
            spawner.server = Server(base_url="/user/anonymous-1/")
            spawner.user_options = {"token": "t", "image": image, "repo_url": "https://x/y"}
            spawner.image = image
            pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
            return list(spawner.server_token_scopes), pod

    scopes, pod = run_on_own_loop(manifest())
    assert access in scopes
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    traefik = f"traefik-{PUBLIC_DASK_RELEASE}.{NAMESPACE}"
    assert env["DASK_GATEWAY__ADDRESS"] == f"http://{traefik}/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == f"gateway://{traefik}:80"
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"].startswith(f"https://binder.{cloud}.")
    assert env["DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE"] == "{JUPYTER_IMAGE_SPEC}"
    assert env["JUPYTER_IMAGE_SPEC"] == image
    assert not [name for name in env if "BUCKET" in name]


# --- network policies and the quota ----------------------------------------------------------


def _ip_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in policy["egress"] if any("ipBlock" in p for p in r.get("to", []))]


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_servers_reach_in_the_cluster_only_the_public_traefik(dask_run: Run, cloud: str) -> None:
    objects = render(
        JUPYTERHUB,
        public_hub_values(dask_run, cloud),
        release=PUBLIC_JUPYTERHUB_RELEASE,
        namespace=NAMESPACE,
    )
    policy = find(objects, "NetworkPolicy", "singleuser")[0]["spec"]
    pod_rules = [
        r for r in policy["egress"] if any("podSelector" in p for p in r.get("to", [])) and r
    ]
    ours = [
        r
        for r in pod_rules
        if r["to"][0]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "traefik"
    ]
    assert len(ours) == 1
    assert ours[0]["to"][0]["podSelector"]["matchLabels"] == PUBLIC_TRAEFIK_LABELS
    assert "namespaceSelector" not in ours[0]["to"][0]
    assert ours[0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    for rule in _ip_rules(policy):
        assert_exactly_outside(rule, NOT_PUBLIC)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_dask_pods_egress_like_public_servers(dask_run: Run, cloud: str) -> None:
    policy = dask_run.one(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        f"{cloud}-public-binder-public-dask-clusters",
    ).inputs
    assert policy["metadata"]["namespace"] == NAMESPACE
    spec = policy["spec"]
    selector = spec["podSelector"]
    assert selector["matchLabels"] == {"gateway.dask.org/instance": PUBLIC_DASK_RELEASE}
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    # Addresses: only the public internet; no private range, no metadata server.
    fenced = [ipaddress.ip_network(cidr) for cidr in NOT_PUBLIC]
    for rule in _ip_rules(spec):
        assert {p["port"] for p in rule["ports"]} == {80, 443, 9418}
        assert_exactly_outside(rule, NOT_PUBLIC)
    # Pods: each other, this gateway's API, DNS in kube-system; every pod rule names this
    # gateway's instance or kube-dns, never the hub's namespace.
    for rule in spec["egress"]:
        for peer in rule.get("to", []):
            if "podSelector" in peer and "namespaceSelector" not in peer:
                labels = peer["podSelector"].get("matchLabels", {})
                assert labels.get("gateway.dask.org/instance") == PUBLIC_DASK_RELEASE, rule
            elif "namespaceSelector" in peer:
                assert peer["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": "kube-system"
                }
    sources = [p["podSelector"] for r in spec["ingress"] for p in r["from"]]
    assert all(
        s["matchLabels"]["gateway.dask.org/instance"] == PUBLIC_DASK_RELEASE for s in sources
    )
    for address in ("169.254.169.254", "169.254.169.252", "10.0.0.1", "172.16.0.1"):
        assert any(ipaddress.ip_address(address) in net for net in fenced)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_gateway_pods_reach_only_what_they_serve(dask_run: Run, cloud: str) -> None:
    """The gateway API, controller and Traefik (the namespace denies egress otherwise): DNS,
    the Kubernetes API on 443, the public hub's API, each other, the schedulers."""
    spec = dask_run.one(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        f"{cloud}-public-binder-public-dask-gateway",
    ).inputs["spec"]
    assert spec["podSelector"]["matchLabels"] == {"gateway.dask.org/instance": PUBLIC_DASK_RELEASE}
    assert spec["policyTypes"] == ["Egress"]
    for rule in spec["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert ports == {443}, rule  # the API server, as the public hub has it
            elif "namespaceSelector" in peer:
                assert ports == {53}
            else:
                labels = peer["podSelector"].get("matchLabels", {})
                assert (labels == {"component": "hub"} and ports == {8081}) or (
                    labels == {"gateway.dask.org/instance": PUBLIC_DASK_RELEASE}
                ), rule


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_gateway_api_reaches_the_schedulers_api_port(dask_run: Run, cloud: str) -> None:
    """Scale and adapt go from the public gateway's API pod to each scheduler's API port: the
    clusters' policy admits it there and the gateway's own (egress) policy lets it out."""
    port = upstream_scheduler_api_port()
    ours = render(
        DASK_GATEWAY,
        gateway_values(dask_run, cloud),
        release=PUBLIC_DASK_RELEASE,
        namespace=NAMESPACE,
    )
    (api,) = find(ours, "Deployment", f"api-{PUBLIC_DASK_RELEASE}")
    gateway = api["spec"]["template"]["metadata"]["labels"]
    controller = types.SimpleNamespace(
        common_labels={"app.kubernetes.io/name": "dask-gateway"},
        gateway_instance=PUBLIC_DASK_RELEASE,
    )
    scheduler = _upstream_get_labels()(controller, "alice-cluster", "dask-scheduler")
    policies = {
        name: dask_run.one(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{cloud}-public-binder-{name}"
        ).inputs["spec"]
        for name in ("public-dask-clusters", "public-dask-gateway")
    }
    clusters, control = policies["public-dask-clusters"], policies["public-dask-gateway"]
    assert matches(clusters["podSelector"], scheduler)
    assert any(
        any(matches(p["podSelector"], gateway) for p in rule["from"])
        and port in {p["port"] for p in rule["ports"]}
        for rule in clusters["ingress"]
    ), "scheduler admits the gateway API on 8788"
    assert matches(control["podSelector"], gateway)
    assert any(
        any(
            matches(p.get("podSelector", {"matchLabels": {"-": "-"}}), scheduler)
            for p in rule["to"]
        )
        and port in {p["port"] for p in rule["ports"]}
        for rule in control["egress"]
    ), "the gateway API may send to 8788"


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_quota_holds_the_public_binder_and_bounds_anonymous_use(
    dask_run: Run, cloud: str
) -> None:
    quota = dask_run.one("kubernetes:core/v1:ResourceQuota", f"{cloud}-public-binder-quota")
    assert quota.inputs["metadata"]["namespace"] == NAMESPACE
    hard = quota.inputs["spec"]["hard"]
    cpu, memory = (
        core_fit.cpu_cores(hard["requests.cpu"]),
        core_fit.memory_gib(hard["requests.memory"]),
    )
    config = stack_config("staging")["clouds"][cloud]
    public = config["publicBinder"]
    servers = (public.get("totalQuota", 50) * 0.5, public.get("totalQuota", 50) * 2.0)
    # Room for every public server at its guarantee and a few full Dask clusters ...
    assert cpu >= servers[0] + DASK_CLUSTERS_IN_QUOTA * CAPS["maxCores"]
    assert memory >= servers[1] + DASK_CLUSTERS_IN_QUOTA * CAPS["maxMemoryGb"]
    # ... and the namespace's own pods on core nodes (rendered) within the platform share.
    namespace_objects = []
    for chart, pin in (("jupyterhub", JUPYTERHUB), ("dask-gateway", DASK_GATEWAY)):
        inputs = release(dask_run, cloud, chart)
        namespace_objects += render(
            pin, inputs["values"], release=inputs["name"], namespace=NAMESPACE
        )
    core_pods = core_fit.core_workloads(namespace_objects)
    assert len(core_pods) >= 6
    assert sum(w.cpu for w in core_pods) <= PLATFORM[1]
    assert sum(w.memory_gib for w in core_pods) <= PLATFORM[2]
    # Far below what the dask pool alone could hold: anonymous users can't take the cluster.
    dask = config["nodePools"]["dask"]
    node = machines.allocatable(cloud, dask["machineType"])
    assert node is not None
    assert cpu < dask["maxNodes"] * node.cpu / 4
    limits = dask_run.one(
        "kubernetes:core/v1:LimitRange", f"{cloud}-public-binder-default-requests"
    )
    assert limits.inputs["spec"]["limits"][0]["defaultRequest"]


@pytest.mark.usefixtures("chart_files")
def test_gcp_staging_core_pool_still_holds_it(dask_run: Run) -> None:
    """With public Dask on, GCP staging's two core nodes still hold every core pod; AWS
    staging's one t3a.large does not, which is why the stack file leaves it off."""
    fits = {}
    for cloud in CLOUDS:
        machine, nodes = _core_pool("staging", cloud)
        ours = core_fit.core_workloads(_objects(dask_run, cloud), "rendered")
        ours += _cluster_workloads(dask_run, cloud)
        fit = core_fit.core_fit(cloud, machine, nodes, ours, core_fit.EXTRA_CORE_WORKLOADS)
        fits[cloud] = fit.fits
    assert fits == {"gcp": True, "aws": False}


def test_the_piece_is_empty_with_dask_off() -> None:
    from pangeo_binder.config_public import PublicBinder

    public = PublicBinder.model_validate(
        {"domain": "binder.example.org", "allowedRepositories": ["^pangeo-gallery/.*"]}
    )
    assert not public.dask.enabled
    assert public_dask_hub_piece(None, public) == {}  # type: ignore[arg-type]


def test_the_plan_prices_nothing_new_idle(tmp_path: Path) -> None:
    """No pool of its own: idle, public Dask costs what the stack costs without it, and its
    ceiling is the dask and public pools' maxNodes, already priced."""
    from pangeo_binder.plan import build
    from pangeo_binder.plan.cost import Prices
    from test_plan import TEST_PRICES, lines

    stack = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    clouds = stack["config"]["pangeo-binder:clouds"]
    for cloud in CLOUDS:
        clouds[cloud]["publicBinder"]["dask"] = {"enabled": True, **CAPS}
    stack_file = tmp_path / "Pulumi.staging.yaml"
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    prices = Prices(copy.deepcopy(TEST_PRICES))
    off = build.plan(build.evaluate(ROOT, "staging"), prices)
    on = build.plan(build.evaluate(ROOT, "staging", stack_file), prices)
    assert len(on["clouds"]["gcp"]["resources"]) > len(off["clouds"]["gcp"]["resources"])
    for cloud in CLOUDS:
        for scope in ("idle", "ceiling"):
            on_lines, off_lines = (
                sorted(lines(plan, cloud, scope), key=lambda x: x["item"]) for plan in (on, off)
            )
            assert on_lines == off_lines, (cloud, scope)
