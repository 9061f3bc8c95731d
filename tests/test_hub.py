"""The hub on both clouds and both stacks, as the real program registers it: every release
renders with the real chart and every object is valid; values pass the charts' schemas; login
is GitHub only with nobody in by default; users run as user-sa with per-user bucket prefixes;
Dask workers land on the dask pool and schedulers off spot; no secret is ever plain text."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from chart_render import find, null_paths, render, validate_objects, validate_values
from conftest import HELM, release
from harness import (
    DELETE,
    PLANTED_SECRET,
    RecordingMonitor,
    Run,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.charts import DASK_GATEWAY, JUPYTERHUB
from pangeo_binder.hub.incluster.image_cache import original_image
from pangeo_binder.hub.sharing import PUSH_APP_VARIABLES, SHARER_SCOPES
from pangeo_binder.scheduling import POOL_LABEL


def test_releases_are_pinned_with_explicit_names(case: tuple[Run, str]) -> None:
    run, cloud = case
    hub = release(run, cloud, "jupyterhub")
    gateway = release(run, cloud, "dask-gateway")
    assert (hub["chart"], hub["version"], hub["name"]) == ("jupyterhub", "4.4.0", "jupyterhub")
    assert hub["repositoryOpts"] == {"repo": "https://jupyterhub.github.io/helm-chart"}
    assert (gateway["chart"], gateway["version"], gateway["name"]) == (
        "dask-gateway",
        "2026.3.0",
        "dask-gateway",
    )
    assert gateway["values"]["fullnameOverride"] == "dask-gateway"
    assert hub["values"]["fullnameOverride"] == ""
    assert hub["namespace"] == gateway["namespace"] == "binder"


def test_releases_use_the_cluster_provider_and_wait_for_the_namespace(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    namespace = run.one("kubernetes:core/v1:Namespace", f"{cloud}-hub-namespace")
    user_sa = run.one("kubernetes:core/v1:ServiceAccount", f"{cloud}-hub-user-sa")
    cluster_provider = namespace.provider
    assert f"{cloud}-" in cluster_provider and "kubernetes" in cluster_provider
    for chart in ("jupyterhub", "dask-gateway"):
        reg = run.one(HELM, f"{cloud}-hub-{chart}")
        assert reg.provider == cluster_provider
        assert {namespace.urn, user_sa.urn} <= set(reg.dependencies)


@pytest.mark.usefixtures("chart_files")
def test_each_release_renders_with_the_real_chart_and_every_object_is_valid(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    for pin, chart in ((JUPYTERHUB, "jupyterhub"), (DASK_GATEWAY, "dask-gateway")):
        values = release(run, cloud, chart)["values"]
        # Pulumi's Python SDK strips nulls from Chart values: a null would not reach Helm.
        assert null_paths(values) == []
        validate_values(pin, values)
        objects = render(pin, values, release=chart, namespace="binder")
        validate_objects(objects)
    hub_objects = render(
        JUPYTERHUB,
        release(run, cloud, "jupyterhub")["values"],
        release="jupyterhub",
        namespace="binder",
    )
    names = {(o["kind"], o["metadata"]["name"]) for o in hub_objects}
    assert {
        ("Deployment", "hub"),
        ("Service", "proxy-public"),
        ("Deployment", "autohttps"),
    } <= names
    assert ("DaemonSet", "continuous-image-puller") in names
    assert ("Deployment", "user-scheduler") in names
    assert not find(hub_objects, "Job"), "no hook jobs: prePuller.hook is off"
    assert find(hub_objects, "PersistentVolumeClaim", "hub-db-dir")
    pvc = find(hub_objects, "PersistentVolumeClaim", "hub-db-dir")[0]
    assert "storageClassName" not in pvc["spec"], "the cluster's default storage class"


@pytest.mark.usefixtures("chart_files")
def test_the_hub_reads_our_config_from_its_rendered_secret(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    secret = find(objects, "Secret", "hub")[0]
    seen = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    assert seen["hub"]["config"]["JupyterHub"]["authenticator_class"] == "github"
    # The generated secrets are the ones Pulumi keeps, not ones the chart made up.
    token = values["hub"]["services"]["dask-gateway"]["apiToken"]
    assert base64.b64decode(secret["data"]["hub.services.dask-gateway.apiToken"]).decode() == token
    cookie = base64.b64decode(secret["data"]["hub.config.JupyterHub.cookie_secret"]).decode()
    assert cookie == values["hub"]["cookieSecret"]


def test_login_is_github_only_and_nobody_is_in_by_default(case: tuple[Run, str]) -> None:
    run, cloud = case
    config = release(run, cloud, "jupyterhub")["values"]["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "github"
    github = config["GitHubOAuthenticator"]
    assert github["allowed_organizations"] == ["pangeo-data"]
    assert "allow_all" not in github and "allow_all" not in config.get("Authenticator", {})
    assert config["Authenticator"]["admin_users"] == ["pangeo-admin"]
    assert config["Authenticator"]["enable_auth_state"] is True
    assert config["Authenticator"]["manage_groups"] is True
    assert github["populate_teams_in_auth_state"] is True
    assert "read:org" in github["scope"]
    domain = stack_config("staging" if "staging" in run.registrations[0].urn else "prod")["clouds"][
        cloud
    ]["hub"]["domain"]
    assert github["oauth_callback_url"] == f"https://{domain}/hub/oauth_callback"
    assert len(config["CryptKeeper"]["keys"][0]) == 64


def test_each_cloud_has_its_own_oauth_app(staging: Run) -> None:
    ids = {
        cloud: release(staging, cloud, "jupyterhub")["values"]["hub"]["config"][
            "GitHubOAuthenticator"
        ]["client_id"]
        for cloud in ("gcp", "aws")
    }
    assert ids == {"gcp": "Ov23liStagingGcp01", "aws": "Ov23liStagingAws01"}


def test_users_run_as_user_sa_with_bucket_prefixes(case: tuple[Run, str]) -> None:
    run, cloud = case
    single = release(run, cloud, "jupyterhub")["values"]["singleuser"]
    assert single["serviceAccountName"] == "user-sa"
    assert single["storage"] == {"type": "none"}
    env = single["extraEnv"]
    scratch = run.stack_outputs[cloud]["scratchBucket"]
    assert env["SCRATCH_BUCKET"] == f"{scratch}/$(JUPYTERHUB_USER)"
    assert env["PERSISTENT_BUCKET"].endswith("-persistent/$(JUPYTERHUB_USER)")
    sa = run.one("kubernetes:core/v1:ServiceAccount", f"{cloud}-hub-user-sa").inputs
    assert sa["metadata"]["name"] == "user-sa"
    assert sa["metadata"]["namespace"] == "binder"
    identity = run.stack_outputs[cloud]["usersIdentity"]
    assert identity in sa["metadata"]["annotations"].values()


def test_metadata_server_open_on_gke_only(case: tuple[Run, str]) -> None:
    run, cloud = case
    single = release(run, cloud, "jupyterhub")["values"]["singleuser"]
    gke = cloud == "gcp"
    # No privileged iptables container on either cloud: the policy does the blocking.
    assert single["cloudMetadata"]["blockWithIptables"] is False
    policy = single["networkPolicy"]
    # Not z2jh's every-port shortcut: the metadata server's own ports (context.metadata_egress).
    assert policy["egressAllowRules"]["cloudMetadataServer"] is False
    metadata = {
        (rule["to"][0]["ipBlock"]["cidr"], rule["ports"][0]["port"])
        for rule in policy["egress"]
        if rule["to"][0].get("ipBlock", {}).get("cidr", "").startswith("169.254.")
    }
    assert metadata == ({("169.254.169.254/32", 80), ("169.254.169.252/32", 988)} if gke else set())


def test_https_from_lets_encrypt_on_one_load_balancer(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    https = values["proxy"]["https"]
    assert https["enabled"] is True and https["type"] == "letsencrypt"
    assert https["hosts"] == [run.stack_outputs[cloud]["hubUrl"].removeprefix("https://")]
    assert values["proxy"]["service"]["type"] == "LoadBalancer"
    gateway = release(run, cloud, "dask-gateway")["values"]
    assert gateway["traefik"]["service"]["type"] == "ClusterIP"
    assert "hubLoadBalancer" in run.stack_outputs[cloud]


def test_cost_and_safety_defaults(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    assert values["cull"] == {"enabled": True, "timeout": 3600, "every": 300}
    assert values["scheduling"]["userScheduler"]["enabled"] is True
    assert values["prePuller"]["hook"]["enabled"] is False
    assert values["prePuller"]["continuous"]["enabled"] is True
    # Pulled through the in-region cache (docs/howto/image-cache.md), by their upstream names.
    cache = values["custom"]["imageCache"]
    pulled = {
        original_image(f"{i['name']}:{i['tag']}", cache)
        for i in values["prePuller"]["extraImages"].values()
    }
    assert all(
        i["name"].startswith(tuple(cache.values()))
        for i in values["prePuller"]["extraImages"].values()
    )
    menu = stack_config("staging").get("hub", {}).get("images")
    assert menu is None  # the stack files use the default menu
    # The CPU menu image, not the multi-GB CUDA image, and nothing else from the profiles.
    assert pulled == {"quay.io/pangeo/pangeo-notebook:2026.06.04"}
    assert values["prePuller"]["pullProfileListImages"] is False
    assert values["hub"]["networkPolicy"]["enabled"] is True
    assert values["singleuser"]["networkPolicy"]["enabled"] is True
    assert values["hub"]["db"]["type"] == "sqlite-pvc"


def test_profiles_select_their_pool_and_gpus_request_the_device(case: tuple[Run, str]) -> None:
    run, cloud = case
    profiles = release(run, cloud, "jupyterhub")["values"]["singleuser"]["profileList"]
    by_slug = {p["slug"]: p for p in profiles}
    assert set(by_slug) == {"user", "highmem", "gpu"}
    assert by_slug["user"]["default"] is True
    for slug, profile in by_slug.items():
        assert profile["kubespawner_override"]["node_selector"] == {POOL_LABEL: slug}
    gpu_sizes = by_slug["gpu"]["profile_options"]["resources"]["choices"].values()
    assert all(
        c["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
        for c in gpu_sizes
    )
    # Only GPU profiles tolerate the GPU taint, with the user taint's toleration repeated
    # (an override replaces the list); nothing on every user pod, which the puller inherits.
    assert "extraTolerations" not in release(run, cloud, "jupyterhub")["values"]["singleuser"]
    gpu_toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    user_toleration = {
        "key": "hub.jupyter.org/dedicated",
        "operator": "Equal",
        "value": "user",
        "effect": "NoSchedule",
    }
    assert by_slug["gpu"]["kubespawner_override"]["tolerations"] == [
        user_toleration,
        gpu_toleration,
    ]
    assert "tolerations" not in by_slug["user"]["kubespawner_override"]
    assert by_slug["gpu"]["allowed_groups"] == ["pangeo-data:gpu-users"]
    assert by_slug["highmem"]["allowed_groups"] == ["pangeo-data:gpu-users"]
    assert "allowed_groups" not in by_slug["user"]
    gpu_images = by_slug["gpu"]["profile_options"]["image"]["choices"]
    cache = release(run, cloud, "jupyterhub")["values"]["custom"]["imageCache"]
    first = next(c["kubespawner_override"]["image"] for c in gpu_images.values())
    assert original_image(first, cache).startswith("quay.io/pangeo/ml-notebook:")


def test_the_shared_pool_sizes_leave_room_for_schedulers_and_the_docker_daemon(
    case: tuple[Run, str],
) -> None:
    """The largest size of the pool that also runs schedulers and builds fits beside one
    scheduler and the docker daemon: sizes + their requests <= the node's allocatable."""
    from pangeo_binder.machines import allocatable

    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    gateway = release(run, cloud, "dask-gateway")["values"]["gateway"]["backend"]["scheduler"]
    binder = release(run, cloud, "binderhub-service")["values"]["dockerApi"]["resources"]
    shared = gateway["extraPodConfig"]["nodeSelector"][POOL_LABEL]
    profile = next(p for p in values["singleuser"]["profileList"] if p["slug"] == shared)
    largest = max(
        profile["profile_options"]["resources"]["choices"].values(),
        key=lambda c: c["kubespawner_override"]["cpu_guarantee"],
    )["kubespawner_override"]
    machine = stack_config("staging")["clouds"][cloud]["nodePools"][shared]["machineType"]
    node = allocatable(cloud, machine)
    cpu = largest["cpu_guarantee"] + gateway["cores"]["request"] + float(binder["requests"]["cpu"])
    memory_mib = (
        int(largest["mem_guarantee"].removesuffix("M"))
        + int(gateway["memory"]["request"].removesuffix("M"))
        + int(binder["requests"]["memory"].removesuffix("Mi"))
    )
    assert cpu <= node.cpu + 1e-6
    assert memory_mib <= node.memory_gib * 1024


def test_dask_workers_on_the_dask_pool_schedulers_off_spot(case: tuple[Run, str]) -> None:
    run, cloud = case
    backend = release(run, cloud, "dask-gateway")["values"]["gateway"]["backend"]
    worker = backend["worker"]["extraPodConfig"]
    scheduler = backend["scheduler"]["extraPodConfig"]
    assert worker["nodeSelector"] == {"k8s.dask.org/node-purpose": "worker", POOL_LABEL: "dask"}
    assert {
        "key": "k8s.dask.org/dedicated",
        "operator": "Equal",
        "value": "worker",
        "effect": "NoSchedule",
    } in worker["tolerations"]
    assert scheduler["nodeSelector"]["k8s.dask.org/node-purpose"] == "scheduler"
    assert scheduler["nodeSelector"][POOL_LABEL] == "user"
    pools = stack_config("staging")["clouds"][cloud]["nodePools"]
    assert not pools[scheduler["nodeSelector"][POOL_LABEL]].get("spot", False)
    assert worker["serviceAccountName"] == scheduler["serviceAccountName"] == "user-sa"


def test_dask_gateway_is_a_hub_service_behind_its_auth(case: tuple[Run, str]) -> None:
    run, cloud = case
    hub = release(run, cloud, "jupyterhub")["values"]
    gateway = release(run, cloud, "dask-gateway")["values"]["gateway"]
    assert gateway["auth"]["type"] == "jupyterhub"
    assert gateway["auth"]["jupyterhub"]["jupyterhubServiceName"] == "dask-gateway"
    assert gateway["prefix"] == "/services/dask-gateway"
    # Beside the support stack's two (tests/test_support_wiring.py).
    assert set(hub["hub"]["services"]) == {"dask-gateway", "binder", "grafana", "prometheus"}
    assert "access:services!service=dask-gateway" in hub["hub"]["loadRoles"]["user"]["scopes"]
    env = hub["singleuser"]["extraEnv"]
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    # KubeSpawner formats env values with the user's properties; the pod must get the
    # placeholder the dask-gateway client fills from the notebook's environment.
    spawner_names = {"username": "alice", "servername": "", "user_server": "alice"}
    expanded = {k: v.format(**spawner_names) for k, v in env.items()}
    assert expanded["DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE"] == "{JUPYTER_IMAGE_SPEC}"
    assert (
        expanded["DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE"].format(
            JUPYTER_IMAGE_SPEC="quay.io/pangeo/pangeo-notebook:2026.06.04"
        )
        == "quay.io/pangeo/pangeo-notebook:2026.06.04"
    )
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-dask-gateway.binder:80"
    settings = gateway["extraConfig"]["00-settings"]
    assert "idleTimeoutSeconds" in settings and "1800" in settings


def test_a_hub_without_a_dask_pool_has_no_gateway_anywhere() -> None:
    """No dask pool: no gateway release, service, token, scope, environment or egress rule
    pointing at a gateway that does not exist."""
    config = stack_config("staging")
    for cloud in ("gcp", "aws"):
        config = with_value(config, f"clouds.{cloud}.nodePools.dask", DELETE)
    run = run_program("staging", config)
    for cloud in ("gcp", "aws"):
        assert run.of_type(HELM) and not [
            r for r in run.of_type(HELM) if r.name == f"{cloud}-hub-dask-gateway"
        ]
        values = release(run, cloud, "jupyterhub")["values"]
        assert "dask" not in json.dumps(values["hub"]["services"]).lower()
        assert set(values["hub"]["services"]) == {"binder", "grafana", "prometheus"}
        assert values["hub"]["loadRoles"]["user"]["scopes"] == [
            "self",
            *SHARER_SCOPES,
            "access:services!service=binder",
        ]
        token_scopes = values["hub"]["config"]["KubeSpawner"]["server_token_scopes"]
        assert not [scope for scope in token_scopes if "dask" in scope]
        assert set(values["singleuser"]["extraEnv"]) == {
            "SCRATCH_BUCKET",
            "PERSISTENT_BUCKET",
            "PUBLIC_PERSISTENT_BUCKET",  # staging has a public bucket on both clouds
            *PUSH_APP_VARIABLES,
        }
        assert "traefik" not in json.dumps(values["singleuser"]["networkPolicy"])
        tokens = [r.name for r in run.of_type("random:index/randomId:RandomId")]
        assert f"{cloud}-hub-dask-gateway-token" not in tokens
        assert f"{cloud}-hub-binder-token" in tokens


@pytest.mark.usefixtures("chart_files")
def test_the_gateway_config_file_the_chart_writes_is_valid_python(staging: Run) -> None:
    values = release(staging, "gcp", "dask-gateway")["values"]
    objects = render(DASK_GATEWAY, values, release="dask-gateway", namespace="binder")
    config_map = find(objects, "ConfigMap", "api-dask-gateway")[0]
    source = config_map["data"]["dask_gateway_config.py"]
    compile(source, "dask_gateway_config.py", "exec")
    assert "PANGEO_BINDER_DASK = json.loads(" in source


def _plain_text(run: Run) -> list[tuple[str, str]]:
    """(resource, input) pairs whose plain (non-secret) text contains the planted secret."""
    found = []
    for reg in run.registrations:
        for key, value in reg.inputs.items():
            if key in reg.secret_inputs:
                continue
            if PLANTED_SECRET in json.dumps(value, default=str):
                found.append((reg.name, key))
    return found


def test_secrets_reach_resources_only_as_secrets(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        assert _plain_text(run) == []
        for cloud in ("gcp", "aws"):
            reg = run.one(HELM, f"{cloud}-hub-jupyterhub")
            assert "values" in reg.secret_inputs
            github = reg.inputs["values"]["hub"]["config"]["GitHubOAuthenticator"]
            assert github["client_secret"] == f"{PLANTED_SECRET}-{cloud}"


def test_generated_secrets_are_random_resources_kept_secret(staging: Run) -> None:
    ids = staging.of_type("random:index/randomId:RandomId")
    names = {r.name for r in ids}
    for cloud in ("gcp", "aws"):
        assert {
            f"{cloud}-hub-proxy-token",
            f"{cloud}-hub-cookie-secret",
            f"{cloud}-hub-crypt-key",
            f"{cloud}-hub-dask-gateway-token",
        } <= names
    values = release(staging, "gcp", "jupyterhub")["values"]
    tokens = {
        values["proxy"]["secretToken"],
        values["hub"]["cookieSecret"],
        values["hub"]["config"]["CryptKeeper"]["keys"][0],
        values["hub"]["services"]["dask-gateway"]["apiToken"],
    }
    assert len(tokens) == 4


def test_an_unmarked_secret_is_refused_before_anything_is_registered() -> None:
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match="was not set with --secret"):
        run_program("staging", monitor=monitor, secret_keys=())
    assert monitor.registrations == []


def test_a_missing_client_secret_names_the_command() -> None:
    config = with_value(stack_config("staging"), "secrets", {"gcp": {"githubClientSecret": "x"}})
    monitor = RecordingMonitor()
    with pytest.raises(
        Exception,
        match=r"secrets\.aws\.githubClientSecret: missing.*pulumi config set --secret --path "
        r"'secrets\.aws\.githubClientSecret' VALUE",
    ):
        run_program("staging", config, monitor=monitor)
    assert monitor.registrations == []


def test_the_load_balancer_address_is_read_from_proxy_public() -> None:
    """The `hubLoadBalancer` output: the proxy-public Service's address, not another one's."""
    import pulumi
    import pulumi_kubernetes as k8s

    from harness import run_function
    from pangeo_binder.hub.hub import load_balancer_address

    def program() -> None:
        services = [
            k8s.core.v1.Service(
                name,
                metadata={"name": name},
                spec={"type": kind, "ports": [{"port": 80}]},
            )
            for name, kind in (("other", "ClusterIP"), ("proxy-public", "LoadBalancer"))
        ]
        pulumi.export("address", load_balancer_address([object(), *services]))
        pulumi.export("none", load_balancer_address(services[:1]))

    run = run_function(program)
    assert run.stack_outputs == {"address": "203.0.113.20", "none": ""}


def test_resource_choices_keep_their_size_order_through_helm(case: tuple[Run, str]) -> None:
    """Helm writes values with map keys sorted, so the hub lists each profile's resource
    choices in slug order: that order must be smallest first."""
    run, cloud = case
    for profile in release(run, cloud, "jupyterhub")["values"]["singleuser"]["profileList"]:
        choices = profile["profile_options"]["resources"]["choices"]
        as_helm_writes = [choices[slug] for slug in sorted(choices)]
        memory = [
            int(c["kubespawner_override"]["mem_limit"].removesuffix("M")) for c in as_helm_writes
        ]
        assert memory == sorted(memory) and len(set(memory)) == len(memory), profile["slug"]
        assert as_helm_writes[0]["default"] is True, profile["slug"]


@pytest.mark.usefixtures("chart_files")
def test_the_proxy_takes_the_reserved_address(case: tuple[Run, str]) -> None:
    """The proxy's load balancer sits on the address the cloud layer reserved (and exports as
    hubAddress) before the hub started: GKE's static IP, EKS's Elastic IPs for an NLB."""
    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    (service,) = find(objects, "Service", "proxy-public")
    address = run.stack_outputs[cloud]["hubAddress"]
    assert service["spec"]["type"] == "LoadBalancer"
    if cloud == "gcp":
        assert service["spec"]["loadBalancerIP"] == address
        return
    annotations = service["metadata"]["annotations"]
    eips = run.of_type("aws:ec2/eip:Eip")
    by_id = {r.outputs["allocationId"]: r.outputs["publicIp"] for r in eips}
    allocations = annotations["service.beta.kubernetes.io/aws-load-balancer-eip-allocations"]
    subnets = annotations["service.beta.kubernetes.io/aws-load-balancer-subnets"].split(",")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert len(allocations.split(",")) == len(subnets) >= 2
    assert ",".join(by_id[a] for a in allocations.split(",")) == address
