"""A local stand-in for GitHub's OAuth and REST endpoints, as OAuthenticator 17.4's
GitHubOAuthenticator calls them, and a recorder standing in for the Kubernetes API.

GitHubOAuthenticator derives every URL from its `github_url` trait: with
`github_url = http://127.0.0.1:PORT` it sends the browser to `/login/oauth/authorize`, posts the
code to `/login/oauth/access_token`, and calls the REST API under `/api/v3` (GitHub Enterprise's
layout): `/user`, `/user/teams?per_page=100` (populate_teams_in_auth_state) and
`/orgs/{org}/members/{user}` (allowed_organizations: 204 for a member, 404 otherwise).

The authorize page plays GitHub's: a user with this fake's session cookie who already
authorized the app is sent straight back; anyone else picks one of the known users first.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

SESSION_COOKIE = "fake-github-user"  # distinct from the hub's cookies, which share 127.0.0.1


@dataclass(frozen=True)
class GitHubUser:
    login: str
    id: int
    orgs: tuple[str, ...]
    teams: tuple[tuple[str, str], ...] = ()  # (org, team slug)


@dataclass
class GitHubApp:
    """The OAuth app GitHub knows: its credentials and where it may send users back to."""

    client_id: str
    client_secret: str
    callback_url: str


@dataclass
class FakeGitHub:
    app: GitHubApp
    users: dict[str, GitHubUser]
    url: str = ""
    requests: list[str] = field(default_factory=list)
    _codes: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, login: str) -> str:
        code = secrets.token_hex(8)
        with self._lock:
            self._codes[code] = login
        return code

    def redeem(self, code: str) -> str | None:
        """A code is good once, as GitHub's are; the token names its user."""
        with self._lock:
            login = self._codes.pop(code, None)
            if login is None:
                return None
            token = f"gho_{secrets.token_hex(12)}"
            self._tokens[token] = login
            return token

    def user_for(self, authorization: str | None) -> GitHubUser | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        login = self._tokens.get(token)
        return self.users.get(login) if login else None


def team_object(org: str, slug: str) -> dict[str, Any]:
    """The fields of a GET /user/teams item that the hub reads (slug, organization.login)."""
    return {
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "privacy": "closed",
        "permission": "pull",
        "html_url": f"https://github.com/orgs/{org}/teams/{slug}",
        "organization": {"login": org},
    }


def _handler(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `github.requests` instead."""

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _html(self, html: str) -> None:
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _back_to_app(self, login: str, query: dict[str, list[str]]) -> None:
            state = query.get("state", [""])[0]
            target = f"{github.app.callback_url}?{urlencode({'code': github.issue_code(login), 'state': state})}"
            cookie = f"{SESSION_COOKIE}={login}; Path=/; HttpOnly; SameSite=Lax"
            self._send(302, headers={"Location": target, "Set-Cookie": cookie})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            github.requests.append(f"GET {parts.path}")
            if parts.path == "/login/oauth/authorize":
                self._authorize(query)
            elif parts.path == "/session":  # the sign-in page's choice of user
                login = query.get("login", [""])[0]
                if login not in github.users:
                    return self._send(404, {"message": "Not Found"})
                self._back_to_app(login, query)
            elif parts.path.startswith("/api/v3/"):
                self._api(parts.path.removeprefix("/api/v3"))
            else:
                self._send(404, {"message": "Not Found"})

        def _authorize(self, query: dict[str, list[str]]) -> None:
            client_id = query.get("client_id", [""])[0]
            redirect_uri = query.get("redirect_uri", [""])[0]
            if client_id != github.app.client_id or redirect_uri != github.app.callback_url:
                return self._send(400, {"error": "redirect_uri_mismatch or unknown client_id"})
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            session = cookie.get(SESSION_COOKIE)
            if session and session.value in github.users:
                return self._back_to_app(session.value, query)
            state = query.get("state", [""])[0]
            buttons = "".join(
                f'<p><a class="login-as" id="login-as-{escape(login)}" '
                f'href="/session?{escape(urlencode({"login": login, "state": state}))}">'
                f"Sign in as {escape(login)}</a></p>"
                for login in github.users
            )
            self._html(f"<html><body><h1>Fake GitHub: sign in</h1>{buttons}</body></html>")

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            github.requests.append(f"POST {parts.path}")
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if parts.path != "/login/oauth/access_token":
                return self._send(404, {"message": "Not Found"})
            # OAuthenticator sends the client credentials as HTTP basic auth or in the body.
            sent_id = form.get("client_id", [github.app.client_id])[0]
            sent_secret = form.get("client_secret", [None])[0]
            if sent_secret is None:
                scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() == "basic":
                    sent_id, _, sent_secret = base64.b64decode(encoded).decode().partition(":")
            if (sent_id, sent_secret) != (github.app.client_id, github.app.client_secret):
                return self._send(200, {"error": "incorrect_client_credentials"})
            token = github.redeem(form.get("code", [""])[0])
            if token is None:
                return self._send(200, {"error": "bad_verification_code"})
            self._send(200, {"access_token": token, "token_type": "bearer", "scope": "read:org"})

        def _api(self, path: str) -> None:
            user = github.user_for(self.headers.get("Authorization"))
            if user is None:
                return self._send(401, {"message": "Bad credentials"})
            if path == "/user":
                return self._send(200, {"login": user.login, "id": user.id, "email": None})
            if path == "/user/teams":
                return self._send(200, [team_object(org, slug) for org, slug in user.teams])
            segments = path.strip("/").split("/")
            if len(segments) == 4 and segments[0] == "orgs" and segments[2] == "members":
                org, login = segments[1], segments[3]
                member = login == user.login and org in user.orgs
                return self._send(204) if member else self._send(404, {"message": "Not Found"})
            self._send(404, {"message": "Not Found"})

    return Handler


class KubeApiRecorder(BaseHTTPRequestHandler):
    """Answers every request 403, and records it: the test hub must send none."""

    seen: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `seen`."""

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        data = json.dumps({"kind": "Status", "status": "Failure", "code": 403}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free port of 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def fake_github(app: GitHubApp, users: list[GitHubUser]) -> Iterator[FakeGitHub]:
    github = FakeGitHub(app=app, users={user.login: user for user in users})
    with serve(_handler(github)) as url:
        github.url = url
        yield github


@contextmanager
def kube_api_recorder() -> Iterator[tuple[str, list[str]]]:
    """A Kubernetes API server that refuses everything; yields its URL and what it saw."""
    seen: list[str] = []
    handler = type("Recorder", (KubeApiRecorder,), {"seen": seen})
    with serve(handler) as url:
        yield url, seen
