"""The network routes of the hub, read from the rendered charts: on both clouds the proxy and the
hub reach BinderHub and Dask Gateway's Traefik by pod selector (GKE's Dataplane V2 never matches
pod traffic with IP-range rules), the selectors match the pods the charts really render on the
ports they really listen on, and Dask schedulers and workers are covered by a policy of their
own. Also: the image puller stays off GPU nodes, and BinderHub calls GitHub as the hub's app."""

from __future__ import annotations

import ast
import importlib.util
import ipaddress
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chart_render import find, render, validate_objects
from conftest import HELM, release
from harness import PLANTED_SECRET, Run
from pangeo_binder.charts import BINDERHUB_SERVICE, DASK_GATEWAY, JUPYTERHUB
from pangeo_binder.hub.context import metadata_egress
from pangeo_binder.hub.dask_values import SCHEDULER_API_PORT, dask_network_policy

pytestmark = pytest.mark.usefixtures("chart_files")
NAMESPACE = "binder"


def rendered(run: Run, cloud: str) -> dict[str, list[dict]]:
    """Every object of the three releases, by chart."""
    return {
        chart: render(pin, release(run, cloud, chart)["values"], release=chart, namespace=NAMESPACE)
        for pin, chart in (
            (JUPYTERHUB, "jupyterhub"),
            (DASK_GATEWAY, "dask-gateway"),
            (BINDERHUB_SERVICE, "binderhub-service"),
        )
    }


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the In/NotIn/Exists operators)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def container_ports(deployment: dict) -> set[int]:
    return {
        port["containerPort"]
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for port in container.get("ports", [])
    }


def ip_reach(rule: dict) -> list[ipaddress.IPv4Network]:
    """The addresses a rule's ipBlock peers cover (each block less its exceptions)."""
    reach: list[ipaddress.IPv4Network] = []
    for peer in rule.get("to", []):
        if "ipBlock" not in peer:
            continue
        blocks = [ipaddress.IPv4Network(peer["ipBlock"]["cidr"])]
        for cut in map(ipaddress.IPv4Network, peer["ipBlock"].get("except", [])):
            blocks = [
                part
                for block in blocks
                for part in (
                    block.address_exclude(cut) if cut.subnet_of(block) else
                    ([] if block.subnet_of(cut) else [block])
                )
            ]  # fmt: skip
        reach += blocks
    return list(ipaddress.collapse_addresses(reach))


def assert_exactly_outside(rule: dict, excluded: tuple[str, ...]) -> None:
    """The rule reaches every IPv4 address outside `excluded` and none inside, and says so
    without `except` (hub/context.py egress_outside: the EKS agent's #121)."""
    assert all("except" not in peer.get("ipBlock", {}) for peer in rule["to"]), rule
    reach = ip_reach(rule)
    cuts = list(ipaddress.collapse_addresses(map(ipaddress.IPv4Network, excluded)))
    assert not any(net.overlaps(cut) for net in reach for cut in cuts)
    assert sum(n.num_addresses for n in reach) + sum(c.num_addresses for c in cuts) == 2**32


def pod_routes(policy: dict) -> list[tuple[dict, set[int]]]:
    """(pod selector, TCP ports) of every egress rule that names pods by selector."""
    routes = []
    for rule in policy["spec"].get("egress", []):
        ports = {p["port"] for p in rule.get("ports", []) if p.get("protocol", "TCP") == "TCP"}
        for peer in rule.get("to", []):
            if "podSelector" in peer and "ipBlock" not in peer and "namespaceSelector" not in peer:
                routes.append((peer["podSelector"], ports))
    return routes


def reaches_by_selector(policy: dict, deployment: dict, port: int) -> bool:
    """Some egress rule names `deployment`'s pods by selector and opens `port`."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return any(matches(sel, labels) and port in ports for sel, ports in pod_routes(policy))


@pytest.mark.parametrize("component", ["proxy", "hub"])
def test_the_proxy_and_hub_reach_binderhub_and_traefik_by_pod_selector(
    case: tuple[Run, str], component: str
) -> None:
    run, cloud = case
    objects = rendered(run, cloud)
    (policy,) = find(objects["jupyterhub"], "NetworkPolicy", component)
    (binderhub,) = find(objects["binderhub-service"], "Deployment", "binderhub")
    (traefik,) = find(objects["dask-gateway"], "Deployment", "traefik-dask-gateway")
    # The ports the pods really listen on, which a NetworkPolicy matches (not Service ports).
    assert 8585 in container_ports(binderhub)
    assert 8000 in container_ports(traefik)
    assert reaches_by_selector(policy, binderhub, 8585), f"{component} -> binderhub"
    assert reaches_by_selector(policy, traefik, 8000), f"{component} -> traefik"


def test_the_route_check_sees_a_missing_route(case: tuple[Run, str]) -> None:
    """The check above fails for the proxy's policy with its pod-selector rules taken out:
    z2jh's IP-range rules alone do not count as a route."""
    run, cloud = case
    objects = rendered(run, cloud)
    (policy,) = find(objects["jupyterhub"], "NetworkPolicy", "proxy")
    (binderhub,) = find(objects["binderhub-service"], "Deployment", "binderhub")
    ip_rules_only = {
        "spec": {
            "egress": [
                rule
                for rule in policy["spec"]["egress"]
                if not any("podSelector" in peer for peer in rule.get("to", []))
            ]
        }
    }
    assert ip_rules_only["spec"]["egress"]  # z2jh's own rules are still there
    assert not reaches_by_selector(ip_rules_only, binderhub, 8585)


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PUBLIC_RELEASES = (
    (JUPYTERHUB, "jupyterhub", "public-jupyterhub"),
    (BINDERHUB_SERVICE, "binderhub-service", "public-binderhub-service"),
)


def every_policy(run: Run, cloud: str) -> dict[str, dict]:
    """Every NetworkPolicy of one cloud: the ones the hub's (and, where it runs, the public
    Binder's) releases render and the ones the program registers itself, by name."""
    found = {
        f"{chart}/{o['metadata']['name']}": o
        for chart, objects in rendered(run, cloud).items()
        for o in objects
        if o["kind"] == "NetworkPolicy"
    }
    for pin, chart, name in PUBLIC_RELEASES:
        matching = [r for r in run.of_type(HELM) if r.name == f"{cloud}-public-binder-{chart}"]
        for r in matching:
            objects = render(pin, r.inputs["values"], release=name, namespace="binder-public")
            found |= {
                f"{name}/{o['metadata']['name']}": o
                for o in objects
                if o["kind"] == "NetworkPolicy"
            }
    found |= {r.name: r.inputs for r in run.of_type(NETWORK_POLICY) if r.name.startswith(cloud)}
    return found


KUBE_DNS = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
]


def test_every_dns_rule_goes_to_kube_dns_by_selector(case: tuple[Run, str]) -> None:
    """No port-only rule (beside an `except` rule the EKS agent drops DNS with it:
    aws/amazon-network-policy-controller-k8s #146) and no DNS rule to an IP range or a whole
    namespace: every rule naming port 53 goes to kube-dns in kube-system by selector, and each
    z2jh component whose DNS shortcuts are off has that rule."""
    run, cloud = case
    policies = every_policy(run, cloud)
    assert len(policies) > 8
    for name, policy in policies.items():
        egress = policy["spec"].get("egress", [])
        for rule in egress:
            assert rule.get("to"), (name, "a rule for every destination", rule)
            if any(p.get("port") == 53 for p in rule.get("ports", [])):
                assert rule["to"] == KUBE_DNS, (name, rule)
    # The public Binder runs in staging only (test_public_binder: none in prod).
    public = any(name.startswith("public-jupyterhub/") for name in policies)
    assert public == any(r.name == f"{cloud}-public-binder-jupyterhub" for r in run.of_type(HELM))
    for release_name in ("jupyterhub", "public-jupyterhub") if public else ("jupyterhub",):
        for component in ("hub", "proxy", "autohttps", "singleuser"):
            egress = policies[f"{release_name}/{component}"]["spec"]["egress"]
            assert any(rule.get("to") == KUBE_DNS for rule in egress), (release_name, component)


# The binderhub-service chart's own build and docker-api policies in the hub's namespace
# (`0.0.0.0/0 except RFC 1918` beside a DNS rule by selector, no API rule). The public
# Binder's are off and replaced by ours (public_values.public_network_policies).
CHART_EXCEPTS = ("binderhub-service/",)


def test_no_rule_depends_on_how_an_agent_applies_except(case: tuple[Run, str]) -> None:
    """Every policy we write or z2jh renders for us says "the internet" as blocks, never as
    `0.0.0.0/0 except ...`: the EKS agent has let one rule's exceptions cut another rule's
    addresses (#121), and the Kubernetes API rules (private ranges on 443) sit beside them."""
    run, cloud = case
    policies = every_policy(run, cloud)
    checked = 0
    for name, policy in policies.items():
        if name.startswith(CHART_EXCEPTS):
            continue
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                assert "except" not in peer.get("ipBlock", {}), (name, rule)
        checked += 1
    assert checked >= 7


def _upstream_get_labels() -> Any:
    """`KubeController.get_labels` of the pinned dask-gateway-server, compiled from its source
    (its module needs kubernetes_asyncio, which the suite does not install)."""
    spec = importlib.util.find_spec("dask_gateway_server")
    assert spec and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "backends" / "kubernetes" / "controller.py"
    tree = ast.parse(path.read_text())
    (controller,) = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KubeController"
    ]
    (method,) = [
        n for n in controller.body if isinstance(n, ast.FunctionDef) and n.name == "get_labels"
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=[method], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["get_labels"]


def dask_pod_labels(component: str) -> dict[str, str]:
    """The labels the gateway's Kubernetes backend gives a cluster's pods: its own
    `get_labels`, with the common labels and instance the chart's config gives it."""
    controller = SimpleNamespace(
        common_labels={"app.kubernetes.io/name": "dask-gateway"}, gateway_instance="dask-gateway"
    )
    return _upstream_get_labels()(controller, "alice-cluster", component)


def test_dask_schedulers_and_workers_are_covered_by_their_own_policy(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    objects = rendered(run, cloud)
    (config_map,) = find(objects["dask-gateway"], "ConfigMap", "api-dask-gateway")
    assert 'c.KubeBackend.gateway_instance = "dask-gateway"' in str(config_map["data"])
    (registration,) = [
        r
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.name == f"{cloud}-hub-dask-clusters-policy"
    ]
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **registration.inputs}
    validate_objects([policy])
    selector = policy["spec"]["podSelector"]
    scheduler, worker = dask_pod_labels("dask-scheduler"), dask_pod_labels("dask-worker")
    assert matches(selector, scheduler) and matches(selector, worker)
    # Nothing else of the chart's: the gateway, controller and Traefik keep their own reach.
    for deployment in find(objects["dask-gateway"], "Deployment"):
        assert not matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress = policy["spec"]["ingress"]
    (traefik,) = find(objects["dask-gateway"], "Deployment", "traefik-dask-gateway")
    traefik_labels = traefik["spec"]["template"]["metadata"]["labels"]
    # notebook -> scheduler goes through Traefik (the clients' proxy address), on 8786 and 8787
    assert any(
        any(matches(p["podSelector"], traefik_labels) for p in rule.get("from", []))
        and {p["port"] for p in rule["ports"]} == {8786, 8787}
        for rule in ingress
    )
    # scheduler <-> worker, any port
    assert any(
        "ports" not in rule and any(matches(p["podSelector"], worker) for p in rule.get("from", []))
        for rule in ingress
    )
    egress = policy["spec"]["egress"]
    blocks = [p["ipBlock"] for rule in egress for p in rule.get("to", []) if "ipBlock" in p]
    # The internet: every address outside the private and link-local ranges, any port.
    (internet,) = [r for r in egress if "ports" not in r and ip_reach(r)]
    assert_exactly_outside(
        internet, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
    )
    metadata = {b["cidr"] for b in blocks if b["cidr"].startswith("169.254.169.")}
    assert metadata == ({"169.254.169.254/32", "169.254.169.252/32"} if cloud == "gcp" else set())
    assert any(
        {(p["port"], p["protocol"]) for p in rule.get("ports", [])} >= {(53, "UDP"), (53, "TCP")}
        for rule in egress
    )
    assert not any("except" in block for block in blocks)
    # The gateway release waits for the policy: no cluster starts unfenced.
    gateway = run.one("kubernetes:helm.sh/v4:Chart", f"{cloud}-hub-dask-gateway")
    assert registration.urn in gateway.dependencies


def _upstream_source(*parts: str) -> str:
    """A module of the installed (pinned) dask-gateway-server, as text."""
    spec = importlib.util.find_spec("dask_gateway_server")
    assert spec and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0], *parts).read_text()


def upstream_scheduler_api_port() -> int:
    """The port the gateway API sends scale and adapt to, read from the pinned backend: the
    address it builds for a running cluster, the port the scheduler is told to serve its API
    on, and the scheduler Service's `api` port must all be the same number."""
    backend = _upstream_source("backends", "kubernetes", "backend.py")
    controller = _upstream_source("backends", "kubernetes", "controller.py")
    (built,) = re.findall(r'api_address = f"http://\{service_name\}\.\{namespace\}:(\d+)"', backend)
    (served,) = re.findall(r'"--dg-api-address",\s*":(\d+)"', controller)
    (service,) = re.findall(r'\{"name": "api", "port": (\d+), "target_port": "api"\}', controller)
    assert built == served == service
    return int(built)


def test_the_gateway_api_reaches_each_schedulers_api_port(case: tuple[Run, str]) -> None:
    """Every `cluster.scale()` and `adapt()` is a request from the gateway API pod to the
    scheduler's API port; refused, the gateway marks the cluster failed and stops it."""
    run, cloud = case
    port = upstream_scheduler_api_port()
    assert port == SCHEDULER_API_PORT == 8788
    (gateway,) = find(rendered(run, cloud)["dask-gateway"], "Deployment", "api-dask-gateway")
    gateway_labels = gateway["spec"]["template"]["metadata"]["labels"]
    policy = run.one(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{cloud}-hub-dask-clusters-policy"
    ).inputs
    assert matches(policy["spec"]["podSelector"], dask_pod_labels("dask-scheduler"))
    admitted = [
        rule
        for rule in policy["spec"]["ingress"]
        if any(matches(p["podSelector"], gateway_labels) for p in rule.get("from", []))
        and port in {p["port"] for p in rule.get("ports", [])}
    ]
    assert admitted, "gateway API -> scheduler 8788"
    # Only the API pod: the controller and Traefik do not get the scheduler's API.
    for name in ("controller-dask-gateway", "traefik-dask-gateway"):
        (other,) = find(rendered(run, cloud)["dask-gateway"], "Deployment", name)
        labels = other["spec"]["template"]["metadata"]["labels"]
        assert not any(
            matches(p["podSelector"], labels) for rule in admitted for p in rule["from"]
        ), name


def test_the_policy_builder_is_the_registered_one() -> None:
    policy = dask_network_policy("aws", "binder")
    assert policy["metadata"] == {"name": "dask-clusters", "namespace": "binder"}
    assert not any(
        "169.254.169" in str(rule) for rule in policy["spec"]["egress"] if "except" not in str(rule)
    )


def test_the_image_puller_stays_off_gpu_nodes(case: tuple[Run, str]) -> None:
    run, cloud = case
    (puller,) = find(rendered(run, cloud)["jupyterhub"], "DaemonSet", "continuous-image-puller")
    keys = {t.get("key") for t in puller["spec"]["template"]["spec"].get("tolerations", [])}
    assert "nvidia.com/gpu" not in keys
    assert "hub.jupyter.org/dedicated" in keys  # it still runs on every ordinary user node


def metadata_ports(policy: dict) -> set[int | str]:
    """The ports a policy opens to the metadata address 169.254.169.254 ("any" for all)."""
    opened: set[int | str] = set()
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock", {})
            covers = block.get("cidr") == "169.254.169.254/32" or (
                block.get("cidr") == "0.0.0.0/0"
                and "169.254.169.254/32" not in block.get("except", [])
                and "169.254.0.0/16" not in block.get("except", [])
            )
            if covers:
                ports = rule.get("ports")
                opened |= {p["port"] for p in ports} if ports else {"any"}
    return opened


def metadata_rules(policy: dict) -> set[tuple[str, int | str]]:
    """(cidr, port) of every egress rule that names a metadata address by itself."""
    return {
        (peer["ipBlock"]["cidr"], port["port"] if port else "any")
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if peer.get("ipBlock", {}).get("cidr", "").startswith("169.254.")
        for port in (rule.get("ports") or [None])
    }


def test_every_pod_with_cloud_credentials_reaches_the_metadata_server_as_its_dataplane_does(
    case: tuple[Run, str],
) -> None:
    """Notebooks, Dask clusters and (staging) the public BinderHub: on GKE the pre-NAT address
    Dataplane V2 evaluates (169.254.169.254:80) and the daemon the legacy dataplane sees
    (169.254.169.252:988), nothing else there; on EKS (IRSA, STS over the internet) none."""
    run, cloud = case
    expected = (
        {("169.254.169.254/32", 80), ("169.254.169.252/32", 988)} if cloud == "gcp" else set()
    )
    (user,) = find(rendered(run, cloud)["jupyterhub"], "NetworkPolicy", "singleuser")
    policies = {
        "singleuser": user,
        "dask-clusters": run.one(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{cloud}-hub-dask-clusters-policy"
        ).inputs,
    }
    public = [
        r
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.name == f"{cloud}-public-binder-binderhub-egress"
    ]
    if public:
        policies["public binderhub"] = public[0].inputs
    for name, policy in policies.items():
        assert metadata_rules(policy) == expected, name
    assert metadata_rules({"spec": {"egress": metadata_egress(cloud)}}) == expected


def test_no_privileged_metadata_blocker_and_the_policy_blocks_it_on_eks(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    (user_policy,) = find(rendered(run, cloud)["jupyterhub"], "NetworkPolicy", "singleuser")
    # EKS: nothing names the address (z2jh's DNS shortcut to it is off too); GKE: its port
    # 80, as workload identity needs it (not every port).
    assert metadata_ports(user_policy) == ({80} if cloud == "gcp" else set())
    values = release(run, cloud, "jupyterhub")["values"]
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False


def test_binderhub_calls_github_as_the_hubs_oauth_app(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = release(run, cloud, "binderhub-service")["values"]
    provider = values["config"]["GitHubRepoProvider"]
    hub_github = release(run, cloud, "jupyterhub")["values"]["hub"]["config"]
    assert provider["client_id"] == hub_github["GitHubOAuthenticator"]["client_id"]
    assert provider["client_secret"] == f"{PLANTED_SECRET}-{cloud}"
    objects = rendered(run, cloud)["binderhub-service"]
    (secret,) = find(objects, "Secret", "binderhub")
    assert f"{PLANTED_SECRET}-{cloud}" in secret["stringData"]["chart-config.yaml"]
    # Only in that Secret, never in a ConfigMap or a pod spec.
    for obj in objects:
        if obj is not secret:
            assert PLANTED_SECRET not in str(obj), (obj["kind"], obj["metadata"]["name"])
