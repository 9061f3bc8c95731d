"""BinderHub's push credentials (`pangeo_binder/hub/incluster/binder_registry.py`) against fakes.

A real HTTP server on 127.0.0.1 stands in for GKE's metadata server, STS and ECR: the tests
check what the code asks (URL, headers, form, signature) and what it hands BinderHub, and that
every failure raises with its reason instead of returning partial credentials. The signer is
checked against AWS's published Signature Version 4 test vectors. BinderHub itself is not
installed: the wiring test runs the chart's own binderhub_config.py with a stand-in for
`binderhub.registry` that has the names and traits the real module has (jupyterhub/binderhub
main at b9fad99: DockerRegistry.url, GoogleArtifactRegistry.token_url, async
get_credentials(image, tag)).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import sys
import threading
import types
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets import Unicode
from traitlets.config import LoggingConfigurable
from traitlets.config.loader import PyFileConfigLoader

from chart_render import find, render
from pangeo_binder.charts import BINDERHUB_SERVICE, chart_dir
from pangeo_binder.hub.incluster import binder_registry as br
from pangeo_binder.hub.incluster import source

ROLE_ARN = "arn:aws:iam::123456789012:role/pangeo-binder-staging-builder"
ECR_HOST = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
ECR_PASSWORD = "eyJwYXlsb2FkIjoiZmFrZSJ9"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    """Answers by X-Amz-Target, else the form's Action, else the path: (status, body).
    Header names are kept lower case (HTTP header names are case-insensitive)."""

    url: str = ""
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def route(self, seen: Seen) -> str:
        target = seen.headers.get("x-amz-target")
        if target:
            return target
        action = urllib.parse.parse_qs(seen.body.decode()).get("Action")
        return action[0] if action else seen.path


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = Seen(self.command, self.path, headers, self.rfile.read(length))
            fake.seen.append(seen)
            status, body = fake.answers.get(fake.route(seen), (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def binder_values(staging: Any) -> dict[str, dict[str, Any]]:
    """The binderhub-service values the program registers for each cloud (staging)."""
    return {
        cloud: staging.one("kubernetes:helm.sh/v4:Chart", f"{cloud}-hub-binderhub-service").inputs[
            "values"
        ]
        for cloud in ("gcp", "aws")
    }


def run_async(coroutine: Any) -> Any:
    """Run a coroutine on a loop of its own: asyncio.run would unset the thread's current loop,
    which the Pulumi tests after these rely on."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def closed_port_url() -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}"


# --- GKE -----------------------------------------------------------------------------------------

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
BUILDER = "pb-staging-builder@pangeo-binder-staging.iam.gserviceaccount.com"
IAM_PATH = f"/v1/projects/-/serviceAccounts/{BUILDER}:generateAccessToken"
METADATA_ANSWER = json.dumps(
    {"access_token": "ya29.metadata", "expires_in": 299, "token_type": "Bearer"}
).encode()
IAM_ANSWER = json.dumps(
    {"accessToken": "ya29.hour-long", "expireTime": "2026-11-26T15:00:00Z"}
).encode()


def gke(server: FakeServer) -> dict[str, str]:
    return br.google_credentials(
        "us-central1-docker.pkg.dev", BUILDER, server.url + TOKEN_PATH, server.url
    )


def test_gke_credentials_are_an_hour_long_token_of_the_builder(server: FakeServer) -> None:
    server.answers[TOKEN_PATH] = (200, METADATA_ANSWER)
    server.answers[IAM_PATH] = (200, IAM_ANSWER)
    assert gke(server) == {
        "registry": "us-central1-docker.pkg.dev",
        "username": "oauth2accesstoken",
        "password": "ya29.hour-long",  # IAM's token, not the metadata server's
    }
    metadata, iam = server.seen
    assert (metadata.method, metadata.path) == ("GET", TOKEN_PATH)
    assert metadata.headers["metadata-flavor"] == "Google"
    assert (iam.method, iam.path) == ("POST", IAM_PATH)
    assert iam.headers["authorization"] == "Bearer ya29.metadata"
    assert iam.headers["content-type"] == "application/json"
    assert json.loads(iam.body) == {
        "scope": ["https://www.googleapis.com/auth/cloud-platform"],
        "lifetime": "3600s",
    }


def test_the_default_endpoints_are_gkes_metadata_server_and_iam_credentials() -> None:
    assert f"http://metadata.google.internal{TOKEN_PATH}" == br.GKE_METADATA_TOKEN_URL
    assert br.IAM_CREDENTIALS_URL == "https://iamcredentials.googleapis.com"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"internal", "answered 500"),
        (404, b"no such account", "answered 404"),
        (200, b"not json", "gave no access_token"),
        (200, b'{"token_type": "Bearer"}', "gave no access_token"),
        (200, b'{"access_token": ""}', "gave an empty token"),
    ],
)
def test_a_failing_metadata_server_gives_an_error_and_no_iam_call(
    server: FakeServer, status: int, body: bytes, message: str
) -> None:
    server.answers[TOKEN_PATH] = (status, body)
    server.answers[IAM_PATH] = (200, IAM_ANSWER)
    with pytest.raises(br.RegistryCredentialsError, match=message):
        gke(server)
    assert [seen.path for seen in server.seen] == [TOKEN_PATH]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (403, b'{"error": {"status": "PERMISSION_DENIED"}}',
         r"403: .*needs roles/iam\.serviceAccountTokenCreator on itself"),
        (500, b"internal", "generateAccessToken at .* answered 500"),
        (200, b"not json", "gave no accessToken"),
        (200, b'{"expireTime": "2026-11-26T15:00:00Z"}', "gave no accessToken"),
        (200, b'{"accessToken": ""}', "gave an empty accessToken"),
    ],
)  # fmt: skip
def test_iam_credentials_failing_gives_an_error_not_credentials(
    server: FakeServer, status: int, body: bytes, message: str
) -> None:
    server.answers[TOKEN_PATH] = (200, METADATA_ANSWER)
    server.answers[IAM_PATH] = (status, body)
    with pytest.raises(br.RegistryCredentialsError, match=message):
        gke(server)


def test_without_the_builder_email_nothing_is_asked(server: FakeServer) -> None:
    with pytest.raises(br.RegistryCredentialsError, match="builderEmail"):
        br.google_credentials("r", "", server.url + TOKEN_PATH, server.url)
    assert server.seen == []


def test_an_unreachable_metadata_server_gives_an_error() -> None:
    with pytest.raises(br.RegistryCredentialsError, match="failed"):
        br.google_credentials("r", BUILDER, closed_port_url() + TOKEN_PATH, closed_port_url())


# --- what BinderHub shows for a build that gets no credentials ----------------------------------


def extract_message(exception: Any) -> str:
    """What BinderHub's BaseHandler.extract_message (binderhub/base.py at b9fad99) returns."""
    try:
        return exception.log_message % exception.args
    except Exception:
        return ""


class FakeTornadoHTTPError(Exception):
    """tornado.web.HTTPError's constructor: (status_code, log_message, *args, reason=...)."""

    def __init__(self, status_code: int = 500, log_message: Any = None, *args: Any, **kw: Any):
        super().__init__()
        self.status_code, self.log_message, self.args = status_code, log_message, args
        self.reason = kw.get("reason")


def test_the_error_is_tornados_http_error_when_tornado_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tornado = types.ModuleType("tornado")
    web = types.ModuleType("tornado.web")
    web.HTTPError = FakeTornadoHTTPError  # type: ignore[attr-defined]
    tornado.web = web  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tornado", tornado)
    monkeypatch.setitem(sys.modules, "tornado.web", web)
    error = br.credentials_unavailable(br.RegistryCredentialsError("STS answered 403: 100% no"))
    assert isinstance(error, FakeTornadoHTTPError)
    assert error.status_code == 500
    assert error.reason == "Registry credentials unavailable"
    assert extract_message(error) == (
        "No registry credentials for the build: STS answered 403: 100% no"
    )


def test_without_tornado_the_error_still_carries_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tornado", None)  # import tornado.web raises ImportError
    monkeypatch.setitem(sys.modules, "tornado.web", None)
    error = br.credentials_unavailable(br.RegistryCredentialsError("metadata answered 503"))
    assert not isinstance(error, FakeTornadoHTTPError)
    assert error.status_code == 500  # type: ignore[attr-defined]
    assert extract_message(error) == "No registry credentials for the build: metadata answered 503"
    # A plain RuntimeError, as raised before, gives BinderHub nothing to show.
    assert extract_message(br.RegistryCredentialsError("x")) == ""


# --- SigV4 against AWS's published vectors -------------------------------------------------------

SUITE = br.AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_AT = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("method", "url", "signature"),
    [
        # AWS SigV4 test suite: get-vanilla, post-vanilla, get-vanilla-query-order-key-case.
        (
            "GET",
            "https://example.amazonaws.com/",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "POST",
            "https://example.amazonaws.com/",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_sigv4_reproduces_the_aws_test_suite(method: str, url: str, signature: str) -> None:
    headers = br.sigv4_headers(
        method, url, {}, b"", region="us-east-1", service="service", credentials=SUITE, now=SUITE_AT
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    assert headers["x-amz-date"] == "20150830T123600Z"


def test_sigv4_reproduces_s3s_documented_get_object() -> None:
    """Amazon S3 API reference, "Signature Calculations for the Authorization Header",
    example GET Object (extra signed headers, a path)."""
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    headers = br.sigv4_headers(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        {"Range": "bytes=0-9", "x-amz-content-sha256": empty},
        b"",
        region="us-east-1",
        service="s3",
        credentials=br.AwsCredentials(
            "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ),
        now=datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc),
    )
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_a_session_token_is_sent_and_signed() -> None:
    credentials = br.AwsCredentials("ASIAEXAMPLE", "secret", "session-token")
    headers = br.sigv4_headers(
        "POST", "https://api.ecr.us-west-2.amazonaws.com/", {}, b"{}",
        region="us-west-2", service="ecr", credentials=credentials, now=SUITE_AT,
    )  # fmt: skip
    assert headers["x-amz-security-token"] == "session-token"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]
    assert "/20150830/us-west-2/ecr/aws4_request" in headers["Authorization"]


# --- EKS: IRSA -> STS -> ECR ---------------------------------------------------------------------

STS_ANSWER = b"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAFAKEKEYID</AccessKeyId>
      <SecretAccessKey>fake/secret+key</SecretAccessKey>
      <SessionToken>fake-session-token</SessionToken>
      <Expiration>2026-11-26T15:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"""


def ecr_answer(user: str = "AWS", password: str = ECR_PASSWORD) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps(
        {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": 1795000000.0,
                    "proxyEndpoint": f"https://{ECR_HOST}",
                }
            ]
        }
    ).encode()


@pytest.fixture
def irsa(tmp_path: Path) -> dict[str, str]:
    token_file = tmp_path / "token"
    token_file.write_text("projected.service-account.jwt\n")
    return {"AWS_ROLE_ARN": ROLE_ARN, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file)}


def aws_settings(server: FakeServer) -> dict[str, str]:
    return {"region": "us-west-2", "stsUrl": server.url + "/sts/", "ecrUrl": server.url + "/ecr/"}


def test_eks_credentials_come_from_sts_then_ecr(server: FakeServer, irsa: dict) -> None:
    server.answers["AssumeRoleWithWebIdentity"] = (200, STS_ANSWER)
    server.answers[br.ECR_TARGET] = (200, ecr_answer())
    found = br.aws_credentials(ECR_HOST, aws_settings(server), irsa)
    assert found == {"registry": ECR_HOST, "username": "AWS", "password": ECR_PASSWORD}

    sts, ecr = server.seen
    form = urllib.parse.parse_qs(sts.body.decode())
    assert (sts.method, sts.path) == ("POST", "/sts/")
    assert form["Action"] == ["AssumeRoleWithWebIdentity"]
    assert form["RoleArn"] == [ROLE_ARN]
    assert form["WebIdentityToken"] == ["projected.service-account.jwt"]
    assert "authorization" not in sts.headers  # the web identity token is the proof

    assert (ecr.method, ecr.path, ecr.body) == ("POST", "/ecr/", b"{}")
    assert ecr.headers["x-amz-target"] == br.ECR_TARGET
    assert ecr.headers["content-type"] == "application/x-amz-json-1.1"
    assert ecr.headers["x-amz-security-token"] == "fake-session-token"
    authorization = ecr.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAFAKEKEYID/")
    assert "/us-west-2/ecr/aws4_request" in authorization
    # The signature covers exactly what was sent: recomputing it from the request agrees.
    sent_at = datetime.datetime.strptime(ecr.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    again = br.sigv4_headers(
        "POST",
        server.url + "/ecr/",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": br.ECR_TARGET},
        ecr.body,
        region="us-west-2",
        service="ecr",
        credentials=br.AwsCredentials("ASIAFAKEKEYID", "fake/secret+key", "fake-session-token"),
        now=sent_at,
    )
    assert again["Authorization"] == authorization


def test_the_default_endpoints_are_the_regions() -> None:
    found = br.aws_settings(
        {"region": "eu-west-1"}, {"AWS_ROLE_ARN": ROLE_ARN, "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}
    )
    assert found["sts_url"] == "https://sts.eu-west-1.amazonaws.com/"
    assert found["ecr_url"] == "https://api.ecr.eu-west-1.amazonaws.com/"


def test_without_irsa_the_error_names_the_missing_annotation() -> None:
    with pytest.raises(br.RegistryCredentialsError, match=r"eks\.amazonaws\.com/role-arn"):
        br.aws_credentials(ECR_HOST, {"region": "us-west-2"}, {})


def test_sts_refusing_stops_before_ecr(server: FakeServer, irsa: dict) -> None:
    server.answers["AssumeRoleWithWebIdentity"] = (403, b"<Error>AccessDenied</Error>")
    server.answers[br.ECR_TARGET] = (200, ecr_answer())
    with pytest.raises(br.RegistryCredentialsError, match=r"STS AssumeRoleWithWebIdentity.*403"):
        br.aws_credentials(ECR_HOST, aws_settings(server), irsa)
    assert [seen.path for seen in server.seen] == ["/sts/"]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"__type":"AccessDeniedException"}', "answered 400"),
        (200, b'{"authorizationData": []}', "gave no authorization token"),
        (200, ecr_answer(password=""), "incomplete authorization token"),
    ],
)
def test_ecr_failing_gives_an_error_not_credentials(
    server: FakeServer, irsa: dict, status: int, body: bytes, message: str
) -> None:
    server.answers["AssumeRoleWithWebIdentity"] = (200, STS_ANSWER)
    server.answers[br.ECR_TARGET] = (status, body)
    with pytest.raises(br.RegistryCredentialsError, match=message):
        br.aws_credentials(ECR_HOST, aws_settings(server), irsa)


def test_incomplete_sts_credentials_are_refused(server: FakeServer, irsa: dict) -> None:
    server.answers["AssumeRoleWithWebIdentity"] = (
        200,
        STS_ANSWER.replace(b"<SessionToken>fake-session-token</SessionToken>", b""),
    )
    with pytest.raises(br.RegistryCredentialsError, match="no complete credentials"):
        br.aws_credentials(ECR_HOST, aws_settings(server), irsa)


def test_ecr_lookup_uses_the_login_and_404_means_build(server: FakeServer) -> None:
    login = {"registry": ECR_HOST, "username": "AWS", "password": ECR_PASSWORD}
    path = "/v2/pangeo-binder-staging/build-x-abc123/manifests/0123abcd"
    server.answers[path] = (200, b'{"schemaVersion": 2}')
    found = br.ecr_manifest(server.url, "pangeo-binder-staging/build-x-abc123", "0123abcd", login)
    assert found == {"schemaVersion": 2}
    basic = base64.b64decode(server.seen[0].headers["authorization"].removeprefix("Basic "))
    assert basic.decode() == f"AWS:{ECR_PASSWORD}"
    assert br.ecr_manifest(server.url, "pangeo-binder-staging/other", "1", login) is None


# --- wired into BinderHub the way binderhub-service runs it --------------------------------------


# Named as BinderHub names them: traitlets finds a class's config sections by class name
# along its MRO (config.DockerRegistry.url reaches the subclasses).
class DockerRegistry(LoggingConfigurable):
    url = Unicode("https://registry-1.docker.io", config=True)

    async def get_credentials(self, image: str, tag: str) -> Any:
        return None


class GoogleArtifactRegistry(DockerRegistry):
    token_url = Unicode(br.GKE_METADATA_TOKEN_URL, config=True)


@pytest.fixture
def binderhub_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """`binderhub.registry` with the names and traits the real one has, and `ruamel.yaml`
    (which the chart's config file reads its values with) backed by PyYAML."""
    package = types.ModuleType("binderhub")
    registry = types.ModuleType("binderhub.registry")
    registry.DockerRegistry = DockerRegistry  # type: ignore[attr-defined]
    registry.GoogleArtifactRegistry = GoogleArtifactRegistry  # type: ignore[attr-defined]
    package.registry = registry  # type: ignore[attr-defined]
    ruamel = types.ModuleType("ruamel")
    ruamel_yaml = types.ModuleType("ruamel.yaml")

    class YAML:
        def __init__(self, typ: str) -> None:
            assert typ == "safe"

        def load(self, stream: Any) -> Any:
            return yaml.safe_load(stream)

    ruamel_yaml.YAML = YAML  # type: ignore[attr-defined]
    ruamel.yaml = ruamel_yaml  # type: ignore[attr-defined]
    for name, module in {
        "binderhub": package,
        "binderhub.registry": registry,
        "ruamel": ruamel,
        "ruamel.yaml": ruamel_yaml,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)


def run_chart_config(
    values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """binderhub-service's mounted binderhub_config.py over the chart-config.yaml the chart
    renders from `values`, loaded by traitlets as BinderHub loads its config file, with the
    environment the rendered Deployment gives the container."""
    objects = render(BINDERHUB_SERVICE, values, release="binderhub-service", namespace="binder")
    container = find(objects, "Deployment", "binderhub")[0]["spec"]["template"]["spec"][
        "containers"
    ][0]
    for variable in container["env"]:
        if "value" in variable:
            monkeypatch.setenv(variable["name"], variable["value"])
        elif variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == (
            "metadata.namespace"
        ):
            monkeypatch.setenv(variable["name"], "binder")
    secret = find(objects, "Secret", "binderhub")[0]
    chart_config = tmp_path / "chart-config.yaml"
    chart_config.write_text(secret["stringData"]["chart-config.yaml"])
    config_py = (chart_dir(BINDERHUB_SERVICE) / "mounted-files" / "binderhub_config.py").read_text()
    assert "/etc/binderhub/mounted-secret/chart-config.yaml" in config_py
    (tmp_path / "binderhub_config.py").write_text(
        config_py.replace("/etc/binderhub/mounted-secret/chart-config.yaml", str(chart_config))
    )
    return PyFileConfigLoader("binderhub_config.py", path=str(tmp_path)).load_config()


@pytest.mark.usefixtures("chart_files", "binderhub_stand_in")
def test_gke_binderhub_pushes_with_an_hour_long_iam_token(
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    binder_values: dict[str, dict[str, Any]],
) -> None:
    c = run_chart_config(binder_values["gcp"], tmp_path, monkeypatch)
    assert c.BinderHub.use_registry is True and c.BinderHub.auth_enabled is True
    # What HubAuth (a parent of HubOAuth, jupyterhub services/auth.py) checks tokens against.
    assert list(c.HubOAuth.access_scopes) == ["access:services!service=binder"]
    registry_class = c.BinderHub.registry_class
    assert issubclass(registry_class, GoogleArtifactRegistry)
    server.answers[TOKEN_PATH] = (200, METADATA_ANSWER)
    server.answers[IAM_PATH] = (200, IAM_ANSWER)
    registry = registry_class(config=c, token_url=server.url + TOKEN_PATH)
    registry.iam_credentials_url = server.url
    assert registry.url == "https://us-central1-docker.pkg.dev"  # DockerRegistry.url from values
    found = run_async(registry.get_credentials("pangeo-binder-staging/binder/build-x", "abc"))
    assert found == {
        "registry": "us-central1-docker.pkg.dev",
        "username": "oauth2accesstoken",
        "password": "ya29.hour-long",
    }
    # The builder's email reached the class from the program's outputs, through the values.
    assert server.seen[-1].path == IAM_PATH
    server.answers[IAM_PATH] = (403, b"denied")
    with pytest.raises(Exception) as failed:
        run_async(registry.get_credentials("pangeo-binder-staging/binder/build-x", "abc"))
    # What BinderHub would show in the form, and the cause in its log. The class the chart's
    # exec defined, not the one imported here: same name and meaning.
    assert "roles/iam.serviceAccountTokenCreator" in extract_message(failed.value)
    assert failed.value.status_code == 500  # type: ignore[attr-defined]
    assert type(failed.value.__cause__).__name__ == "RegistryCredentialsError"


@pytest.mark.usefixtures("chart_files", "binderhub_stand_in")
def test_eks_binderhub_looks_up_and_pushes_with_ecr_tokens(
    server: FakeServer,
    tmp_path: Path,
    irsa: dict,
    monkeypatch: pytest.MonkeyPatch,
    binder_values: dict[str, dict[str, Any]],
) -> None:
    values = json.loads(json.dumps(binder_values["aws"]))
    # Point the class at the fakes, through the same settings entry the program writes.
    settings = {
        "cloud": "aws",
        "registryHost": ECR_HOST,
        **aws_settings(server),
    }
    values["extraConfig"]["pangeo-binder-00-settings"] = (
        f"import json\n\nPANGEO_BINDER_REGISTRY = json.loads({json.dumps(json.dumps(settings))})\n"
    )
    for key, value in irsa.items():
        monkeypatch.setenv(key, value)
    c = run_chart_config(values, tmp_path, monkeypatch)
    registry = c.BinderHub.registry_class(config=c, url=server.url)
    server.answers["AssumeRoleWithWebIdentity"] = (200, STS_ANSWER)
    server.answers[br.ECR_TARGET] = (200, ecr_answer())
    found = run_async(registry.get_credentials("pangeo-binder-staging/build-x", "abc"))
    assert found == {"registry": ECR_HOST, "username": "AWS", "password": ECR_PASSWORD}
    # A repository ECR has not created yet: not found, so BinderHub builds (and the push
    # creates it from the creation template).
    assert run_async(registry.get_image_manifest("pangeo-binder-staging/build-x", "abc")) is None
    server.answers["AssumeRoleWithWebIdentity"] = (403, b"<Error>AccessDenied</Error>")
    with pytest.raises(Exception) as failed:
        run_async(registry.get_credentials("pangeo-binder-staging/build-x", "abc"))
    assert "STS AssumeRoleWithWebIdentity" in extract_message(failed.value)
    assert "answered 403" in extract_message(failed.value)
    assert type(failed.value.__cause__).__name__ == "RegistryCredentialsError"
    # A lookup for a build still builds when STS fails; BinderHub's health probe's lookup
    # (image_prefix + some-image-name:12345, binderhub/health.py) raises, so /health says so.
    assert run_async(registry.get_image_manifest("pangeo-binder-staging/build-x", "abc")) is None
    with pytest.raises(RuntimeError, match="403"):
        run_async(registry.get_image_manifest("pangeo-binder-staging/some-image-name", "12345"))
    server.answers["AssumeRoleWithWebIdentity"] = (200, STS_ANSWER)
    server.answers[br.ECR_TARGET] = (400, b'{"__type":"AccessDeniedException"}')
    with pytest.raises(RuntimeError, match="ECR GetAuthorizationToken"):
        run_async(registry.get_image_manifest("pangeo-binder-staging/some-image-name", "12345"))
    # ECR answering "not found" to the probe is a healthy registry.
    server.answers[br.ECR_TARGET] = (200, ecr_answer())
    assert (
        run_async(registry.get_image_manifest("pangeo-binder-staging/some-image-name", "12345"))
        is None
    )


def test_the_health_probe_is_recognised_by_binderhubs_name_and_tag() -> None:
    assert br.is_health_probe("pangeo-binder-staging/some-image-name", "12345")
    assert not br.is_health_probe("pangeo-binder-staging/some-image-name", "abc")
    assert not br.is_health_probe("pangeo-binder-staging/build-x", "12345")


def test_the_module_configures_nothing_when_imported() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(source("binder_registry"), "binder_registry.py", "exec"), namespace)
    assert "configure" in namespace and "c" not in namespace
