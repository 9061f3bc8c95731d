"""The support stack (Prometheus, Grafana, OpenCost) as the real program registers it on both
clouds and stacks: every release renders with the real chart and every object is valid; the
pieces the hub's releases need render merged into the hub's real values; bad monitoring config
is refused with its key path; cloud-side cost attribution is on."""

from __future__ import annotations

import base64
import copy
import types
from typing import Any

import pytest
import yaml

from chart_render import coalesce, find, null_paths, render, validate_objects, validate_values
from conftest import HELM, release
from harness import Run, run_program, stack_config, with_value
from pangeo_binder.charts import DASK_GATEWAY, GRAFANA, JUPYTERHUB, OPENCOST, PROMETHEUS
from pangeo_binder.config import ConfigError, load_config
from pangeo_binder.support import values as sv
from pangeo_binder.support.incluster import dask_user
from pangeo_binder.support.pricing import PoolMachine, custom_pricing, node_errors

SUPPORT = {"prometheus": PROMETHEUS, "grafana": GRAFANA, "opencost": OPENCOST}


def support_release(run: Run, cloud: str, chart: str) -> dict[str, Any]:
    return run.one(HELM, f"{cloud}-support-{chart}").inputs


def rendered(run: Run, cloud: str, chart: str) -> list[dict]:
    values = support_release(run, cloud, chart)["values"]
    return render(SUPPORT[chart], values, release=chart, namespace="support")


def test_support_releases_are_pinned_in_the_support_namespace(case: tuple[Run, str]) -> None:
    run, cloud = case
    for chart, pin in SUPPORT.items():
        inputs = support_release(run, cloud, chart)
        assert (inputs["chart"], inputs["version"], inputs["name"]) == (
            pin.name,
            pin.version,
            chart,
        )
        assert inputs["repositoryOpts"] == {"repo": pin.repository}
        assert inputs["namespace"] == "support"


@pytest.mark.usefixtures("chart_files")
def test_each_support_release_renders_with_the_real_chart_and_is_valid(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    for chart, pin in SUPPORT.items():
        values = support_release(run, cloud, chart)["values"]
        assert null_paths(values) == []
        validate_values(pin, values)
        objects = rendered(run, cloud, chart)
        validate_objects(objects)
        assert find(objects, "Deployment") or find(objects, "StatefulSet")


@pytest.mark.usefixtures("chart_files")
def test_prometheus_keeps_metrics_on_a_retained_volume_on_the_core_pool(
    case: tuple[Run, str], staging: Run
) -> None:
    run, cloud = case
    monitoring = stack_config("staging" if run is staging else "prod")["monitoring"]
    days, size = monitoring["retentionDays"], monitoring["volumeSizeGb"]
    objects = rendered(run, cloud, "prometheus")
    server = find(objects, "Deployment", "prometheus-server")[0]
    pod = server["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}
    args = next(c for c in pod["containers"] if c["name"] == "prometheus-server")["args"]
    assert f"--storage.tsdb.retention.time={days}d" in args
    assert f"--storage.tsdb.retention.size={size * 8 // 10}GB" in args
    claim = find(objects, "PersistentVolumeClaim", "prometheus-server")[0]
    assert claim["spec"]["storageClassName"] == "support-retain"
    assert claim["spec"]["resources"]["requests"]["storage"] == f"{size}Gi"
    storage = run.one("kubernetes:storage.k8s.io/v1:StorageClass", f"{cloud}-support-retain")
    assert storage.inputs["reclaimPolicy"] == "Retain"
    assert storage.inputs["parameters"]["type"] == ("pd-balanced" if cloud == "gcp" else "gp3")
    # No Alertmanager without a channel, no pushgateway: the server is the only stateful part.
    names = {o["metadata"]["name"] for o in objects}
    assert not any("alertmanager" in n or "pushgateway" in n for n in names)
    # The hub's token reaches the server as a mounted file, never in the values.
    mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    assert sv.HUB_TOKEN_MOUNT in mounts


@pytest.mark.usefixtures("chart_files")
def test_kube_state_metrics_exports_user_labels_and_node_exporter_runs_everywhere(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    objects = rendered(run, cloud, "prometheus")
    ksm = find(objects, "Deployment", "prometheus-kube-state-metrics")[0]
    args = " ".join(ksm["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--metric-labels-allowlist=pods=[app,component,hub.jupyter.org/username],nodes=[*]" in (
        args
    )
    assert "--metric-annotations-allowlist=pods=[hub.jupyter.org/username]" in args
    exporter = find(objects, "DaemonSet", "prometheus-prometheus-node-exporter")[0]
    assert exporter["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.usefixtures("chart_files")
def test_the_scrape_config_reads_the_hub_with_its_token_and_the_dask_schedulers(
    staging: Run,
) -> None:
    objects = rendered(staging, "gcp", "prometheus")
    config_map = find(objects, "ConfigMap", "prometheus-server")[0]
    prometheus = yaml.safe_load(config_map["data"]["prometheus.yml"])
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    hub = jobs["jupyterhub"]
    assert hub["metrics_path"] == "/hub/metrics"
    assert hub["authorization"] == {"credentials_file": f"{sv.HUB_TOKEN_MOUNT}/token"}
    assert hub["static_configs"][0]["targets"] == ["hub.binder.svc:8081"]
    assert {"dask-schedulers", "autohttps"} <= set(jobs)
    rules = yaml.safe_load(config_map["data"]["alerting_rules.yml"])
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "JupyterHubDown",
        "SpawnFailuresRising",
        "NodePoolAtMaxNodes",
        "HubDatabaseVolumeNearlyFull",
        "HttpsCertificateExpiresSoon",
    }


@pytest.mark.usefixtures("chart_files")
def test_grafana_is_served_under_the_hubs_services_path_with_hub_login_only(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    values = support_release(run, cloud, "grafana")["values"]
    ini = values["grafana.ini"]
    assert ini["server"]["root_url"].endswith("/services/grafana/")
    assert ini["server"]["serve_from_sub_path"] is True
    assert ini["auth.anonymous"]["enabled"] is False
    assert ini["auth"]["disable_login_form"] is True
    oauth = ini["auth.generic_oauth"]
    assert oauth["auth_url"].startswith("https://") and oauth["auth_url"].endswith(
        "/hub/api/oauth2/authorize"
    )
    assert oauth["token_url"] == "http://hub.binder.svc:8081/hub/api/oauth2/token"
    assert oauth["api_url"] == "http://hub.binder.svc:8081/hub/api/user"
    assert "client_secret" not in oauth and "adminPassword" not in values
    objects = rendered(run, cloud, "grafana")
    service = find(objects, "Service", "grafana")[0]
    assert service["spec"]["type"] == "ClusterIP", "no second load balancer"
    pod = find(objects, "Deployment", "grafana")[0]["spec"]["template"]["spec"]
    env = {e["name"]: e for c in pod["containers"] for e in c.get("env", [])}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        sv.GRAFANA_ADMIN_SECRET
    )
    assert env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == (
        sv.GRAFANA_OAUTH_SECRET
    )
    rendered_ini = find(objects, "ConfigMap", "grafana")[0]["data"]["grafana.ini"]
    assert "serve_from_sub_path = true" in rendered_ini


def test_grafanas_admin_password_and_tokens_are_generated_secrets(staging: Run) -> None:
    password = staging.one(
        "random:index/randomPassword:RandomPassword", "gcp-support-grafana-admin"
    )
    assert password.inputs["length"] == 32
    for key in ("grafana-oauth", "prometheus-token"):
        staging.one("random:index/randomId:RandomId", f"gcp-support-{key}")
    secret = staging.one("kubernetes:core/v1:Secret", "gcp-support-grafana-admin-secret")
    assert secret.inputs["metadata"]["name"] == sv.GRAFANA_ADMIN_SECRET


@pytest.mark.usefixtures("chart_files")
def test_dashboards_reach_grafanas_sidecar_as_config_maps(staging: Run) -> None:
    maps = [
        r
        for r in staging.of_type("kubernetes:core/v1:ConfigMap")
        if r.name.startswith("gcp-support-dashboard-")
    ]
    names = {r.inputs["metadata"]["name"] for r in maps}
    assert "dashboard-jupyterhub" in names and "dashboard-cost" in names
    assert len(names) == 9  # the community's eight and ours
    for reg in maps:
        assert reg.inputs["metadata"]["labels"] == {sv.DASHBOARD_LABEL: "1"}
        folder = reg.inputs["metadata"]["annotations"][sv.FOLDER_ANNOTATION]
        assert folder == ("Cost" if reg.name.endswith("-cost") else "JupyterHub")
    objects = rendered(staging, "gcp", "grafana")
    pod = find(objects, "Deployment", "grafana")[0]["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "grafana-sc-dashboard")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["LABEL"] == sv.DASHBOARD_LABEL and env["FOLDER_ANNOTATION"] == sv.FOLDER_ANNOTATION


@pytest.mark.usefixtures("chart_files")
def test_opencost_prices_nodes_from_the_price_file(case: tuple[Run, str]) -> None:
    run, cloud = case
    objects = rendered(run, cloud, "opencost")
    pricing = find(objects, "ConfigMap", "custom-pricing-model")[0]["data"]
    assert float(pricing["CPU"]) > 0 and float(pricing["RAM"]) > 0
    deployment = find(objects, "Deployment", "opencost")[0]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in deployment["containers"][0]["env"]}
    assert env["PROMETHEUS_SERVER_ENDPOINT"] == (
        "http://prometheus-server.support.svc.cluster.local:80"
    )


@pytest.mark.parametrize(
    ("cloud", "region", "machines"),
    [
        ("gcp", "us-central1", ["e2-standard-2", "n2-highmem-4", "n2-highmem-32"]),
        ("aws", "us-west-2", ["t3a.large", "r5.xlarge", "r6i.8xlarge"]),
    ],
)
def test_opencost_prices_stay_close_to_the_listed_prices(
    cloud: str, region: str, machines: list[str]
) -> None:
    pools = [PoolMachine(m, False) for m in machines]
    pricing = custom_pricing(cloud, region, pools)
    errors = node_errors(cloud, region, pools, pricing)
    assert set(errors) == set(machines)
    # One CPU and one RAM price for a cluster mixing families: each machine within 25%.
    assert all(abs(e) < 0.25 for e in errors.values()), errors


# --- pieces of the hub's own releases -------------------------------------------------------


def merged_hub_values(run: Run, cloud: str) -> dict[str, Any]:
    """The hub's real values with our piece merged as the wiring in docs/howto/monitoring.md
    does: maps merge, the proxy's egress rules are appended."""
    values = copy.deepcopy(release(run, cloud, "jupyterhub")["values"])
    piece = sv.hub_values_piece("hub.example.org", "g" * 64, "p" * 64, ["viewer1"])
    egress = values.get("proxy", {}).get("chp", {}).get("networkPolicy", {}).get("egress", [])
    merged = coalesce(values, piece)
    merged["proxy"]["chp"]["networkPolicy"]["egress"] = [*egress, sv.proxy_to_grafana()]
    return merged


@pytest.mark.usefixtures("chart_files")
def test_the_hub_piece_renders_in_the_real_hub_values(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = merged_hub_values(run, cloud)
    validate_values(JUPYTERHUB, values)
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    validate_objects(objects)
    secret = find(objects, "Secret", "hub")[0]
    seen = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    services = seen["hub"]["services"]
    assert services["grafana"]["oauth_redirect_uri"] == (
        "https://hub.example.org/services/grafana/login/generic_oauth"
    )
    assert services["grafana"]["url"] == "http://grafana.support.svc"
    roles = seen["hub"]["loadRoles"]
    assert roles["prometheus-metrics"] == {
        "description": "Read the hub's metrics only",
        "scopes": ["read:metrics"],
        "services": ["prometheus"],
    }
    assert roles["grafana-viewers"]["scopes"] == ["access:services!service=grafana"]
    # /hub/metrics stays behind authentication.
    assert seen["hub"].get("authenticatePrometheus") is not False
    # The proxy may reach Grafana; the hub's own rules are kept.
    proxy_policy = find(objects, "NetworkPolicy", "proxy")[0]
    egress = proxy_policy["spec"]["egress"]
    assert sv.proxy_to_grafana() in egress
    autohttps = find(objects, "Deployment", "autohttps")[0]["spec"]["template"]["spec"]
    ports = {p["containerPort"] for c in autohttps["containers"] for p in c.get("ports", [])}
    assert sv.TRAEFIK_METRICS_PORT in ports


def test_support_may_reach_the_hub_autohttps_and_the_dask_schedulers(staging: Run) -> None:
    kind = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    hub = staging.one(kind, "gcp-support-support-scrapes-hub").inputs
    dask = staging.one(kind, "gcp-support-support-scrapes-dask").inputs
    assert hub["metadata"]["namespace"] == dask["metadata"]["namespace"] == "binder"
    assert {r["ports"][0]["port"] for r in hub["spec"]["ingress"]} == {
        8081,
        sv.TRAEFIK_METRICS_PORT,
    }
    assert {r["ports"][0]["port"] for r in dask["spec"]["ingress"]} == {8787}
    # The selectors match the pods' real labels: z2jh's hub and autohttps, the gateway's
    # scheduler pods (dask_gateway_server's controller labels them by container name).
    assert hub["spec"]["podSelector"]["matchExpressions"][0]["values"] == ["hub", "autohttps"]
    assert dask["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/component": "dask-scheduler"
    }
    objects = render(
        JUPYTERHUB,
        release(staging, "gcp", "jupyterhub")["values"],
        release="jupyterhub",
        namespace="binder",
    )
    for name in ("hub", "autohttps"):
        labels = find(objects, "Deployment", name)[0]["spec"]["template"]["metadata"]["labels"]
        assert labels["component"] == name


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_hub_reaches_grafana_for_its_service_check(staging: Run, cloud: str) -> None:
    """JupyterHub 5.5 checks each service's URL at start and every 60 s (app.py
    `check_services_health`): the hub's rendered policy opens Grafana's pod, by the labels
    and on the port the Grafana chart really renders, in the `support` namespace."""
    from test_network_policies import matches

    grafana_values = staging.one(HELM, f"{cloud}-support-grafana").inputs["values"]
    (grafana,) = find(
        render(GRAFANA, grafana_values, release="grafana", namespace=sv.NAMESPACE),
        "Deployment",
        "grafana",
    )
    labels = grafana["spec"]["template"]["metadata"]["labels"]
    ports = {
        p["containerPort"]
        for c in grafana["spec"]["template"]["spec"]["containers"]
        if c["name"] == "grafana"
        for p in c.get("ports", [])
    }
    values = release(staging, cloud, "jupyterhub")["values"]
    assert values["hub"]["services"][sv.GRAFANA_SERVICE]["url"].startswith("http://grafana.")
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    (policy,) = find(objects, "NetworkPolicy", "hub")
    support = {"kubernetes.io/metadata.name": sv.NAMESPACE}
    assert any(
        any(
            matches(peer.get("namespaceSelector", {"matchLabels": {"-": "-"}}), support)
            and matches(peer.get("podSelector", {}), labels)
            for peer in rule.get("to", [])
        )
        and {p["port"] for p in rule.get("ports", [])} & ports
        for rule in policy["spec"]["egress"]
    ), "hub -> grafana"


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_support_policies_in_the_hub_namespace_depend_on_it(staging: Run, cloud: str) -> None:
    """Created after the hub's Namespace and deleted before it (the support stack is built
    first, so only a dependency orders them), under the URNs they always had."""
    namespace = staging.one("kubernetes:core/v1:Namespace", f"{cloud}-hub-namespace")
    assert namespace.inputs["metadata"]["name"] == "binder"
    support = staging.one("pangeo-binder:support:Support", f"{cloud}-support")
    for policy in ("support-scrapes-hub", "support-scrapes-dask"):
        registration = staging.one(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{cloud}-support-{policy}"
        )
        assert registration.inputs["metadata"]["namespace"] == "binder"
        assert namespace.urn in registration.dependencies, policy
        assert registration.parent == support.urn
        assert registration.urn.endswith(
            "pangeo-binder:support:Support$kubernetes:networking.k8s.io/v1:NetworkPolicy::"
            f"{cloud}-support-{policy}"
        )


@pytest.mark.usefixtures("chart_files")
def test_the_dask_piece_renders_and_annotates_pods_with_their_user(staging: Run) -> None:
    values = coalesce(release(staging, "gcp", "dask-gateway")["values"], sv.dask_values_piece())
    validate_values(DASK_GATEWAY, values)
    objects = render(DASK_GATEWAY, values, release="dask-gateway", namespace="binder")
    source = find(objects, "ConfigMap", "api-dask-gateway")[0]["data"]["dask_gateway_config.py"]
    # Our entry runs last (the chart orders entries by key), after the options handler's.
    ours = source.index("c.Backend.cluster_options = wrap_cluster_options(")
    assert source.index("c.Backend.cluster_options = make_cluster_options(") < ours
    compile(source, "dask_gateway_config.py", "exec")


def test_dask_user_annotation_wraps_the_real_options_handler() -> None:
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
    from dask_gateway_server.options import Integer, Options

    def handler(options: Any, user: Any) -> dict[str, Any]:
        return {"worker_cores": options.worker_cores}

    user = types.SimpleNamespace(name="alice@example.org")
    options = dask_user.wrap_cluster_options(
        lambda u: Options(Integer("worker_cores", default=2), handler=handler)
    )(user)
    config = options.get_configuration({"worker_cores": 3}, user)
    assert config["worker_cores"] == 3
    for key in dask_user.ANNOTATION_KEYS:
        assert config[key] == {"hub.jupyter.org/username": "alice@example.org"}
    assert set(config) <= set(KubeClusterConfig.class_trait_names())
    # Without a handler of its own, the chosen options are kept.
    bare = dask_user.wrap_cluster_options(Options(Integer("worker_cores", default=2)))
    assert bare.get_configuration({"worker_cores": 4}, user)["worker_cores"] == 4
    # Executed as the chart does, after an entry that set cluster_options.
    c = types.SimpleNamespace(
        Backend=types.SimpleNamespace(
            cluster_options=lambda u: Options(Integer("worker_cores", default=2), handler=handler)
        )
    )
    exec(sv.dask_values_piece()["gateway"]["extraConfig"][sv.DASK_ANNOTATION_CONFIG], {"c": c})
    assert c.Backend.cluster_options(user).get_configuration({}, user)[
        "worker_extra_pod_annotations"
    ] == {"hub.jupyter.org/username": "alice@example.org"}


# --- cloud-side attribution -----------------------------------------------------------------


def test_gke_cost_allocation_and_node_labels(staging: Run) -> None:
    cluster = staging.one("gcp:container/cluster:Cluster")
    assert cluster.inputs["costManagementConfig"] == {"enabled": True}
    pool = staging.one("gcp:container/nodePool:NodePool", "gcp-gke-pool-user")
    labels = pool.inputs["nodeConfig"]["resourceLabels"]
    assert labels == {"pangeo-binder-pool": "user", "pangeo-binder-purpose": "user"}


def test_eks_instances_and_volumes_carry_hub_pool_and_purpose_tags(staging: Run) -> None:
    templates = staging.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        for spec in template.inputs["tagSpecifications"]:
            assert spec["resourceType"] in ("instance", "volume")
            tags = spec["tags"]
            assert set(tags) >= {
                "pangeo-binder.io/hub",
                "pangeo-binder.io/pool",
                "pangeo-binder.io/purpose",
            }
    # Activation is opt-in (AWS refuses a tag key before it shows in billing data).
    assert not staging.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")
    config = with_value(stack_config("staging"), "clouds.aws.costAllocationTags", True)
    tagged = run_program("staging", config=config)
    keys = {r.inputs["tagKey"] for r in tagged.of_type(
        "aws:costexplorer/costAllocationTag:CostAllocationTag")}  # fmt: skip
    assert keys == {"pangeo-binder.io/hub", "pangeo-binder.io/pool", "pangeo-binder.io/purpose"}


# --- config -----------------------------------------------------------------------------------


def _problems(config: dict[str, Any], secrets: set[str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        load_config(config, secret_keys=secrets or {"secrets"})
    return {p.path: p.message for p in raised.value.problems}


def test_bad_monitoring_config_is_refused_all_at_once_with_key_paths() -> None:
    config = stack_config("staging")
    config = with_value(config, "monitoring.retentionDays", 0)
    config = with_value(config, "hub.adminUsers", [])
    config = with_value(config, "monitoring.alerts", {"channel": {"type": "webhook"}})
    problems = _problems(config)
    assert "greater than or equal to 1" in problems["monitoring.retentionDays"]
    assert "nobody could log in to Grafana" in problems["monitoring.grafana.viewers"]
    assert "secrets.monitoring.alertWebhookUrl" in problems["secrets.monitoring.alertWebhookUrl"]


def test_an_email_channel_needs_its_fields_and_its_password() -> None:
    config = with_value(
        stack_config("staging"), "monitoring.alerts", {"channel": {"type": "email"}}
    )
    problems = _problems(config)
    assert "needs to, from, smarthost" in problems["monitoring.alerts.channel"]
    assert "smtpPassword" in problems["secrets.monitoring.smtpPassword"]


def test_viewers_let_a_hub_without_admins_use_grafana() -> None:
    config = with_value(stack_config("staging"), "hub.adminUsers", [])
    config = with_value(config, "monitoring.grafana.viewers", ["ops-person"])
    try:
        load_config(config, secret_keys={"secrets"})
    except ConfigError as error:
        assert not [p for p in error.problems if p.path.startswith("monitoring")]


def test_a_webhook_channel_with_its_secret_installs_alertmanager() -> None:
    config = with_value(
        stack_config("staging"), "monitoring.alerts", {"channel": {"type": "webhook"}}
    )
    config = with_value(
        config, "secrets.monitoring.alertWebhookUrl", "https://hooks.example.org/secret-path"
    )
    run = run_program("staging", config=config)
    values = support_release(run, "gcp", "prometheus")["values"]
    assert values["alertmanager"]["enabled"] is True
    receiver = values["alertmanager"]["config"]["receivers"][0]
    assert receiver["webhook_configs"][0]["url_file"].endswith("/url")
    assert "secret-path" not in yaml.safe_dump(values)
    run.one("kubernetes:core/v1:Secret", "gcp-support-alert-channel")


def test_no_monitoring_section_no_support_stack() -> None:
    config = {k: v for k, v in stack_config("staging").items() if k != "monitoring"}
    run = run_program("staging", config=config)
    assert not [r for r in run.of_type(HELM) if "-support-" in r.name]
