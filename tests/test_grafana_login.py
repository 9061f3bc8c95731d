"""Logins through the hub, against the real JupyterHub 5.5.0 running our generated config.

The staging stack's GCP jupyterhub release (the program under the mock engine, with one
Grafana viewer configured) runs locally as in tests/test_spawn_form_browser.py
(tests/local_hub.py: the chart's own jupyterhub_config.py, configurable-http-proxy in front,
GitHub played by tests/fake_github.py). An HTTP client signs in three users: a hub admin, the
Grafana viewer (also in the privileged GitHub team) and a plain member of the organization.

Grafana: each user goes through the OAuth flow Grafana's generic OAuth client makes, with the
client id, scopes, redirect and client secret of the generated values (the hub's `grafana`
service and the support stack's grafana.ini): authorize, then the code for a token at the
hub's token endpoint (form parameters, as `auth_style: InParams` sends them), then the real
/hub/api/user answer for that token. On it, jmespath (Grafana evaluates these paths with
go-jmespath, the same language) evaluates our login, email and role paths; the plain member is
refused. Beside: HTTP Basic client auth, golang/oauth2's first try, is a 401 at this hub, and
a wrong PKCE verifier is accepted (the hub never checks one: `use_pkce` would do nothing).

Dask Gateway and BinderHub: a token with the scopes a notebook's server token gets
(KubeSpawner.server_token_scopes of the values), and one as the spawn form mints it for
BinderHub (POST /hub/api/users/<name>/tokens without scopes, fancy-profiles 0.7.0), checked
by the real JupyterHubAuthenticator of dask-gateway-server 2026.3.0 and the real HubAuth of
jupyterhub.services.auth (what BinderHub's HubOAuth uses) with the services' own tokens.

Needs configurable-http-proxy and jmespath: skipped without them, failed with CI=true.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import HELM, release
from fake_github import GitHubUser, fake_github, kube_api_recorder
from harness import DELETE, ROOT, Run, run_program, skip_or_fail, stack_config, with_value
from local_hub import find_tool, local_hub, prepare_hub
from pangeo_binder.support import values as sv

pytestmark = pytest.mark.browser  # the same real processes as the browser test

LOCAL_TOOLS = ROOT / "tests" / "browser-tools" / "node_modules" / ".bin"  # npm ci there
ORG = "pangeo-data"
ADMIN = GitHubUser("pangeo-admin", 2001, orgs=(ORG,))  # adminUsers of Pulumi.staging.yaml
VIEWER = GitHubUser("vera-viewer", 2002, orgs=(ORG,), teams=((ORG, "gpu-users"),))
MEMBER = GitHubUser("nora-member", 2003, orgs=(ORG,), teams=((ORG, "maintainers"),))
USERS = (ADMIN, VIEWER, MEMBER)


@pytest.fixture(scope="module")
def jmespath() -> Any:
    try:
        import jmespath
    except ImportError:
        skip_or_fail("tests/test_grafana_login.py needs jmespath (requirements-dev.txt): make venv")
    return jmespath


@pytest.fixture(scope="module")
def chp() -> str:
    found = find_tool("configurable-http-proxy", LOCAL_TOOLS)
    if found is None:
        skip_or_fail(
            "tests/test_grafana_login.py needs configurable-http-proxy: npm ci --prefix "
            "tests/browser-tools (the proxy locked in tests/browser-tools/package-lock.json)"
        )
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> Run:
    """Staging with one Grafana viewer; GCP only (the AWS hub's values are the same here)."""
    config = with_value(stack_config("staging"), "monitoring.grafana.viewers", [VIEWER.login])
    return run_program("staging", with_value(config, "clouds.aws", DELETE))


@pytest.fixture(scope="module")
def hub_values(run: Run) -> dict[str, Any]:
    return release(run, "gcp", "jupyterhub")["values"]


@pytest.fixture(scope="module")
def grafana_ini(run: Run) -> dict[str, Any]:
    return run.one(HELM, "gcp-support-grafana").inputs["values"]["grafana.ini"]


@dataclass
class Hub:
    public_url: str  # the proxy, as the browser reaches the hub
    hub_url: str  # the hub's own port, as Grafana and the gateway reach it in the cluster
    github_url: str


@pytest.fixture(scope="module")
def hub(
    chp: str, hub_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    pod, ports, app = prepare_hub(hub_values, workdir)
    with (
        fake_github(app, list(USERS)) as github,
        kube_api_recorder() as (kube_url, kube_requests),
        local_hub(
            pod, ports, chp=chp, github_url=github.url, kube_url=kube_url, workdir=workdir
        ) as url,
    ):
        yield Hub(url, f"http://127.0.0.1:{ports.hub}", github.url)
        assert kube_requests == [], kube_requests


@pytest.fixture(scope="module")
def sessions(hub: Hub) -> dict[str, Any]:
    """A signed-in HTTP session per user (the hub's cookies), through the fake GitHub."""
    return {user.login: sign_in(hub, user) for user in USERS}


def sign_in(hub: Hub, user: GitHubUser) -> Any:
    import requests

    session = requests.Session()
    # The hub's login handler sends the browser to (fake) GitHub with its state.
    page = session.get(f"{hub.public_url}/hub/oauth_login", timeout=10)
    assert page.status_code == 200 and f"login-as-{user.login}" in page.text, page.url
    state = parse_qs(urlsplit(page.url).query)["state"][0]
    back = session.get(
        f"{hub.github_url}/session",
        params={"login": user.login, "state": state},
        allow_redirects=False,
        timeout=10,
    )
    callback = session.get(back.headers["Location"], allow_redirects=False, timeout=10)
    assert callback.status_code == 302, callback.text
    assert session.get(f"{hub.public_url}/hub/api/user", timeout=10).json()["name"] == user.login
    return session


# --- Grafana ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """Grafana's OAuth client as the generated values make it."""

    client_id: str
    secret: str
    redirect_uri: str
    scopes: str
    authorize_path: str
    token_path: str
    user_path: str


@pytest.fixture(scope="module")
def grafana(run: Run, hub_values: dict[str, Any], grafana_ini: dict[str, Any]) -> Client:
    oauth = grafana_ini["auth.generic_oauth"]
    service = hub_values["hub"]["services"][sv.GRAFANA_SERVICE]
    assert oauth["client_id"] == service["oauth_client_id"]
    # Grafana's client secret is the Secret the support stack makes: the hub's service token.
    secret = run.one("kubernetes:core/v1:Secret", "gcp-support-grafana-oauth-secret")
    data = secret.inputs.get("stringData") or {
        k: base64.b64decode(v).decode() for k, v in secret.inputs["data"].items()
    }
    assert data["client-secret"] == service["api_token"]
    root = grafana_ini["server"]["root_url"]
    assert service["oauth_redirect_uri"] == f"{root}login/generic_oauth"
    return Client(
        client_id=oauth["client_id"],
        secret=data["client-secret"],
        redirect_uri=service["oauth_redirect_uri"],
        scopes=oauth["scopes"],
        authorize_path=urlsplit(oauth["auth_url"]).path,
        token_path=urlsplit(oauth["token_url"]).path,
        user_path=urlsplit(oauth["api_url"]).path,
    )


def authorize(
    hub: Hub, session: Any, client: Client, challenge: str | None = None
) -> tuple[int, str | None]:
    """Grafana's redirect to the hub's authorize endpoint, in the user's browser: the HTTP
    status and, when the hub sends the user back to Grafana, the code."""
    state = secrets.token_urlsafe(8)
    params = {
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "response_type": "code",
        "state": state,
    }
    if client.scopes:  # golang/oauth2 sends no scope parameter for none
        params["scope"] = client.scopes
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    answer = session.get(
        f"{hub.public_url}{client.authorize_path}", params=params, allow_redirects=False, timeout=10
    )
    if answer.status_code != 302:
        return answer.status_code, None
    target = urlsplit(answer.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == client.redirect_uri
    query = parse_qs(target.query)
    assert query["state"] == [state] and "code" in query, query
    return 302, query["code"][0]


def token_request(hub: Hub, client: Client, code: str, **extra: Any) -> Any:
    import requests

    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        **extra.pop("form", {}),
    }
    return requests.post(f"{hub.hub_url}{client.token_path}", data=form, timeout=10, **extra)


def in_params(client: Client) -> dict[str, Any]:
    return {"form": {"client_id": client.client_id, "client_secret": client.secret}}


def grafana_user(hub: Hub, session: Any, client: Client) -> dict[str, Any]:
    """The /hub/api/user answer Grafana reads with the token it got for this user."""
    import requests

    status, code = authorize(hub, session, client)
    assert status == 302 and code, status
    token = token_request(hub, client, code, **in_params(client))
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    answer = requests.get(
        f"{hub.hub_url}{client.user_path}",
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def grafana_role(jmespath: Any, path: str, model: dict[str, Any]) -> str | None:
    """The role Grafana would give, None for a refusal: with role_attribute_strict an empty
    role or a path that fails to evaluate ends the login (generic_oauth.go UserInfo)."""
    try:
        role = jmespath.search(path, model)
    except jmespath.exceptions.JMESPathError:
        return None
    return role or None


@pytest.mark.parametrize(("user", "role"), [(ADMIN, "Admin"), (VIEWER, "Viewer")])
def test_grafana_logs_in_hub_admins_and_viewers_with_a_login_an_email_and_their_role(
    jmespath: Any,
    hub: Hub,
    sessions: dict[str, Any],
    grafana: Client,
    grafana_ini: dict[str, Any],
    user: GitHubUser,
    role: str,
) -> None:
    oauth = grafana_ini["auth.generic_oauth"]
    model = grafana_user(hub, sessions[user.login], grafana)
    # The hub has no email: without email_attribute_path Grafana would ask <api_url>/emails.
    assert "email" not in model
    assert jmespath.search(oauth["login_attribute_path"], model) == user.login
    assert jmespath.search(oauth["name_attribute_path"], model) == user.login
    domain = grafana_ini["server"]["domain"]
    assert jmespath.search(oauth["email_attribute_path"], model) == f"{user.login}@{domain}"
    assert oauth["role_attribute_strict"] is True
    assert grafana_role(jmespath, oauth["role_attribute_path"], model) == role


def test_a_plain_member_gets_no_grafana_token_and_no_grafana_role(
    jmespath: Any, hub: Hub, sessions: dict[str, Any], grafana: Client, grafana_ini: dict[str, Any]
) -> None:
    session = sessions[MEMBER.login]
    status, code = authorize(hub, session, grafana)
    assert (status, code) == (403, None), "the hub refuses Grafana to a plain member"
    # Second lock: their own model (all any token of theirs may read) gives no role.
    model = session.get(f"{hub.public_url}/hub/api/user", timeout=10).json()
    path = grafana_ini["auth.generic_oauth"]["role_attribute_path"]
    assert grafana_role(jmespath, path, model) is None


def test_without_the_roles_scope_the_viewer_would_be_refused(
    jmespath: Any, hub: Hub, sessions: dict[str, Any], grafana: Client, grafana_ini: dict[str, Any]
) -> None:
    """Why the client asks for read:roles:users!user: a token without it (asking for the name
    only; no scope at all gets the client's allowed ones) shows no roles, and the strict role
    path refuses the viewer."""
    without = Client(**{**grafana.__dict__, "scopes": "read:users:name!user"})
    model = grafana_user(hub, sessions[VIEWER.login], without)
    assert "roles" not in model
    path = grafana_ini["auth.generic_oauth"]["role_attribute_path"]
    assert grafana_role(jmespath, path, model) is None


def test_the_token_endpoint_takes_the_secret_in_the_form_not_http_basic(
    hub: Hub, sessions: dict[str, Any], grafana: Client, grafana_ini: dict[str, Any]
) -> None:
    assert grafana_ini["auth.generic_oauth"]["auth_style"] == "InParams"
    session = sessions[ADMIN.login]
    _, code = authorize(hub, session, grafana)
    assert code
    basic = token_request(hub, grafana, code, auth=(grafana.client_id, grafana.secret))
    assert basic.status_code == 401, basic.text
    _, code = authorize(hub, session, grafana)
    assert code
    assert token_request(hub, grafana, code, **in_params(grafana)).status_code == 200


def test_the_hub_never_checks_a_pkce_verifier(
    hub: Hub, sessions: dict[str, Any], grafana: Client, grafana_ini: dict[str, Any]
) -> None:
    """Why use_pkce is not set: a wrong verifier for the challenge still gets a token."""
    assert "use_pkce" not in grafana_ini["auth.generic_oauth"]
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    _, code = authorize(hub, sessions[ADMIN.login], grafana, challenge=challenge)
    assert code
    wrong = in_params(grafana)
    wrong["form"]["code_verifier"] = secrets.token_urlsafe(48)
    assert token_request(hub, grafana, code, **wrong).status_code == 200


# --- Dask Gateway and BinderHub ---------------------------------------------------------------


def xsrf_post(hub: Hub, session: Any, path: str, body: dict[str, Any]) -> Any:
    """A POST from a hub page's script (the session's _xsrf cookie, as fancy-profiles sends)."""
    session.get(f"{hub.public_url}/hub/token", timeout=10)  # any hub page sets _xsrf
    xsrf = session.cookies.get("_xsrf")
    assert xsrf, "the hub set no _xsrf cookie"
    return session.post(f"{hub.public_url}{path}", params={"_xsrf": xsrf}, json=body, timeout=10)


def server_token(hub: Hub, session: Any, login: str, hub_values: dict[str, Any]) -> str:
    """A token with the scopes the user's notebook server gets (KubeSpawner's
    server_token_scopes, `!server` resolved to the default server as User.spawn does)."""
    requested = hub_values["hub"]["config"]["KubeSpawner"]["server_token_scopes"]
    scopes = [f"{s}={login}/" if s.endswith("!server") else s for s in requested]
    answer = xsrf_post(hub, session, f"/hub/api/users/{login}/tokens", {"scopes": scopes})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@dataclass
class FakeRequest:
    headers: dict[str, str]


def in_thread(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: this thread's loop belongs to the Pulumi mocks."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine()).result(timeout=30)


@pytest.mark.parametrize("user", USERS, ids=[u.login for u in USERS])
def test_dask_gateway_knows_each_user_by_their_notebook_token(
    run: Run, hub: Hub, sessions: dict[str, Any], hub_values: dict[str, Any], user: GitHubUser
) -> None:
    """The gateway's real JupyterHubAuthenticator reads name, kind, scopes (its service
    access), groups (bigger workers for privileged teams) and admin from /hub/api/user."""
    from dask_gateway_server.auth import JupyterHubAuthenticator

    gateway = run.one(HELM, "gcp-hub-dask-gateway").inputs["values"]["gateway"]["auth"]
    service = gateway["jupyterhub"]["jupyterhubServiceName"]
    assert urlsplit(gateway["jupyterhub"]["apiUrl"]).path == "/hub/api"
    token = server_token(hub, sessions[user.login], user.login, hub_values)
    auth = JupyterHubAuthenticator(
        jupyterhub_api_url=f"{hub.hub_url}/hub/api",
        jupyterhub_api_token=hub_values["hub"]["services"][service]["apiToken"],
        jupyterhub_service_name=service,
    )
    assert auth.use_service_access_scopes

    async def check() -> Any:
        await auth.setup(None)
        try:
            return await auth.authenticate(FakeRequest({"Authorization": f"jupyterhub {token}"}))
        finally:
            await auth.cleanup()

    found = in_thread(check)
    assert found.name == user.login
    assert set(found.groups) == {f"{org}:{team}" for org, team in user.teams}
    assert found.admin is (user is ADMIN)


@pytest.mark.parametrize("user", USERS, ids=[u.login for u in USERS])
def test_binderhub_accepts_the_token_the_spawn_form_mints(
    run: Run, hub: Hub, sessions: dict[str, Any], hub_values: dict[str, Any], user: GitHubUser
) -> None:
    """The form's token (no scopes asked) passes BinderHub's HubOAuth check: its name and the
    `binder` service's access scope, read with BinderHub's own service token."""
    from jupyterhub.services.auth import HubAuth

    binder = release(run, "gcp", "binderhub-service")["values"]
    hub_oauth = binder["config"]["HubOAuth"]
    assert urlsplit(hub_oauth["api_url"]).path == "/hub/api/"
    name = hub_oauth["oauth_client_id"].removeprefix("service-")
    answer = xsrf_post(
        hub,
        sessions[user.login],
        f"/hub/api/users/{user.login}/tokens",
        {"expires_in": 3600, "note": "Created by Fancy Profiles for Build your Own Image"},
    )
    assert answer.status_code == 201, answer.text
    auth = HubAuth(
        api_url=f"{hub.hub_url}/hub/api/",
        api_token=hub_values["hub"]["services"][name]["apiToken"],
        access_scopes=set(hub_oauth["access_scopes"]),
    )
    model = auth.user_for_token(answer.json()["token"], sync=True)
    assert model is not None and model["name"] == user.login
    assert auth.check_scopes(auth.access_scopes, model), model["scopes"]
