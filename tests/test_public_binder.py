"""The public Binder (clouds.<cloud>.publicBinder): what the program registers, both releases
rendered with the real charts, the public hub's config run through z2jh's own
jupyterhub_config.py with the pinned JupyterHub and KubeSpawner, the spawner as Python, and
the allow list under BinderHub's matching rule.

BinderHub is not installed (PyPI's `binderhub` is a 2018 release without `allowed_specs`, and
the chart's image runs a development build), so the allow list is checked with
`config_public.spec_banned`, the rule BinderHub documents for RepoProvider.allowed_specs and
implements in is_banned (jupyterhub/binderhub main at b9fad99).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from chart_render import find, render, validate_objects, validate_values
from harness import DELETE, Run, run_program, stack_config, with_value
from local_hub import hub_config, run_on_own_loop
from pangeo_binder.charts import BINDERHUB_SERVICE, JUPYTERHUB
from pangeo_binder.config_public import spec_banned
from pangeo_binder.hub.context import DNS_EGRESS
from pangeo_binder.hub.incluster import public_spawner as ps
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.public_values import (
    NOT_PUBLIC,
    PUBLIC_BINDER_RELEASE,
    PUBLIC_JUPYTERHUB_RELEASE,
    PUBLIC_PORTS,
)
from pangeo_binder.scheduling import PURPOSE_LABELS, PURPOSE_TAINTS
from test_network_policies import assert_exactly_outside, ip_reach, matches

HELM = "kubernetes:helm.sh/v4:Chart"
CLOUDS = ["gcp", "aws"]
NAMESPACE = "binder-public"
METADATA = {"169.254.169.254", "169.254.169.252"}


def public_release(run: Run, cloud: str, chart: str) -> dict[str, Any]:
    return run.one(HELM, f"{cloud}-public-binder-{chart}").inputs


def hub_values(run: Run, cloud: str) -> dict[str, Any]:
    return public_release(run, cloud, "jupyterhub")["values"]


def binder_values(run: Run, cloud: str) -> dict[str, Any]:
    return public_release(run, cloud, "binderhub-service")["values"]


# --- what the program registers ---------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_releases_in_their_own_namespace_at_the_pinned_versions(staging: Run, cloud: str) -> None:
    hub = public_release(staging, cloud, "jupyterhub")
    binder = public_release(staging, cloud, "binderhub-service")
    assert (hub["chart"], hub["version"]) == (JUPYTERHUB.name, JUPYTERHUB.version)
    assert (binder["chart"], binder["version"]) == (
        BINDERHUB_SERVICE.name,
        BINDERHUB_SERVICE.version,
    )
    assert hub["name"] == PUBLIC_JUPYTERHUB_RELEASE and binder["name"] == PUBLIC_BINDER_RELEASE
    assert hub["namespace"] == binder["namespace"] == NAMESPACE
    namespace = staging.one("kubernetes:core/v1:Namespace", f"{cloud}-public-binder-namespace")
    assert namespace.inputs["metadata"]["name"] == NAMESPACE
    # The authenticated hub's releases stay in their namespace, untouched by the public ones.
    assert staging.one(HELM, f"{cloud}-hub-jupyterhub").inputs["namespace"] == "binder"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_no_public_binder_in_prod(prod: Run, cloud: str) -> None:
    assert not [r for r in prod.registrations if "public-binder" in r.name]
    assert "publicBinderUrl" not in prod.stack_outputs[cloud]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_its_own_domain_address_and_certificate(staging: Run, cloud: str) -> None:
    values = hub_values(staging, cloud)
    domain = f"binder.{cloud}.staging.pangeo-binder.example.org"
    assert values["proxy"]["https"]["hosts"] == [domain]
    assert values["proxy"]["https"]["type"] == "letsencrypt"
    outputs = staging.stack_outputs[cloud]
    assert outputs["publicBinderUrl"] == f"https://{domain}"
    assert outputs["publicBinderAddress"] != outputs["hubAddress"]
    if cloud == "gcp":
        address = staging.one("gcp:compute/address:Address", "gcp-public-address")
        assert address.inputs["name"] == "pangeo-binder-staging-public"
        assert values["proxy"]["service"]["loadBalancerIP"] == outputs["publicBinderAddress"]
    else:
        eips = [r for r in staging.of_type("aws:ec2/eip:Eip") if "public-address" in r.name]
        assert len(eips) == 3
        annotations = values["proxy"]["service"]["annotations"]
        assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"


def test_public_builds_push_keylessly_as_their_own_account(staging: Run) -> None:
    """GKE: the public BinderHub's account may act as the builder Google account; EKS: its own
    IRSA role, trusted by that one service account only."""
    member = staging.one("gcp:serviceaccount/iAMMember:IAMMember", "gcp-public-builder-wi")
    assert member.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert member.inputs["member"].endswith(f"[{NAMESPACE}/binderhub]")
    role = staging.one("aws:iam/role:Role", "aws-public-builder")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = [
        value
        for statement in trust["Statement"]
        for key, value in statement["Condition"]["StringEquals"].items()
        if key.endswith(":sub")
    ]
    assert subjects == [f"system:serviceaccount:{NAMESPACE}:binderhub"]
    for cloud in CLOUDS:
        values = binder_values(staging, cloud)
        annotations = values["serviceAccount"]["annotations"]
        assert list(annotations.values()) == [staging.stack_outputs[cloud]["publicBuilderIdentity"]]
        prefix = values["config"]["BinderHub"]["image_prefix"]
        assert prefix == staging.stack_outputs[cloud]["imagePrefix"] + "public-"


# --- values and the rendered charts -----------------------------------------------------


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_both_releases_render_and_validate(staging: Run, cloud: str) -> None:
    hub, binder = hub_values(staging, cloud), binder_values(staging, cloud)
    validate_values(JUPYTERHUB, hub)
    validate_values(BINDERHUB_SERVICE, binder)
    hub_objects = render(JUPYTERHUB, hub, release=PUBLIC_JUPYTERHUB_RELEASE, namespace=NAMESPACE)
    binder_objects = render(
        BINDERHUB_SERVICE, binder, release=PUBLIC_BINDER_RELEASE, namespace=NAMESPACE
    )
    validate_objects(hub_objects)
    validate_objects(binder_objects)
    names = {(o["kind"], o["metadata"]["name"]) for o in hub_objects + binder_objects}
    assert {
        ("Deployment", "hub"),
        ("Deployment", "binderhub"),
        ("DaemonSet", "docker-api"),
    } <= names
    # The proxy's one default target is BinderHub (the chart's flag, not a second one).
    proxy = find(hub_objects, "Deployment", "proxy")[0]["spec"]["template"]["spec"]
    command = proxy["containers"][0]["command"]
    assert [a for a in command if a.startswith("--default-target")] == [
        "--default-target=http://binderhub:80"
    ]
    # Nothing that pulls images onto nodes or schedules in the hub's way.
    assert not find(hub_objects, "DaemonSet")
    assert not find(hub_objects, "ClusterRole")


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_no_cluster_wide_object_is_shared_with_the_hub(staging: Run, cloud: str) -> None:
    """Two releases of each chart on one cluster: any cluster-scoped object both render would
    be fought over by the two releases."""
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}

    def names(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in cluster_scoped}

    hub = staging.one(HELM, f"{cloud}-hub-jupyterhub").inputs["values"]
    ours = render(
        JUPYTERHUB,
        hub_values(staging, cloud),
        release=PUBLIC_JUPYTERHUB_RELEASE,
        namespace=NAMESPACE,
    )
    theirs = render(JUPYTERHUB, hub, release="jupyterhub", namespace="binder")
    assert not names(ours) & names(theirs)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_binderhub_ui_on_at_the_root_without_auth(staging: Run, cloud: str) -> None:
    config = binder_values(staging, cloud)["config"]
    binder = config["BinderHub"]
    assert binder["enable_api_only_mode"] is False
    assert binder["auth_enabled"] is False
    assert binder["base_url"] == "/"
    assert binder["hub_url"] == f"https://binder.{cloud}.staging.pangeo-binder.example.org/"
    assert binder["per_repo_quota"] == 20
    assert config["LaunchQuota"] == {"total_quota": 50}
    assert "HubOAuth" not in config
    hub = hub_values(staging, cloud)
    assert hub["hub"]["config"]["JupyterHub"]["authenticator_class"] == "null"
    # The proxy sends what is not the hub's or a server's to BinderHub.
    assert hub["hub"]["config"]["JupyterHub"]["hub_routespec"] == "/hub/"
    assert hub["proxy"]["chp"]["defaultTarget"] == "http://binderhub:80"


def test_the_allow_list_refuses_a_repository_outside_it(staging: Run) -> None:
    """The specs BinderHub's GitHubRepoProvider gets (`owner/repo/ref`), under its rule."""
    provider = binder_values(staging, "gcp")["config"]["GitHubRepoProvider"]
    allowed, banned = provider["allowed_specs"], provider["banned_specs"]
    assert allowed == ["^pangeo-gallery/.*", "^pangeo-data/pangeo-tutorial/.*"]
    assert not spec_banned("pangeo-gallery/cmip6/binder", allowed, banned)
    assert not spec_banned("Pangeo-Gallery/landsat8/HEAD", allowed, banned)  # case ignored
    assert spec_banned("xmrig/xmrig/master", allowed, banned)
    assert spec_banned("pangeo-data/pangeo-docker-images/master", allowed, banned)
    # Anchored at the start: a gallery's name inside another owner's repo is not enough.
    assert spec_banned("evil/pangeo-gallery/main", allowed, banned)
    assert spec_banned("pangeo-gallery/cmip6/binder", allowed, ["^pangeo-gallery/cmip6/.*"])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_public_servers_are_contained(staging: Run, cloud: str) -> None:
    single = hub_values(staging, cloud)["singleuser"]
    assert single.get("serviceAccountName") is None  # the chart's default: no account
    assert single["cpu"]["limit"] == 1.0 and single["memory"]["limit"] == "2G"
    assert single["allowPrivilegeEscalation"] is False
    assert single["cloudMetadata"]["blockWithIptables"] is True
    assert single["storage"] == {"type": "none"}
    assert single["extraEnv"] == {}  # no bucket, no Dask, nothing of the hub's
    assert single["nodeSelector"] == PURPOSE_LABELS["public"]
    policy = single["networkPolicy"]
    assert not any(policy["egressAllowRules"][key] for key in ("nonPrivateIPs", "privateIPs"))
    assert not policy["egressAllowRules"]["cloudMetadataServer"]
    cull = hub_values(staging, cloud)["cull"]
    assert (cull["timeout"], cull["maxAge"], cull["users"]) == (600, 6 * 3600, True)


def _allowed_destinations(rule: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    return [
        ipaddress.ip_network(peer["ipBlock"]["cidr"])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_rendered_server_policy_reaches_only_public_web_and_git(staging: Run, cloud: str) -> None:
    objects = render(
        JUPYTERHUB,
        hub_values(staging, cloud),
        release=PUBLIC_JUPYTERHUB_RELEASE,
        namespace=NAMESPACE,
    )
    policy = find(objects, "NetworkPolicy", "singleuser")[0]["spec"]
    for rule in policy["egress"]:
        ports = {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports", [])}
        if ports <= {(53, "UDP"), (53, "TCP")} and ports:
            # DNS: to kube-system only, never to the metadata server.
            assert all("ipBlock" not in peer for peer in rule["to"]), rule
            continue
        if any("podSelector" in peer and "namespaceSelector" not in peer for peer in rule["to"]):
            continue  # the chart's rule to its own hub pod, which refuses unlabelled pods
        assert ports == {(port, "TCP") for port in PUBLIC_PORTS}, rule
        assert_exactly_outside(rule, NOT_PUBLIC)
    fenced = [ipaddress.ip_network(cidr) for cidr in NOT_PUBLIC]
    for address in [*METADATA, "10.1.2.3", "172.20.0.1", "192.168.1.1", "100.64.0.10"]:
        assert any(ipaddress.ip_address(address) in net for net in fenced), address


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_public_pod_is_fenced_and_binderhub_has_its_own_way_out(
    staging: Run, cloud: str
) -> None:
    policies = {
        r.name: r.inputs
        for r in staging.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.name.startswith(f"{cloud}-public-binder-")
    }
    deny = policies[f"{cloud}-public-binder-default-deny-egress"]
    assert deny["metadata"]["namespace"] == NAMESPACE
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}
    binder = policies[f"{cloud}-public-binder-binderhub-egress"]["spec"]
    private = [ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    for rule in binder["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        for net in _allowed_destinations(rule):
            if any(net.subnet_of(p) for p in private):
                assert ports == {443}, rule  # the Kubernetes API only
    metadata = [
        r
        for r in binder["egress"]
        if any(
            n.subnet_of(ipaddress.ip_network("169.254.0.0/16")) for n in _allowed_destinations(r)
        )
    ]
    assert bool(metadata) == (cloud == "gcp")  # GKE's workload identity server only


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_public_builds_cannot_reach_the_metadata_server(staging: Run, cloud: str) -> None:
    """Build pods and the docker daemon their Dockerfile steps run in execute anonymous code:
    every policy that selects them, the chart's (none now) and ours, leaves the metadata
    addresses and private ranges out; only BinderHub's pod, which mints the push tokens, has
    the metadata server (GKE)."""
    objects = render(
        BINDERHUB_SERVICE, binder_values(staging, cloud), release=PUBLIC_BINDER_RELEASE,
        namespace=NAMESPACE,
    )  # fmt: skip
    (docker_api,) = find(objects, "DaemonSet", "docker-api")
    pods = {
        "docker-api": docker_api["spec"]["template"]["metadata"]["labels"],
        # BinderHub's build pods (binderhub build.py: `name` and `component`).
        "build": {"name": "build-alice-2dbinder-abc123", "component": "binderhub-build"},
    }
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert not policies, [p["metadata"]["name"] for p in policies]  # the chart's: off
    policies += [
        r.inputs
        for r in staging.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == NAMESPACE
    ]
    for pod, labels in pods.items():
        selecting = [p for p in policies if matches(p["spec"]["podSelector"], labels)]
        names = {p["metadata"]["name"] for p in selecting}
        assert {"default-deny-egress", f"{'build-pods' if pod == 'build' else pod}-egress"} <= names
        for policy in selecting:
            for rule in policy["spec"].get("egress", []):
                for address in [*METADATA, "10.1.2.3", "172.20.0.1", "192.168.1.1"]:
                    assert not any(
                        ipaddress.ip_address(address) in net for net in ip_reach(rule)
                    ), (pod, policy["metadata"]["name"], address)
                if "ipBlock" not in str(rule):
                    assert rule["to"] == DNS_EGRESS["to"], (pod, rule)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_public_pool_is_tainted_for_public_servers_only(staging: Run, cloud: str) -> None:
    key, value = PURPOSE_TAINTS["public"]
    if cloud == "gcp":
        pool = staging.one("gcp:container/nodePool:NodePool", "gcp-gke-pool-public")
        taints = pool.inputs["nodeConfig"]["taints"]
        assert {"key": key, "value": value, "effect": "NO_SCHEDULE"} in taints
        assert pool.inputs["autoscaling"]["totalMaxNodeCount"] == 5
    else:
        group = staging.one("aws:eks/nodeGroup:NodeGroup", "aws-eks-pool-public-group")
        assert {"key": key, "value": value, "effect": "NO_SCHEDULE"} in group.inputs["taints"]
        assert group.inputs["scalingConfig"]["maxSize"] == 5
    single = hub_values(staging, cloud)["singleuser"]
    assert single["extraTolerations"] == [
        {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}
    ]


# --- the spawner, as Python -------------------------------------------------------------

PREFIX = "us-central1-docker.pkg.dev/p/pangeo-binder-staging-images/public-"


def test_a_launch_needs_a_token_and_an_image_of_this_binder() -> None:
    good = {"token": "t0k", "image": f"{PREFIX}pangeo-gallery-cmip6:abc"}
    assert ps.launch_image(good, PREFIX) == good["image"]
    with pytest.raises(ps.LaunchRefused, match="token required"):
        ps.launch_image({"image": good["image"]}, PREFIX)
    with pytest.raises(ps.LaunchRefused, match="image required"):
        ps.launch_image({"token": "t"}, PREFIX)
    with pytest.raises(ps.LaunchRefused, match="not built by this Binder"):
        ps.launch_image({"token": "t", "image": "docker.io/miner/xmrig:latest"}, PREFIX)
    # The hub's own images (same registry, without the public mark) are refused too.
    with pytest.raises(ps.LaunchRefused, match="not built by this Binder"):
        ps.launch_image({"token": "t", "image": PREFIX.removesuffix("public-") + "x:1"}, PREFIX)
    with pytest.raises(ps.LaunchRefused, match="no image prefix"):
        ps.launch_image(good, "")


def test_server_args_carry_the_token_for_both_server_apps() -> None:
    args = ps.server_args(port=8888, base_url="/user/a/", token="t0k", default_url="/lab")
    assert "--NotebookApp.token=t0k" in args and "--ServerApp.token=t0k" in args
    assert "--ServerApp.base_url=/user/a/" in args and "--port=8888" in args
    assert not [a for a in args if "allow_origin" in a]
    assert ps.binder_env({"repo_url": "https://github.com/x/y", "token": "t"}) == {
        "BINDER_REPO_URL": "https://github.com/x/y"
    }


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_hub_config_gives_an_anonymous_user_a_contained_pod(
    staging: Run, cloud: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """z2jh's own jupyterhub_config.py, on the rendered files of the public release, with the
    pinned JupyterHub and KubeSpawner: the spawner class is ours, and the pod an anonymous
    user gets has the limits, no identity, the pool and the policy's labels above."""
    from importlib.metadata import entry_points

    from jupyterhub.auth import Authenticator
    from jupyterhub.objects import Server
    from kubernetes_asyncio.client import ApiClient

    values = hub_values(staging, cloud)
    objects = render(JUPYTERHUB, values, release=PUBLIC_JUPYTERHUB_RELEASE, namespace=NAMESPACE)
    config = hub_config(objects, tmp_path, NAMESPACE, monkeypatch)
    spawner_class = config.JupyterHub.spawner_class
    assert spawner_class.__name__ == "PublicBinderSpawner"
    assert config.JupyterHub.authenticator_class == "null"
    # JupyterHub resolves "null" through its authenticators' entry points.
    null = entry_points(group="jupyterhub.authenticators")["null"].load()
    assert issubclass(null, Authenticator)
    prefix = binder_values(staging, cloud)["config"]["BinderHub"]["image_prefix"]
    image = f"{prefix}pangeo-gallery-cmip6:0123abc"

    async def manifest() -> dict[str, Any]:
        async with ApiClient() as api:
            spawner = spawner_class(config=config, _mock=True)
            spawner.server = Server(base_url="/user/anonymous-1/")
            spawner.user_options = {
                "token": "t0k",
                "image": image,
                "repo_url": "https://github.com/pangeo-gallery/cmip6",
            }
            spawner.image = ps.launch_image(spawner.user_options, spawner.image_prefix)
            return api.sanitize_for_serialization(await spawner.get_pod_manifest())

    built = run_on_own_loop(manifest())
    spec = built["spec"]
    container = spec["containers"][0]
    assert container["image"] == image
    # KubeSpawner reads "2G" as 2 GiB (its ByteSpecification counts G in 1024**3).
    assert container["resources"]["limits"] == {"cpu": 1.0, "memory": 2 * 1024**3}
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec or spec["serviceAccountName"] in (None, "default")
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "--ServerApp.token=t0k" in container["args"]
    assert "--ServerApp.base_url=/user/anonymous-1/" in container["args"]
    assert container["args"][0] == "jupyter-notebook"
    assert spec["nodeSelector"] == PURPOSE_LABELS["public"]
    key, value = PURPOSE_TAINTS["public"]
    assert {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    # The metadata block: z2jh's init container drops traffic to 169.254.169.254.
    init = {c["name"]: c for c in spec.get("initContainers", [])}
    assert "169.254.169.254" in " ".join(init["block-cloud-metadata"]["command"])
    # The labels the network policies select on: a server, not allowed to call the hub.
    labels = built["metadata"]["labels"]
    assert labels["component"] == "singleuser-server"
    assert labels["hub.jupyter.org/network-access-hub"] == "false"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BINDER_REPO_URL"] == "https://github.com/pangeo-gallery/cmip6"
    assert not [name for name in env if "BUCKET" in name or "DASK" in name]


def test_the_spawner_source_wires_itself_when_executed() -> None:
    """As z2jh's extraConfig runs it: the class becomes the hub's spawner."""
    from traitlets.config import Config

    c = Config()
    exec(compile(source("public_spawner"), "public_spawner.py", "exec"), {"c": c})
    assert c.JupyterHub.spawner_class.__name__ == "PublicBinderSpawner"


def test_the_authenticated_hub_is_untouched() -> None:
    """The hub's releases get the same values with or without the public Binder beside them.
    Two fresh runs: the session's `staging` run is shared with tests that may alter it."""
    staging = run_program("staging")
    config = stack_config("staging")
    for cloud in CLOUDS:
        config = with_value(config, f"clouds.{cloud}.publicBinder", DELETE)
        config = with_value(config, f"clouds.{cloud}.nodePools.public", DELETE)
    without = run_program("staging", config)
    for cloud in CLOUDS:
        for chart in ("jupyterhub", "binderhub-service", "dask-gateway"):
            name = f"{cloud}-hub-{chart}"
            assert staging.one(HELM, name).inputs == without.one(HELM, name).inputs, name
