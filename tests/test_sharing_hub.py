"""Sharing a server on the real hub, with the generated roles: JupyterHub 5.5.0 running the
staging GCP jupyterhub release through the chart's own jupyterhub_config.py
(tests/local_hub.py), behind configurable-http-proxy, with tests/fake_github.py. No browser:
users sign in through the OAuth redirects with an HTTP session, then use the REST API.

Alice (an org member, team maintainers) creates her default server (the offline spawner
records it and starts nothing) and a share code with her own API token; Bob (team
climate-team) accepts it on /hub/accept-share, after which the hub grants him access to
Alice's server. With `hub.sharing: false` the same share-code request is refused.

Needs configurable-http-proxy: skipped without it, failed with CI=true (.ci/run installs it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from conftest import release
from fake_github import GitHubUser, fake_github, kube_api_recorder
from harness import ROOT, run_program, skip_or_fail, stack_config, with_value
from local_hub import find_tool, local_hub, prepare_hub

pytestmark = pytest.mark.browser

LOCAL_TOOLS = ROOT / "tests" / "browser-tools" / "node_modules" / ".bin"
ORG = "pangeo-data"  # allowedOrganizations of Pulumi.staging.yaml
ALICE = GitHubUser("alice-owner", 2001, orgs=(ORG,), teams=((ORG, "maintainers"),))
BOB = GitHubUser("bob-guest", 2002, orgs=(ORG,), teams=((ORG, "climate-team"),))
TIMEOUT = 10  # seconds: the longest any one request may take


def proxy_tool() -> str:
    chp = find_tool("configurable-http-proxy", LOCAL_TOOLS)
    if chp is None:
        message = (
            "the sharing test needs configurable-http-proxy: npm ci --prefix tests/browser-tools "
            "(locked in tests/browser-tools/package-lock.json), as .ci/run does"
        )
        skip_or_fail(message)
    return chp


@dataclass
class Hub:
    url: str
    workdir: Path

    def log(self) -> str:
        return (self.workdir / "hub.log").read_text(errors="replace")


@contextmanager
def running_hub(values: dict[str, Any], workdir: Path) -> Iterator[Hub]:
    """The rendered hub pod of `values` as local processes, with Alice and Bob on the fake
    GitHub; no Kubernetes API request may happen."""
    chp = proxy_tool()
    pod, ports, app = prepare_hub(values, workdir)
    with (
        fake_github(app, [ALICE, BOB]) as github,
        kube_api_recorder() as (kube_url, kube_requests),
        local_hub(
            pod, ports, chp=chp, github_url=github.url, kube_url=kube_url, workdir=workdir
        ) as url,
    ):
        yield Hub(url, workdir)
        assert kube_requests == [], kube_requests


def sign_in(hub: Hub, user: GitHubUser) -> requests.Session:
    """GitHub login through the redirects a browser follows: the hub's oauth_login, the fake
    GitHub's sign-in page (pick `user`), the callback, then the spawn form (the default
    landing page of a user with no server)."""
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/oauth_login", timeout=TIMEOUT)
    assert page.status_code == 200 and "Fake GitHub: sign in" in page.text, page.url
    link = re.search(rf'id="login-as-{user.login}" href="([^"]+)"', page.text)
    assert link, page.text
    github = urlsplit(page.url)
    home = session.get(
        f"{github.scheme}://{github.netloc}{link.group(1).replace('&amp;', '&')}", timeout=TIMEOUT
    )
    assert home.status_code == 200 and urlsplit(home.url).path == "/hub/spawn", hub.log()[-3000:]
    return session


def xsrf(session: requests.Session) -> str:
    """The hub's _xsrf cookie (set on its pages), which cookie-authenticated posts echo."""
    value = session.cookies.get("_xsrf")
    assert value, session.cookies
    return value


def api_token(hub: Hub, session: requests.Session, user: GitHubUser) -> str:
    """A token of the user's own, made from their browser session (as the hub's token page)."""
    made = session.post(
        f"{hub.url}/hub/api/users/{user.login}/tokens",
        json={"note": "sharing test", "expires_in": 600},
        headers={"X-XSRFToken": xsrf(session)},
        timeout=TIMEOUT,
    )
    assert made.status_code == 201, made.text
    return made.json()["token"]


def call(hub: Hub, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=TIMEOUT,
        **kwargs,
    )


def alices_server(hub: Hub) -> tuple[requests.Session, str]:
    """Alice signs in, takes a token and starts her default server: the offline spawner
    records it and starts nothing (tests/offline_spawner.py)."""
    session = sign_in(hub, ALICE)
    token = api_token(hub, session, ALICE)
    call(hub, "POST", f"/users/{ALICE.login}/server", token, json={})
    model = call(hub, "GET", f"/users/{ALICE.login}?include_stopped_servers=1", token)
    assert model.status_code == 200 and "" in model.json()["servers"], model.text
    return session, token


def test_a_share_code_gives_bob_access_to_alices_server(tmp_path: Path) -> None:
    values = release(run_program("staging"), "gcp", "jupyterhub")["values"]
    with running_hub(values, tmp_path) as hub:
        _, alice = alices_server(hub)
        made = call(hub, "POST", f"/share-codes/{ALICE.login}/", alice, json={"expires_in": 3600})
        assert made.status_code == 200, made.text
        code = made.json()
        # public_url makes the full link (here the local proxy; on the cluster https://<domain>).
        assert code["full_accept_url"] == f"{hub.url}{code['accept_url']}"
        assert code["scopes"] == [f"access:servers!server={ALICE.login}/"]

        bob_session = sign_in(hub, BOB)
        bob = api_token(hub, bob_session, BOB)
        before = call(hub, "GET", "/user", bob).json()
        assert f"access:servers!server={ALICE.login}/" not in before["scopes"]
        # Bob's groups are his GitHub team, not Alice's.
        assert before["groups"] == [f"{ORG}:climate-team"]

        page = bob_session.get(code["full_accept_url"], timeout=TIMEOUT)
        assert page.status_code == 200 and ALICE.login in page.text, page.text[:2000]
        accepted = bob_session.post(
            f"{hub.url}/hub/accept-share",
            data={"code": code["code"], "_xsrf": xsrf(bob_session)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert accepted.status_code == 302, accepted.text[:2000]
        assert accepted.headers["Location"].endswith(f"/user/{ALICE.login}/")

        after = call(hub, "GET", "/user", bob).json()
        assert f"access:servers!server={ALICE.login}/" in after["scopes"]
        shared = call(hub, "GET", f"/users/{BOB.login}/shared", bob).json()["items"]
        assert [item["server"]["user"]["name"] for item in shared] == [ALICE.login]

        # Alice may share with Bob's group by name; Bob, a guest, may not share her server.
        by_group = call(
            hub, "POST", f"/shares/{ALICE.login}/", alice, json={"group": f"{ORG}:climate-team"}
        )
        assert by_group.status_code == 200, by_group.text
        # JupyterHub answers 404, not 403, where the caller holds no scope on the owner at all.
        refused = call(hub, "POST", f"/share-codes/{ALICE.login}/", bob, json={})
        assert refused.status_code == 404, refused.text


def test_with_sharing_off_the_same_share_code_request_is_refused(tmp_path: Path) -> None:
    config = with_value(stack_config("staging"), "hub.sharing", False)
    values = release(run_program("staging", config), "gcp", "jupyterhub")["values"]
    with running_hub(values, tmp_path) as hub:
        _, alice = alices_server(hub)
        refused = call(hub, "POST", f"/share-codes/{ALICE.login}/", alice, json={})
        assert refused.status_code == 403, refused.text
        by_name = call(hub, "POST", f"/shares/{ALICE.login}/", alice, json={"user": BOB.login})
        assert by_name.status_code == 403, by_name.text
