"""BinderHub on both clouds and both stacks, as the real program registers it: binderhub-service
renders with the real chart, passes its schema and every object is valid; it is the hub service
`binder` behind the hub's login; builds and the docker daemon run on an ordinary user pool; the
BinderHub pod's service account carries the builder identity and nothing else does; no key and
no registry password exist anywhere; the spawn form offers building to every user."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from chart_render import find, merged_values, render, validate_objects, validate_values
from conftest import HELM, release
from harness import DELETE, RecordingMonitor, Run, run_program, stack_config, with_value
from pangeo_binder.charts import BINDERHUB_SERVICE
from pangeo_binder.config import load_config
from pangeo_binder.hub.binderhub_values import RegistryMissing, binderhub_values
from pangeo_binder.hub.config import DEFAULT_BUILD_IMAGE
from pangeo_binder.hub.context import BINDER_POD_LABELS, NOT_PUBLIC, egress_outside
from pangeo_binder.hub.incluster import fancy_profiles, hub_access
from pangeo_binder.scheduling import POOL_LABEL

USER_TOLERATION = {
    "key": "hub.jupyter.org/dedicated",
    "operator": "Equal",
    "value": "user",
    "effect": "NoSchedule",
}


NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def binder(run: Run, cloud: str) -> dict[str, Any]:
    return release(run, cloud, "binderhub-service")["values"]


def rendered(run: Run, cloud: str) -> list[dict[str, Any]]:
    return render(
        BINDERHUB_SERVICE, binder(run, cloud), release="binderhub-service", namespace="binder"
    )


def test_the_release_is_pinned_and_waits_for_the_hub(case: tuple[Run, str]) -> None:
    run, cloud = case
    reg = run.one(HELM, f"{cloud}-hub-binderhub-service")
    inputs = reg.inputs
    assert (inputs["chart"], inputs["version"], inputs["name"]) == (
        "binderhub-service",
        "0.1.0-0.dev.git.336.hca79dc0",
        "binderhub-service",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://2i2c.org/binderhub-service"}
    assert inputs["namespace"] == "binder"
    hub = run.one(HELM, f"{cloud}-hub-jupyterhub")
    assert hub.urn in reg.dependencies  # its token lives in the hub's Secret
    assert reg.provider == hub.provider
    assert "values" in reg.secret_inputs


@pytest.mark.usefixtures("chart_files")
def test_renders_with_the_real_chart_and_every_object_is_valid(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = binder(run, cloud)
    validate_values(BINDERHUB_SERVICE, values)
    objects = rendered(run, cloud)
    validate_objects(objects)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("Deployment", "binderhub"),
        ("Service", "binderhub"),
        ("ServiceAccount", "binderhub"),
        ("DaemonSet", "docker-api"),
    } <= names


def test_api_only_behind_the_hub_login_at_services_binder(case: tuple[Run, str]) -> None:
    run, cloud = case
    config = binder(run, cloud)["config"]
    hub = config["BinderHub"]
    assert hub["base_url"] == "/services/binder/"
    assert hub["enable_api_only_mode"] is True
    assert hub["auth_enabled"] is True
    assert hub["use_registry"] is True
    outputs = run.stack_outputs[cloud]
    assert hub["image_prefix"] == outputs["imagePrefix"]
    assert config["DockerRegistry"]["url"] == f"https://{outputs['registry']}"
    assert hub["image_prefix"].startswith(outputs["registry"] + "/")
    assert config["HubOAuth"]["oauth_client_id"] == "service-binder"
    assert config["KubernetesBuildExecutor"]["build_image"] == DEFAULT_BUILD_IMAGE
    assert DEFAULT_BUILD_IMAGE != "quay.io/jupyterhub/repo2docker:2024.07.0"
    # What the registry class reads: this cloud, its registry and (ECR) its region.
    extra = binder(run, cloud)["extraConfig"]
    assert sorted(extra) == ["pangeo-binder-00-settings", "pangeo-binder-10-registry"]
    settings_entry = extra["pangeo-binder-00-settings"]
    namespace: dict[str, Any] = {}
    exec(settings_entry, namespace)
    expected = {"cloud": cloud, "registryHost": outputs["registry"]}
    if cloud == "gcp":  # push tokens are minted for the builder Google service account
        expected["builderEmail"] = outputs["builderIdentity"]
        assert outputs["builderIdentity"].endswith(".iam.gserviceaccount.com")
    if cloud == "aws":
        expected["region"] = "us-west-2"
    assert namespace["PANGEO_BINDER_REGISTRY"] == expected


@pytest.mark.usefixtures("chart_files")
def test_only_tokens_with_access_to_the_binder_service_pass(case: tuple[Run, str]) -> None:
    """HubAuth.access_scopes is empty without JUPYTERHUB_SERVICE_NAME (jupyterhub
    services/auth.py), and empty lets any hub token through: it is set explicitly."""
    run, cloud = case
    scopes = ["access:services!service=binder"]
    assert binder(run, cloud)["config"]["HubOAuth"]["access_scopes"] == scopes
    secret = find(rendered(run, cloud), "Secret", "binderhub")[0]
    chart_config = yaml.safe_load(secret["stringData"]["chart-config.yaml"])
    assert chart_config["config"]["HubOAuth"]["access_scopes"] == scopes
    container = find(rendered(run, cloud), "Deployment", "binderhub")[0]["spec"]["template"][
        "spec"
    ]["containers"][0]
    # Nor does the environment set other scopes (the env var would only be a default).
    names = {variable["name"] for variable in container.get("env", [])}
    assert not names & {"JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES"}


@pytest.mark.usefixtures("chart_files")
def test_the_docker_daemon_uses_the_pod_networks_mtu(case: tuple[Run, str]) -> None:
    """GKE's VPC (and so pod) MTU is 1460, dockerd's default 1500: without --mtu a build's
    downloads hang. EKS pods get 9001, so 1500 fits and dockerd keeps its default."""
    run, cloud = case
    daemon = find(rendered(run, cloud), "DaemonSet", "docker-api")[0]["spec"]["template"]["spec"]
    args = daemon["containers"][0]["args"]
    assert args[0] == "dockerd"
    mtu = [arg for arg in args if arg.startswith("--mtu")]
    assert mtu == (["--mtu=1460"] if cloud == "gcp" else [])
    if cloud == "gcp":  # the VPC keeps GCP's default MTU (1460): no other value is set
        network = run.one("gcp:compute/network:Network").inputs
        assert network.get("mtu") in (None, 1460)


def test_registered_as_the_hub_service_binder(case: tuple[Run, str]) -> None:
    run, cloud = case
    hub = release(run, cloud, "jupyterhub")["values"]["hub"]
    service = hub["services"]["binder"]
    assert service["url"] == "http://binderhub"
    assert len(service["apiToken"]) == 64
    # JupyterHub 5.5 refuses service keys it does not know.
    assert set(service) <= {"url", "apiToken", "display", "name", "oauth_no_confirm"}
    scopes = hub["loadRoles"]["user"]["scopes"]
    assert "self" in scopes and "access:services!service=binder" in scopes
    env = binder(run, cloud)["extraEnv"]
    assert env == [
        {
            "name": "JUPYTERHUB_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hub", "key": "hub.services.binder.apiToken"}},
        }
    ]


@pytest.mark.usefixtures("chart_files")
def test_the_hub_secret_holds_the_key_binderhub_reads(case: tuple[Run, str]) -> None:
    from pangeo_binder.charts import JUPYTERHUB

    run, cloud = case
    values = release(run, cloud, "jupyterhub")["values"]
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    secret = find(objects, "Secret", "hub")[0]
    token = base64.b64decode(secret["data"]["hub.services.binder.apiToken"]).decode()
    assert token == values["hub"]["services"]["binder"]["apiToken"]


@pytest.mark.usefixtures("chart_files")
def test_builds_and_the_docker_daemon_run_on_an_ordinary_user_pool(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = binder(run, cloud)
    selector = values["config"]["KubernetesBuildExecutor"]["node_selector"]
    assert selector["hub.jupyter.org/node-purpose"] == "user"
    assert selector[POOL_LABEL] == "user"  # not highmem or gpu
    pools = stack_config("staging")["clouds"][cloud]["nodePools"]
    assert pools[selector[POOL_LABEL]]["purpose"] == "user"
    assert not pools[selector[POOL_LABEL]].get("spot", False)
    daemon = find(rendered(run, cloud), "DaemonSet", "docker-api")[0]["spec"]["template"]["spec"]
    assert daemon["nodeSelector"] == selector  # the build pod's socket is on its own node
    assert USER_TOLERATION in daemon["tolerations"]
    assert daemon["containers"][0]["securityContext"]["privileged"] is True
    assert daemon["nodeSelector"].get("hub.jupyter.org/node-purpose") != "core"
    data = next(v for v in daemon["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "emptyDir": {"sizeLimit": "50Gi"}}
    assert daemon["containers"][0]["resources"]["limits"]["memory"] == "8Gi"
    limits = values["config"]["KubernetesBuildExecutor"]["resources"]["limits"]
    assert limits["memory"] and limits["cpu"]
    deployment = find(rendered(run, cloud), "Deployment", "binderhub")[0]["spec"]["template"]
    assert deployment["spec"]["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}


@pytest.mark.usefixtures("chart_files")
def test_the_binderhub_pod_runs_as_the_builder_identity(case: tuple[Run, str]) -> None:
    run, cloud = case
    objects = rendered(run, cloud)
    account = find(objects, "ServiceAccount", "binderhub")[0]
    identity = run.stack_outputs[cloud]["builderIdentity"]
    annotation = (
        "iam.gke.io/gcp-service-account" if cloud == "gcp" else "eks.amazonaws.com/role-arn"
    )
    assert account["metadata"]["annotations"] == {annotation: identity}
    pod = find(objects, "Deployment", "binderhub")[0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "binderhub"
    # The cloud layer bound the identity to exactly this account.
    assert stack_config("staging")["hub"].get("builderServiceAccount", "binderhub") == "binderhub"
    # Build pods and the docker daemon run as the namespace's default account: no identity.
    daemon = find(objects, "DaemonSet", "docker-api")[0]["spec"]["template"]["spec"]
    assert "serviceAccountName" not in daemon


def test_no_resource_annotates_the_default_account(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        for reg in run.of_type("kubernetes:core/v1:ServiceAccount"):
            assert reg.inputs["metadata"]["name"] != "default"
        for cloud in ("gcp", "aws"):
            for chart in ("jupyterhub", "dask-gateway", "binderhub-service"):
                text = json.dumps(release(run, cloud, chart)["values"])
                assert '"serviceAccountName": "default"' not in text


@pytest.mark.usefixtures("chart_files")
def test_no_rendered_object_binds_an_identity_to_default(case: tuple[Run, str]) -> None:
    run, cloud = case
    for obj in rendered(run, cloud):
        if obj["kind"] == "ServiceAccount":
            assert obj["metadata"]["name"] != "default"


LONG_LIVED_KEYS = {
    "gcp:serviceaccount/key:Key",
    "gcp:serviceAccount/key:Key",
    "aws:iam/accessKey:AccessKey",
    "aws:iam/userLoginProfile:UserLoginProfile",
    "aws:iam/user:User",
}


def test_no_long_lived_key_anywhere(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        types = {reg.type for reg in run.registrations}
        assert not types & LONG_LIVED_KEYS
        assert not any("accessKey" in t or "serviceaccount/key" in t.lower() for t in types)


@pytest.mark.usefixtures("chart_files")
def test_no_registry_password_in_values_or_rendered(case: tuple[Run, str]) -> None:
    run, cloud = case
    values = binder(run, cloud)
    assert "buildPodsRegistryCredentials" not in values
    assert "extraCredentials" not in values
    merged = merged_values(BINDERHUB_SERVICE, values)
    assert merged["buildPodsRegistryCredentials"] == {"server": "", "username": "", "password": ""}
    assert merged["extraCredentials"]["googleServiceAccountKey"] == ""
    secret = find(rendered(run, cloud), "Secret", "build-pods-docker-config")[0]
    config = json.loads(secret["stringData"]["config.json"])
    for entry in config.get("auths", {}).values():
        assert base64.b64decode(entry["auth"]) == b":"  # nothing: credentials come per build
    deployment = find(rendered(run, cloud), "Deployment", "binderhub")[0]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e["name"] for e in env}


@pytest.mark.usefixtures("chart_files")
def test_the_binder_pod_may_reach_the_hub_api(case: tuple[Run, str]) -> None:
    run, cloud = case
    ingress = release(run, cloud, "jupyterhub")["values"]["hub"]["networkPolicy"]["ingress"]
    rule = next(
        r for r in ingress if r["from"] == [{"podSelector": {"matchLabels": BINDER_POD_LABELS}}]
    )
    assert rule["ports"] == [{"port": 8081, "protocol": "TCP"}]
    labels = find(rendered(run, cloud), "Deployment", "binderhub")[0]["spec"]["template"][
        "metadata"
    ]["labels"]
    assert BINDER_POD_LABELS.items() <= labels.items()


def test_the_hub_loads_fancy_profiles_before_the_profile_filter(case: tuple[Run, str]) -> None:
    run, cloud = case
    extra = release(run, cloud, "jupyterhub")["values"]["hub"]["extraConfig"]
    # The chart loads extraConfig in sorted key order; the image cache's rewrite comes last.
    assert sorted(extra) == ["05-fancy-profiles", "10-hub-access", "20-image-cache"]
    assert "from jupyterhub_fancy_profiles import setup_ui" in extra["05-fancy-profiles"]
    # The stack files set no hubImage: the hub runs the image the program built (with
    # fancy-profiles); the extraConfig still works on the chart's image, where it is absent.
    assert release(run, cloud, "jupyterhub")["values"]["hub"]["image"]["name"].endswith("/hub")


# --- the spawn form ---------------------------------------------------------------------------


class Group:
    def __init__(self, name: str) -> None:
        self.name = name


class User:
    def __init__(self, name: str, groups: tuple[str, ...], admin: bool = False) -> None:
        self.name, self.groups, self.admin = name, [Group(g) for g in groups], admin


class Spawner:
    def __init__(self, user: User) -> None:
        self.user = user


@pytest.mark.parametrize(
    "user",
    [
        User("bob", ()),
        User("carol", ("pangeo-data:other-team",)),
        User("alice", ("pangeo-data:gpu-users",)),
        User("admin", (), admin=True),
    ],
    ids=lambda u: u.name,
)
def test_every_user_who_may_start_a_server_may_build(case: tuple[Run, str], user: User) -> None:
    run, cloud = case
    profiles = release(run, cloud, "jupyterhub")["values"]["singleuser"]["profileList"]
    shown = hub_access.make_profile_list(profiles)(Spawner(user))
    assert shown
    for profile in shown:
        image = profile["profile_options"]["image"]
        assert image["dynamic_image_building"] == {"enabled": True}
        assert image["unlisted_choice"]["enabled"] is True


def test_an_image_binderhub_builds_passes_the_forms_check(case: tuple[Run, str]) -> None:
    """BinderHub names images <image_prefix><escaped slug>-<6 hex>:<ref>, lower case
    (binderhub/builder.py _safe_build_slug); the form hands that name back as the unlisted
    choice, which KubeSpawner checks with validation_regex (re.match)."""
    import re

    run, cloud = case
    prefix = binder(run, cloud)["config"]["BinderHub"]["image_prefix"]
    built = f"{prefix}pangeo-2ddata-2dpangeo-2dtutorial-5e2a1c:{'0123456789abcdef' * 2}01234567"
    profiles = release(run, cloud, "jupyterhub")["values"]["singleuser"]["profileList"]
    regex = profiles[0]["profile_options"]["image"]["unlisted_choice"]["validation_regex"]
    assert re.match(regex, built)


# --- switched off, and refused ----------------------------------------------------------------


def test_building_switched_off_installs_nothing_and_offers_nothing() -> None:
    config = with_value(stack_config("staging"), "hub", {
        **stack_config("staging")["hub"], "binder": {"enabled": False},
    })  # fmt: skip
    for cloud in ("gcp", "aws"):  # the public Binder needs building: it goes too
        config = with_value(config, f"clouds.{cloud}.publicBinder", DELETE)
        config = with_value(config, f"clouds.{cloud}.nodePools.public", DELETE)
    run = run_program("staging", config)
    assert not [r for r in run.of_type(HELM) if r.name.endswith("binderhub-service")]
    assert not [r for r in run.registrations if r.name.endswith("-binder-token")]
    for cloud in ("gcp", "aws"):
        values = release(run, cloud, "jupyterhub")["values"]
        assert "binder" not in values["hub"]["services"]
        assert "access:services!service=binder" not in values["hub"]["loadRoles"]["user"]["scopes"]
        for profile in values["singleuser"]["profileList"]:
            assert "dynamic_image_building" not in profile["profile_options"]["image"]


def test_a_hub_image_setting_reaches_the_hub() -> None:
    image = "us-central1-docker.pkg.dev/pangeo-binder-staging/hub/k8s-hub-fancy:4.4.0-0.7.0"
    config = with_value(stack_config("staging"), "hub.hubImage", image)
    run = run_program("staging", config)
    assert release(run, "gcp", "jupyterhub")["values"]["hub"]["image"] == {
        "name": "us-central1-docker.pkg.dev/pangeo-binder-staging/hub/k8s-hub-fancy",
        "tag": "4.4.0-0.7.0",
    }


def test_building_on_a_cloud_without_a_registry_is_refused_with_its_key(staging: Run) -> None:
    """Both stacks always create a registry, so no config reaches this; the values builder
    still refuses an empty one rather than rendering a BinderHub that cannot push."""
    from test_hub_incluster import context

    config = load_config(stack_config("staging"), secret_keys=("secrets",))
    gcp = config.clouds.gcp
    assert gcp is not None
    no_registry = context()
    object.__setattr__(no_registry, "registry_host", "")
    with pytest.raises(RegistryMissing, match=r"hub\.binder\.enabled: .*gcp registry"):
        binderhub_values(no_registry, config.hub, gcp.node_pools)
    assert binderhub_values(context(), config.hub, gcp.node_pools)["config"]


def test_the_docker_cache_check_refuses_before_anything_is_registered() -> None:
    config = with_value(stack_config("staging"), "hub", {
        **stack_config("staging")["hub"], "binder": {"dockerDiskGb": 80},
    })  # fmt: skip
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match=r"hub\.binder\.dockerDiskGb"):
        run_program("staging", config, monitor=monitor)
    assert monitor.registrations == []


# --- fancy-profiles in the hub image, or not --------------------------------------------------


def test_without_fancy_profiles_the_hub_keeps_kubespawners_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "jupyterhub_fancy_profiles", None)  # import fails
    said: list[str] = []
    c = object()
    assert fancy_profiles.enable(c, log=said.append) is False
    assert said == [fancy_profiles.MISSING]


def test_with_fancy_profiles_setup_ui_gets_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    module = types.ModuleType("jupyterhub_fancy_profiles")
    received: list[Any] = []
    module.setup_ui = received.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jupyterhub_fancy_profiles", module)
    c = object()
    assert fancy_profiles.enable(c, log=pytest.fail) is True
    assert received == [c]


def test_builds_are_fenced_by_our_policies_before_binderhub_starts(case: tuple[Run, str]) -> None:
    """The chart's build policies (`0.0.0.0/0 except` RFC 1918) left the metadata server open
    to the code a build runs: they are off, none is rendered, and ours (build pods and the
    docker daemon: DNS and the public internet out, nothing in) exist before the release."""
    run, cloud = case
    assert binder(run, cloud)["networkPolicy"] == {"enabled": False}
    assert not [o for o in rendered(run, cloud) if o["kind"] == "NetworkPolicy"]
    release_reg = run.one(HELM, f"{cloud}-hub-binderhub-service")
    for key in ("build-pods", "docker-api"):
        egress = run.one(NETPOL, f"{cloud}-hub-{key}-egress")
        ingress = run.one(NETPOL, f"{cloud}-hub-{key}-ingress")
        assert {egress.urn, ingress.urn} <= set(release_reg.dependencies)
        assert ingress.inputs["spec"]["ingress"] == []
        internet = egress.inputs["spec"]["egress"][1]
        assert internet == egress_outside(NOT_PUBLIC)
        assert "ports" not in internet  # every port, as the chart's rule had
