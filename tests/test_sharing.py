"""Sharing servers and pushing to GitHub, on the generated jupyterhub values of both stacks.

Every scope the values name is checked against JupyterHub 5.5.0's own table
(`jupyterhub.scopes.scope_definitions`, with the filters its `_check_scopes_exist` accepts), so
a misspelt scope fails here instead of at the hub's start. The login's token stays on the hub:
no scope beyond read:org, and nothing copies auth_state into a server's environment.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyterhub.scopes import ScopeNotFound, _check_scopes_exist, scope_definitions

from conftest import release
from harness import Run, run_program, stack_config, with_value
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.sharing import PUSH_APP_VARIABLES, SERVER_CLIENT_SCOPES, SHARER_SCOPES


def values_of(run: Run, cloud: str) -> dict[str, Any]:
    return release(run, cloud, "jupyterhub")["values"]


def scopes_in(values: dict[str, Any]) -> dict[str, list[str]]:
    """Every list of scopes the values hand JupyterHub, by where it is."""
    hub = values["hub"]
    found = {
        f"loadRoles.{name}": list(role.get("scopes", [])) for name, role in hub["loadRoles"].items()
    }
    found["KubeSpawner.server_token_scopes"] = hub["config"]["KubeSpawner"]["server_token_scopes"]
    spawner = hub["config"].get("Spawner", {})
    if "oauth_client_allowed_scopes" in spawner:
        found["Spawner.oauth_client_allowed_scopes"] = spawner["oauth_client_allowed_scopes"]
    for name, service in hub["services"].items():
        for key in ("oauth_client_allowed_scopes", "oauth_roles"):
            if key in service:
                found[f"services.{name}.{key}"] = service[key]
    return found


def unknown_scopes(scopes: list[str]) -> list[str]:
    """The scopes JupyterHub 5.5.0 would refuse (name or filter), each named."""
    refused = []
    for scope in scopes:
        if scope == "self" or scope == "inherit":  # roles' and tokens' shorthands
            continue
        try:
            _check_scopes_exist([scope])
        except ScopeNotFound:
            refused.append(scope)
    return refused


def test_the_scope_check_names_what_jupyterhub_does_not_know() -> None:
    """The check itself: a misspelt name, a plural filter and an unknown filter are refused;
    the filters JupyterHub 5.5.0 documents pass."""
    assert unknown_scopes(["share!user", "shares!users", "read:users:name!org=x"]) == [
        "share!user",
        "shares!users",
        "read:users:name!org=x",
    ]
    assert (
        unknown_scopes(
            [
                "shares!user",
                "shares!server",
                "access:services!service=binder",
                "read:shares!group=g",
            ]
        )
        == []
    )
    assert "shares" in scope_definitions and "read:groups:name" in scope_definitions


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_every_scope_in_the_values_exists_in_jupyterhub_5_5(
    stack: str, cloud: str, staging: Run, prod: Run
) -> None:
    found = scopes_in(values_of(staging if stack == "staging" else prod, cloud))
    assert "Spawner.oauth_client_allowed_scopes" in found  # sharing is on in both stacks
    refused = {where: bad for where, scopes in found.items() if (bad := unknown_scopes(scopes))}
    assert refused == {}


def test_users_may_share_their_own_servers_and_servers_may_offer_the_share_dialog(
    staging: Run,
) -> None:
    values = values_of(staging, "gcp")
    config = values["hub"]["config"]
    user_scopes = values["hub"]["loadRoles"]["user"]["scopes"]
    assert set(SHARER_SCOPES) <= set(user_scopes)
    # Sharing is the owner's: `shares` only with the !user filter, never hub-wide.
    assert [s for s in user_scopes if s.startswith("shares")] == ["shares!user"]
    assert config["Spawner"]["oauth_client_allowed_scopes"] == [
        "shares!server",
        "read:users:name",
        "read:groups:name",
    ]
    token = config["KubeSpawner"]["server_token_scopes"]
    assert set(SERVER_CLIENT_SCOPES) <= set(token)
    # Names only: no other field of other users or groups, and no user's servers.
    everything = json.dumps(scopes_in(values))
    for broad in ('"read:users"', '"read:groups"', '"shares"', '"read:shares"', '"admin:'):
        assert broad not in everything
    assert config["JupyterHub"]["public_url"] == "https://gcp.staging.pangeo-binder.example.org"


def test_sharing_false_leaves_no_sharing_scope_anywhere() -> None:
    config = with_value(stack_config("staging"), "hub.sharing", False)
    run = run_program("staging", config)
    for cloud in ("gcp", "aws"):
        values = values_of(run, cloud)
        everything = json.dumps(scopes_in(values))
        assert "shares" not in everything
        assert '"read:users:name"' not in everything and "read:groups:name" not in everything
        assert "Spawner" not in values["hub"]["config"]
        assert values["hub"]["loadRoles"]["user"]["scopes"][0] == "self"


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_every_server_gets_the_push_apps_client_id_and_page(
    stack: str, cloud: str, staging: Run, prod: Run
) -> None:
    run = staging if stack == "staging" else prod
    push_app = stack_config(stack)["clouds"][cloud]["hub"]["github"]["pushApp"]
    env = values_of(run, cloud)["singleuser"]["extraEnv"]
    assert {k: env[k] for k in PUSH_APP_VARIABLES} == {
        "GH_SCOPED_CREDS_CLIENT_ID": push_app["clientId"],
        "GH_SCOPED_CREDS_APP_URL": push_app["url"],
    }
    assert push_app["clientId"].startswith("Iv")  # a GitHub App, not the login's OAuth app


def test_without_a_push_app_no_push_variables() -> None:
    config = with_value(stack_config("prod"), "clouds.aws.hub.github.pushApp", None)
    run = run_program("prod", config)
    assert set(PUSH_APP_VARIABLES) <= set(values_of(run, "gcp")["singleuser"]["extraEnv"])
    assert not set(PUSH_APP_VARIABLES) & set(values_of(run, "aws")["singleuser"]["extraEnv"])


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_login_token_asks_read_org_only_and_never_reaches_a_server(
    stack: str, cloud: str, staging: Run, prod: Run
) -> None:
    values = values_of(staging if stack == "staging" else prod, cloud)
    hub = values["hub"]
    github = hub["config"]["GitHubOAuthenticator"]
    assert github["scope"] == ["read:org"]
    assert not [s for s in json.dumps(github).split('"') if s.startswith("repo")]
    # auth_state (the GitHub token) is kept encrypted on the hub for the team check; no hook
    # copies it into a server: not in hub.config, nor in any extraConfig code.
    for section in hub["config"].values():
        assert "auth_state_hook" not in section
    code = "\n".join(hub["extraConfig"].values())
    for name in ("fancy_profiles", "hub_access"):
        assert source(name) in code
    assert "auth_state_hook" not in code and "access_token" not in code
    assert ".environment" not in code and "pre_spawn_hook" not in code
    # auth_state is read once: its teams become the user's groups (hub_access.team_groups).
    assert [line.strip() for line in code.splitlines() if "auth_state" in line and "=" in line] == [
        'teams = (auth_state or {}).get("teams") or []',
        "c.GitHubOAuthenticator.auth_state_groups_key = team_groups",
    ]
    # Nor does a server's environment hold anything token-like from the hub.
    env = values["singleuser"]["extraEnv"]
    assert not [k for k in env if "TOKEN" in k or k.startswith("GITHUB")]
    assert not [v for v in env.values() if "gho_" in v or "auth_state" in v]
