"""The Python that runs inside the cluster (`pangeo_binder/hub/incluster`), run here as Python.

JupyterHub and Dask Gateway are not installed; what they hand our code is faked with the same
attributes (a spawner's user and groups, a GitHub auth state as oauthenticator stores it, the
`c` config object). The Dask Gateway side runs against the real `dask_gateway_server.options`
classes and the real `Backend.process_cluster_options`. The profile list and the gateway
settings are the ones the program builds from the stack files, and both modules are also
executed the way the charts execute them (z2jh `exec`s each hub.extraConfig entry; the
dask-gateway chart appends its extraConfig entries, in key order, to its config file).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dask_gateway_server.backends.base import Backend, PublicException
from dask_gateway_server.models import User
from dask_gateway_server.options import Options
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from harness import SECRET_KEYS, stack_config, with_value
from pangeo_binder.config import StackConfig, load_config
from pangeo_binder.hub.config import DEFAULT_IMAGES, IMAGE_REF
from pangeo_binder.hub.context import BINDER_SERVICE, DASK_GATEWAY_SERVICE, HubContext, HubTokens
from pangeo_binder.hub.dask_values import dask_gateway_values, gateway_settings
from pangeo_binder.hub.incluster import gateway_options, hub_access, source
from pangeo_binder.hub.jupyterhub_values import jupyterhub_values
from pangeo_binder.hub.profiles import profile_list

PRIVILEGED = "pangeo-data:gpu-users"  # hub.privilegedGroups of both stack files
# The stack files keep the default menu: its cpu image is the workers' default image.
DEFAULT_CPU_IMAGE = DEFAULT_IMAGES["pangeo"].image
NOTEBOOK_IMAGE = "quay.io/pangeo/pangeo-notebook:2026.06.04"
# A notebook's own image (JUPYTER_IMAGE_SPEC, sent as the `image` option): not the default.
OWN_IMAGE = "ghcr.io/example-lab/climate-notebook:1.4.2"


def staging_config(**changes: Any) -> StackConfig:
    config = stack_config("staging")
    for path, value in changes.items():
        config = with_value(config, path, value)
    return load_config(config, secret_keys=SECRET_KEYS)


def gcp_profiles(config: StackConfig) -> list[dict[str, Any]]:
    gcp = config.clouds.gcp
    assert gcp is not None
    return profile_list("gcp", gcp.node_pools, config.hub, gcp.hub)


def context(cloud: str = "gcp") -> HubContext:
    return HubContext(
        cloud=cloud,  # type: ignore[arg-type]
        namespace="binder",
        domain="gcp.staging.pangeo-binder.example.org",
        scratch_bucket="gs://pangeo-binder-staging-scratch",
        persistent_bucket="gs://pangeo-binder-staging-persistent",
        github_client_id="Ov23liStagingGcp01",
        github_client_secret="not-a-real-secret",
        contact_email="hub-admins@pangeo-binder.example.org",
        tokens=HubTokens(
            proxy_token="proxy",
            cookie_secret="cookie",
            crypt_key="crypt",
            service_tokens={DASK_GATEWAY_SERVICE: "gateway-token", BINDER_SERVICE: "binder-token"},
        ),
        registry_host="us-central1-docker.pkg.dev",
        image_prefix="us-central1-docker.pkg.dev/pangeo-binder-staging/binder/",
        builder_annotations={"iam.gke.io/gcp-service-account": "builder@example.iam"},
    )


@pytest.fixture(scope="module")
def staging() -> StackConfig:
    return staging_config()


@pytest.fixture(scope="module")
def profiles(staging: StackConfig) -> list[dict[str, Any]]:
    """The static profile list z2jh puts in `c.KubeSpawner.profile_list` (staging, gcp)."""
    return gcp_profiles(staging)


# --- fakes of what JupyterHub hands the hub's code ----------------------------------------


@dataclass(frozen=True)
class HubGroup:
    """A JupyterHub group (orm.Group): code reads `.name`."""

    name: str


@dataclass
class HubUser:
    """A JupyterHub user as a spawner sees it (`spawner.user`)."""

    name: str
    admin: bool = False
    groups: list[HubGroup] = field(default_factory=list)


@dataclass
class Spawner:
    user: HubUser


def spawner(name: str, *groups: str, admin: bool = False) -> Spawner:
    return Spawner(HubUser(name, admin, [HubGroup(group) for group in groups]))


def slugs(profiles: list[dict[str, Any]]) -> list[str]:
    return [profile["slug"] for profile in profiles]


def team(org: str, slug: str, name: str) -> dict[str, Any]:
    """One object of GitHub's GET /user/teams, as populate_teams_in_auth_state stores it."""
    return {
        "name": name,
        "id": 1234567,
        "node_id": "T_kwDOAbCdEf4AbCdE",
        "slug": slug,
        "description": "",
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "url": f"https://api.github.com/organizations/17162077/team/{slug}",
        "html_url": f"https://github.com/orgs/{org}/teams/{slug}",
        "members_url": f"https://api.github.com/organizations/17162077/team/{slug}/members{{/member}}",
        "repositories_url": f"https://api.github.com/organizations/17162077/team/{slug}/repos",
        "permission": "pull",
        "parent": None,
        "members_count": 12,
        "repos_count": 3,
        "created_at": "2019-05-01T12:00:00Z",
        "updated_at": "2026-01-10T09:30:00Z",
        "organization": {
            "login": org,
            "id": 17162077,
            "node_id": "MDEyOk9yZ2FuaXphdGlvbjE3MTYyMDc3",
            "url": f"https://api.github.com/orgs/{org}",
            "description": "",
            "name": org.title(),
            "type": "Organization",
        },
    }


AUTH_STATE = {
    "access_token": "gho_not-a-real-token",
    "token_response": {"access_token": "gho_not-a-real-token", "scope": "read:org"},
    "github_user": {"login": "alice", "id": 1, "type": "User"},
    "teams": [
        # GitHub derives the slug from the name: groups use the slug.
        team("pangeo-data", "gpu-users", "GPU users"),
        team("pangeo-data", "maintainers", "Maintainers"),
        team("other-org", "gpu-users", "GPU Users"),
    ],
}


# --- hub_access: GitHub teams -> groups -----------------------------------------------------


def test_teams_become_org_slug_groups() -> None:
    assert hub_access.team_groups(AUTH_STATE) == [
        "other-org:gpu-users",
        "pangeo-data:gpu-users",
        "pangeo-data:maintainers",
    ]


def test_a_team_of_another_org_with_the_same_slug_is_another_group() -> None:
    state = {"teams": [team("other-org", "gpu-users", "GPU users")]}
    assert PRIVILEGED not in hub_access.team_groups(state)


@pytest.mark.parametrize(
    "state",
    [None, {}, {"teams": None}, {"teams": []}, {"access_token": "gho_x", "github_user": {}}],
    ids=["none", "empty", "teams-none", "no-teams", "teams-not-populated"],
)
def test_no_auth_state_or_teams_means_no_groups(state: dict[str, Any] | None) -> None:
    assert hub_access.team_groups(state) == []


def test_teams_without_slug_or_organization_are_skipped() -> None:
    broken = team("pangeo-data", "gpu-users", "GPU users")
    del broken["organization"]
    state = {"teams": [broken, {"slug": "", "organization": {"login": "pangeo-data"}}]}
    assert hub_access.team_groups(state) == []


# --- hub_access: the profile list per user ------------------------------------------------


def test_the_static_list_is_what_the_filter_works_on(profiles: list[dict[str, Any]]) -> None:
    """Staging gcp: an ordinary pool for everyone, high-memory and GPU for privileged groups."""
    assert slugs(profiles) == ["user", "highmem", "gpu"]
    assert "allowed_groups" not in profiles[0]
    assert profiles[1]["allowed_groups"] == profiles[2]["allowed_groups"] == [PRIVILEGED]


def test_a_privileged_user_sees_gpu_and_highmem(profiles: list[dict[str, Any]]) -> None:
    shown = hub_access.make_profile_list(profiles)(spawner("alice", PRIVILEGED, "other:team"))
    assert slugs(shown) == ["user", "highmem", "gpu"]


@pytest.mark.parametrize(
    "groups",
    [(), ("pangeo-data:maintainers",), ("gpu-users",), ("other-org:gpu-users",)],
    ids=["no-groups", "other-team", "slug-without-org", "same-slug-other-org"],
)
def test_an_unprivileged_user_sees_only_ordinary_machines(
    profiles: list[dict[str, Any]], groups: tuple[str, ...]
) -> None:
    shown = hub_access.make_profile_list(profiles)(spawner("bob", *groups))
    assert slugs(shown) == ["user"]
    assert shown[0]["default"] is True


def test_an_admin_sees_every_profile(profiles: list[dict[str, Any]]) -> None:
    shown = hub_access.make_profile_list(profiles)(spawner("pangeo-admin", admin=True))
    assert slugs(shown) == ["user", "highmem", "gpu"]


def test_allowed_groups_never_reach_the_form(profiles: list[dict[str, Any]]) -> None:
    profile_list_for = hub_access.make_profile_list(profiles)
    for user in (spawner("a", PRIVILEGED), spawner("b"), spawner("c", admin=True)):
        for profile in profile_list_for(user):
            assert "allowed_groups" not in profile
    # ...and filtering removes it from copies only: the next user is still filtered.
    assert profiles[1]["allowed_groups"] == [PRIVILEGED]
    assert slugs(profile_list_for(spawner("d"))) == ["user"]


def test_what_a_user_is_shown_is_a_copy(profiles: list[dict[str, Any]]) -> None:
    """KubeSpawner fills in defaults on what it gets; that must not leak to the next user."""
    profile_list_for = hub_access.make_profile_list(profiles)
    first = profile_list_for(spawner("a", PRIVILEGED))
    first[0]["kubespawner_override"]["image"] = "evil:latest"
    first[1]["profile_options"]["image"]["unlisted_choice"]["validation_regex"] = ".*"
    again = profile_list_for(spawner("b", PRIVILEGED))
    assert "image" not in again[0]["kubespawner_override"]
    assert again[1]["profile_options"]["image"]["unlisted_choice"]["validation_regex"] == IMAGE_REF


def test_exactly_one_default_when_the_default_profile_is_hidden() -> None:
    restricted = gcp_profiles(
        staging_config(**{"clouds.gcp.hub.poolGroups": {"user": ["pangeo-data:staff"]}})
    )
    assert restricted[0]["slug"] == "user" and restricted[0]["default"] is True
    shown = hub_access.make_profile_list(restricted)(spawner("alice", PRIVILEGED))
    assert slugs(shown) == ["highmem", "gpu"]
    assert [profile["default"] for profile in shown] == [True, False]


def test_pool_groups_override_per_pool() -> None:
    config = staging_config(
        **{"clouds.gcp.hub.poolGroups": {"gpu": ["pangeo-data:ml-team"], "highmem": []}}
    )
    profile_list_for = hub_access.make_profile_list(gcp_profiles(config))
    assert slugs(profile_list_for(spawner("a", PRIVILEGED))) == ["user"]
    assert slugs(profile_list_for(spawner("b", "pangeo-data:ml-team"))) == ["user", "gpu"]
    # An empty list: admins only.
    assert slugs(profile_list_for(spawner("c", admin=True))) == ["user", "highmem", "gpu"]


def test_a_user_who_may_start_nothing_is_refused() -> None:
    config = staging_config(**{"clouds.gcp.hub.poolGroups": {"user": ["pangeo-data:staff"]}})
    profile_list_for = hub_access.make_profile_list(gcp_profiles(config))
    with pytest.raises(hub_access.NoProfileError, match=r"^mallory may start none") as caught:
        profile_list_for(spawner("mallory", "pangeo-data:maintainers"))
    # KubeSpawner falls back to its base config for an empty list: never return one.
    assert isinstance(caught.value, PermissionError)
    with pytest.raises(hub_access.NoProfileError):
        hub_access.make_profile_list([])(spawner("admin", admin=True))


# --- hub_access wired into the hub's config -------------------------------------------------


def test_configure_wires_groups_and_the_filter(profiles: list[dict[str, Any]]) -> None:
    c = Config()
    c.KubeSpawner.profile_list = profiles
    hub_access.configure(c)
    assert c.GitHubOAuthenticator.auth_state_groups_key is hub_access.team_groups
    filtered = c.KubeSpawner.profile_list
    assert callable(filtered)
    assert slugs(filtered(spawner("bob"))) == ["user"]
    assert slugs(filtered(spawner("alice", PRIVILEGED))) == ["user", "highmem", "gpu"]


def test_hub_access_source_configures_c_when_executed(profiles: list[dict[str, Any]]) -> None:
    c = Config()
    c.KubeSpawner.profile_list = profiles
    exec(source("hub_access"), {"c": c})
    groups_key = c.GitHubOAuthenticator.auth_state_groups_key
    assert callable(groups_key) and PRIVILEGED in groups_key(AUTH_STATE)
    filtered = c.KubeSpawner.profile_list
    assert slugs(filtered(spawner("bob"))) == ["user"]
    assert slugs(filtered(spawner("alice", PRIVILEGED))) == ["user", "highmem", "gpu"]

    # Only privileged machines: an unprivileged user is refused (the exec'd module's own
    # NoProfileError class, a PermissionError).
    only_privileged = Config()
    only_privileged.KubeSpawner.profile_list = profiles[1:]
    exec(source("hub_access"), {"c": only_privileged})
    with pytest.raises(PermissionError, match="eve may start none"):
        only_privileged.KubeSpawner.profile_list(spawner("eve", "pangeo-data:maintainers"))


def test_importing_hub_access_configures_nothing() -> None:
    assert "c" not in vars(hub_access)


def test_the_hub_config_file_runs_our_extra_config(staging: StackConfig, tmp_path: Path) -> None:
    """As z2jh's jupyterhub_config.py does: profileList into c.KubeSpawner.profile_list, then
    `exec(config_py)` of every hub.extraConfig entry, in a file traitlets loads."""
    gcp = staging.clouds.gcp
    assert gcp is not None
    values = jupyterhub_values(context(), staging.hub, gcp.hub, gcp.node_pools)
    (tmp_path / "values.json").write_text(json.dumps(values))
    (tmp_path / "jupyterhub_config.py").write_text(
        "import json, pathlib\n"
        "values = json.loads((pathlib.Path(__file__).parent / 'values.json').read_text())\n"
        "c.KubeSpawner.profile_list = values['singleuser']['profileList']\n"
        "for key, config_py in sorted(values['hub']['extraConfig'].items()):\n"
        "    exec(config_py)\n"
    )
    c = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()
    assert c.GitHubOAuthenticator.auth_state_groups_key(AUTH_STATE) == hub_access.team_groups(
        AUTH_STATE
    )
    filtered = c.KubeSpawner.profile_list
    assert slugs(filtered(spawner("bob"))) == ["user"]
    assert slugs(filtered(spawner("alice", PRIVILEGED))) == ["user", "highmem", "gpu"]
    assert values["hub"]["config"]["Authenticator"]["manage_groups"] is True
    assert values["hub"]["config"]["GitHubOAuthenticator"]["populate_teams_in_auth_state"] is True


# --- bring your own image -------------------------------------------------------------------

ACCEPTED_IMAGES = [
    NOTEBOOK_IMAGE,
    "ghcr.io/org/img@sha256:" + "0123456789abcdef" * 4,
    "docker.io/library/python:3.12",
    "myregistry.example.org:5000/team/image:v1",
]
REFUSED_IMAGES = [
    "quay.io/pangeo/pangeo-notebook",
    "UPPER/case:tag",
    "image:tag; rm -rf /",
    "myregistry.example.org:5000/team/image",
    "ghcr.io/org/img@sha256:0123",
    "quay.io/pangeo/pangeo-notebook:",
    "",
]


def unlisted_choices(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [profile["profile_options"]["image"]["unlisted_choice"] for profile in profiles]


def test_every_profile_accepts_an_image_of_ones_own(profiles: list[dict[str, Any]]) -> None:
    for choice in unlisted_choices(profiles):
        assert choice["enabled"] is True
        assert choice["validation_regex"] == IMAGE_REF
        assert choice["kubespawner_override"] == {"image": "{value}"}


@pytest.mark.parametrize("image", ACCEPTED_IMAGES)
def test_own_image_with_tag_or_digest_is_accepted(
    profiles: list[dict[str, Any]], image: str
) -> None:
    for choice in unlisted_choices(profiles):
        assert re.match(choice["validation_regex"], image), image  # as KubeSpawner checks it


@pytest.mark.parametrize("image", REFUSED_IMAGES)
def test_own_image_without_tag_or_malformed_is_refused(
    profiles: list[dict[str, Any]], image: str
) -> None:
    for choice in unlisted_choices(profiles):
        assert not re.match(choice["validation_regex"], image), image


# --- gateway_options: Dask cluster options per user -----------------------------------------


@dataclass
class GatewayUser:
    """A Dask Gateway user (dask_gateway_server.models.User): name, groups (set), admin."""

    name: str
    groups: set[str] = field(default_factory=set)
    admin: bool = False


@pytest.fixture(scope="module")
def settings(staging: StackConfig) -> dict[str, Any]:
    gcp = staging.clouds.gcp
    assert gcp is not None
    return gateway_settings(context(), staging.hub, gcp.node_pools["dask"])


def size_names(settings: dict[str, Any], *, privileged: bool) -> list[str]:
    return [s["name"] for s in settings["workerSizes"] if privileged or not s["privileged"]]


def worker_size_spec(options: Options) -> dict[str, Any]:
    return next(f for f in options.get_specification() if f["field"] == "worker_size")


def configuration(settings: dict[str, Any], user: Any, request: dict[str, Any]) -> dict[str, Any]:
    """What the gateway does with a request: parse (validate) against the user's options,
    then transform and run the handler."""
    options = gateway_options.make_cluster_options(settings)(user)
    return options.get_configuration(options.parse_options(request), user)


def test_the_settings_have_ordinary_and_privileged_sizes(settings: dict[str, Any]) -> None:
    assert len(size_names(settings, privileged=False)) == 2
    assert len(size_names(settings, privileged=True)) == 4
    assert settings["privilegedGroups"] == [PRIVILEGED]
    assert settings["defaultImage"] == DEFAULT_CPU_IMAGE


def test_an_unprivileged_user_is_offered_ordinary_sizes(settings: dict[str, Any]) -> None:
    for groups in (set(), {"pangeo-data:maintainers"}, {"gpu-users"}):
        options = gateway_options.make_cluster_options(settings)(GatewayUser("bob", groups))
        spec = worker_size_spec(options)
        ordinary = size_names(settings, privileged=False)
        assert spec["spec"]["options"] == ordinary
        assert spec["default"] == ordinary[0]


@pytest.mark.parametrize(
    "user",
    [GatewayUser("alice", {PRIVILEGED, "other:team"}), GatewayUser("pangeo-admin", admin=True)],
    ids=["privileged", "admin"],
)
def test_privileged_users_and_admins_are_offered_every_size(
    settings: dict[str, Any], user: GatewayUser
) -> None:
    options = gateway_options.make_cluster_options(settings)(user)
    assert worker_size_spec(options)["spec"]["options"] == size_names(settings, privileged=True)
    assert [f["field"] for f in options.get_specification()] == [
        "worker_size",
        "image",
        "environment",
    ]


def test_configuration_of_a_chosen_size_and_image(settings: dict[str, Any]) -> None:
    size = settings["workerSizes"][1]
    config = configuration(
        settings,
        GatewayUser("bob"),
        {"worker_size": size["name"], "image": OWN_IMAGE, "environment": {"FOO": "1"}},
    )
    assert config == {
        "image": OWN_IMAGE,
        "worker_cores": size["cores"],
        "worker_cores_limit": size["coresLimit"],
        "worker_memory": f"{size['memoryMib']}M",
        "worker_memory_limit": f"{size['memoryMib']}M",
        "environment": {
            "SCRATCH_BUCKET": "gs://pangeo-binder-staging-scratch/bob",
            "PERSISTENT_BUCKET": "gs://pangeo-binder-staging-persistent/bob",
            "FOO": "1",
        },
        "idle_timeout": 30 * 60,
        "cluster_max_workers": 50,
        "cluster_max_cores": 200,
        "cluster_max_memory": "1600G",
    }


def test_an_empty_image_means_the_default_image(settings: dict[str, Any]) -> None:
    config = configuration(settings, GatewayUser("bob"), {"image": ""})
    assert config["image"] == DEFAULT_CPU_IMAGE
    # Nothing chosen: the smallest size.
    smallest = settings["workerSizes"][0]
    assert config["worker_memory"] == f"{smallest['memoryMib']}M"
    assert config["worker_cores"] == smallest["cores"]


def test_a_privileged_user_gets_the_largest_size(settings: dict[str, Any]) -> None:
    largest = settings["workerSizes"][-1]
    config = configuration(
        settings, GatewayUser("alice", {PRIVILEGED}), {"worker_size": largest["name"]}
    )
    assert config["worker_memory"] == f"{largest['memoryMib']}M"
    assert config["environment"]["SCRATCH_BUCKET"] == "gs://pangeo-binder-staging-scratch/alice"


def test_an_unprivileged_request_for_a_large_size_is_refused(settings: dict[str, Any]) -> None:
    largest = settings["workerSizes"][-1]["name"]
    # The per-user option list refuses it first...
    with pytest.raises(ValueError, match="is not a valid option for worker_size"):
        configuration(settings, GatewayUser("bob"), {"worker_size": largest})
    # ...and the handler refuses it if the list and the request ever disagree.
    allowed = ", ".join(size_names(settings, privileged=False))
    with pytest.raises(ValueError, match=rf"not available to bob; choose one of: {allowed}$"):
        gateway_options.cluster_config(
            settings, {"worker_size": largest, "image": "", "environment": {}}, GatewayUser("bob")
        )


def test_an_options_object_built_for_a_privileged_user_still_checks_the_user(
    settings: dict[str, Any],
) -> None:
    options = gateway_options.make_cluster_options(settings)(GatewayUser("alice", {PRIVILEGED}))
    largest = settings["workerSizes"][-1]["name"]
    requested = options.parse_options({"worker_size": largest})
    with pytest.raises(ValueError, match="not available to bob"):
        options.get_configuration(requested, GatewayUser("bob"))


# --- through the gateway's own code path ----------------------------------------------------


@pytest.fixture
def kube_cluster_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """The Kubernetes backend's `KubeClusterConfig` (the class the handler's result is given
    to), imported with its kubernetes_asyncio client stubbed: only its traits are used."""
    before = set(sys.modules)
    try:
        import kubernetes_asyncio  # noqa: F401
    except ImportError:
        package = types.ModuleType("kubernetes_asyncio")
        client = types.ModuleType("kubernetes_asyncio.client")
        rest = types.ModuleType("kubernetes_asyncio.client.rest")
        config = types.ModuleType("kubernetes_asyncio.config")
        rest.ApiException = type("ApiException", (Exception,), {})  # type: ignore[attr-defined]
        rest.RESTClientObject = type("RESTClientObject", (), {})  # type: ignore[attr-defined]
        client.rest = rest  # type: ignore[attr-defined]
        package.client, package.config = client, config  # type: ignore[attr-defined]
        for module in (package, client, rest, config):
            monkeypatch.setitem(sys.modules, module.__name__, module)
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig

    yield KubeClusterConfig
    for name in set(sys.modules) - before:
        if name.startswith(("dask_gateway_server.backends.kubernetes", "kubernetes_asyncio")):
            sys.modules.pop(name, None)


def process(backend: Backend, user: User, request: dict[str, Any]) -> Any:
    # A loop of its own: asyncio.run would unset the thread's loop the Pulumi mocks use.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(backend.process_cluster_options(user, request))
    finally:
        loop.close()


def test_the_gateway_builds_a_cluster_config_from_our_options(
    settings: dict[str, Any], kube_cluster_config: type
) -> None:
    backend = Backend(
        cluster_options=gateway_options.make_cluster_options(settings),
        cluster_config_class=kube_cluster_config,
    )
    size = settings["workerSizes"][-1]
    user = User("alice", groups=[PRIVILEGED])
    _, config = process(backend, user, {"worker_size": size["name"], "image": OWN_IMAGE})
    # Every key the handler returns is a trait of the cluster config (a misspelt key would be
    # dropped by traitlets with only a warning).
    overrides = gateway_options.cluster_config(
        settings, {"worker_size": size["name"], "image": "", "environment": {}}, user
    )
    assert set(overrides) <= set(kube_cluster_config.class_trait_names())
    assert config.image == OWN_IMAGE
    assert config.worker_memory == config.worker_memory_limit == size["memoryMib"] * 2**20
    assert config.worker_cores == config.worker_cores_limit == size["cores"]
    assert config.idle_timeout == 1800
    assert config.cluster_max_cores == 200
    assert config.cluster_max_memory == 1600 * 2**30
    # The gateway caps maxWorkers by what the core and memory limits leave after the
    # scheduler: with the largest workers, the 200 cores bind.
    assert config.cluster_max_workers == (200 - config.scheduler_cores) // size["cores"] < 50
    assert config.environment["PERSISTENT_BUCKET"] == "gs://pangeo-binder-staging-persistent/alice"

    # With the smallest workers, maxWorkers binds.
    _, small = process(backend, User("bob"), {})
    assert small.worker_memory == settings["workerSizes"][0]["memoryMib"] * 2**20
    assert small.image == DEFAULT_CPU_IMAGE
    assert small.cluster_max_workers == 50
    assert small.environment["SCRATCH_BUCKET"] == "gs://pangeo-binder-staging-scratch/bob"

    with pytest.raises(PublicException, match="is not a valid option for worker_size"):
        process(backend, User("bob"), {"worker_size": size["name"]})


# --- gateway_options executed as the chart's config file does --------------------------------


def gateway_extra_config(staging: StackConfig) -> dict[str, str]:
    gcp = staging.clouds.gcp
    assert gcp is not None
    return dask_gateway_values(context(), staging.hub, gcp.node_pools)["gateway"]["extraConfig"]


def test_gateway_extra_config_entries_run_settings_first(staging: StackConfig) -> None:
    extra = gateway_extra_config(staging)
    assert sorted(extra) == ["00-settings", "10-options"]  # the chart's sortAlpha order
    assert extra["10-options"] == source("gateway_options")


def test_gateway_options_configure_the_backend_when_appended(
    staging: StackConfig, settings: dict[str, Any]
) -> None:
    extra = gateway_extra_config(staging)
    # The chart appends each entry, in key order, after its own config text.
    text = "import os\nimport json\nimport sys\n\n" + "\n".join(extra[k] for k in sorted(extra))
    c = types.SimpleNamespace(Backend=types.SimpleNamespace())
    namespace: dict[str, Any] = {"c": c}
    exec(compile(text, "dask_gateway_config.py", "exec"), namespace)
    assert namespace["PANGEO_BINDER_DASK"] == settings
    cluster_options = c.Backend.cluster_options
    assert callable(cluster_options)
    bob, alice = GatewayUser("bob"), GatewayUser("alice", {PRIVILEGED})
    assert worker_size_spec(cluster_options(bob))["spec"]["options"] == size_names(
        settings, privileged=False
    )
    assert worker_size_spec(cluster_options(alice))["spec"]["options"] == size_names(
        settings, privileged=True
    )


def test_gateway_options_alone_configure_nothing() -> None:
    """Without the settings entry before it (or without `c`), the module only defines."""
    c = types.SimpleNamespace(Backend=types.SimpleNamespace())
    exec(source("gateway_options"), {"c": c})
    assert not hasattr(c.Backend, "cluster_options")
    assert "c" not in vars(gateway_options)
