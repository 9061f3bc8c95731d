"""BinderHub registry classes: short-lived push credentials for each build, minted under the
identity of the BinderHub pod (GKE workload identity, EKS IRSA), never a stored key.

Executed by binderhub-service's binderhub_config.py (which defines `c` and `exec`s every
extraConfig entry in key order in one namespace) after an entry that sets
`PANGEO_BINDER_REGISTRY` (see `pangeo_binder/hub/binderhub_values.py`); imported by the test
suite, where BinderHub is not installed.

BinderHub (jupyterhub/binderhub `binderhub/registry.py` and `builder.py`, main at b9fad99,
2026-04-20) asks its registry class for `await get_credentials(image, tag)` before each build
and passes a non-empty answer to the build pod as `CONTAINER_ENGINE_REGISTRY_CREDENTIALS`;
repo2docker (2026.04.0, `engine.py`) requires exactly the keys `registry`, `username` and
`password` and runs `docker login` with them. An empty answer would make BinderHub fall back to
the chart's static docker config, which holds no password here: so a failure raises with the
reason, and never returns partial credentials. What BinderHub shows the user for a failed
request is `exception.log_message % exception.args` (`BaseHandler.extract_message`,
binderhub/base.py), which only tornado's `HTTPError` has: so `get_credentials` raises one
(`credentials_unavailable`) carrying the reason, with `RegistryCredentialsError` as its cause.

Only the standard library: the binderhub-service image (requirements.txt at chart commit
ca79dc0) has neither boto3 nor botocore, so the two AWS calls are made here: STS
AssumeRoleWithWebIdentity (unsigned: the web identity token is the proof) and ECR
GetAuthorizationToken, signed with Signature Version 4 as AWS documents it ("Create a signed
AWS API request", AWS IAM user guide). Blocking HTTP runs in a worker thread
(`asyncio.to_thread`), so BinderHub's event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

GKE_METADATA_TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
# Artifact Registry's docker login user for an OAuth access token (Google Cloud docs,
# "Configure authentication to Artifact Registry for Docker": access token).
GOOGLE_TOKEN_USERNAME = "oauth2accesstoken"
# IAM Service Account Credentials API, projects.serviceAccounts.generateAccessToken (Google Cloud
# IAM REST reference, read 2026-11-26): POST {base}/v1/projects/-/serviceAccounts/{email}
# :generateAccessToken with {"scope": [...], "lifetime": "<n>s"} (at most 3600s by default),
# answering {"accessToken": ..., "expireTime": ...}; the caller needs
# iam.serviceAccounts.getAccessToken on the account (roles/iam.serviceAccountTokenCreator).
IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PUSH_TOKEN_LIFETIME = "3600s"
TOKEN_CREATOR_ROLE = "roles/iam.serviceAccountTokenCreator"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
STS_VERSION = "2011-06-15"
TIMEOUT_SECONDS = 10
# BinderHub's registry health check (binderhub/health.py, check_docker_registry) looks up
# image_prefix + "some-image-name:12345" and counts the registry healthy unless that raises.
HEALTH_PROBE_IMAGE = "some-image-name"
HEALTH_PROBE_TAG = "12345"
# The HTTP reason phrase of a build refused for want of credentials (one header-safe line).
CREDENTIALS_REASON = "Registry credentials unavailable"


class RegistryCredentialsError(RuntimeError):
    """No push credentials: the build must not start with none (or half of them)."""


def _http_error_base() -> type[Exception]:
    """tornado's HTTPError where tornado is installed (BinderHub's image), else a stand-in
    with the same `log_message`, `args` and `reason`, so the module imports without tornado."""
    try:
        from tornado.web import HTTPError
    except ImportError:

        class HTTPError(Exception):  # type: ignore[no-redef]
            def __init__(
                self, status_code: int = 500, log_message: str | None = None, *args: Any, **kw: Any
            ) -> None:
                super().__init__(status_code, log_message, *args)
                self.status_code = status_code
                self.log_message = log_message
                self.args = args
                self.reason = kw.get("reason")

    return HTTPError


def credentials_unavailable(error: RegistryCredentialsError) -> Exception:
    """A 500 whose message BinderHub's `extract_message` shows in the form: the reason passed
    as the argument of "%s", so a `%` in it cannot break the formatting. Raise it `from error`."""
    return _http_error_base()(
        500, "%s", f"No registry credentials for the build: {error}", reason=CREDENTIALS_REASON
    )


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def http(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Response:
    """One HTTP request; an HTTP error status is returned, a network failure raises."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:
            return Response(reply.status, reply.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read() or b"")
    except (urllib.error.URLError, OSError) as error:
        raise RegistryCredentialsError(f"{method} {url} failed: {error}") from error


def _ok(response: Response, what: str, url: str) -> bytes:
    if response.status != 200:
        excerpt = response.body[:300].decode("utf-8", "replace")
        raise RegistryCredentialsError(f"{what} at {url} answered {response.status}: {excerpt}")
    return response.body


# --- GKE: the metadata token buys a fresh hour-long token from IAM Credentials -------------------


def metadata_token(token_url: str = GKE_METADATA_TOKEN_URL) -> str:
    """The pod's Google access token from the metadata server (under workload identity, the
    builder service account's). The server hands out one cached token until shortly before it
    expires (googleapis/google-auth-library-python#581, maintainers: the same token until
    about 30 s before expiry), so it may be nearly spent: good for the next call, not for a
    build that logs in first and pushes up to half an hour later."""
    body = _ok(
        http("GET", token_url, {"Metadata-Flavor": "Google"}), "the metadata server", token_url
    )
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError) as error:
        raise RegistryCredentialsError(
            f"the metadata server at {token_url} gave no access_token"
        ) from error
    if not isinstance(token, str) or not token:
        raise RegistryCredentialsError(f"the metadata server at {token_url} gave an empty token")
    return token


def generate_access_token(
    builder_email: str, bearer: str, iam_url: str = IAM_CREDENTIALS_URL
) -> str:
    """A new access token of `builder_email` with a full hour to live (IAM Credentials
    generateAccessToken), asked for with the metadata server's token: repo2docker logs in
    before a build that may take half an hour and pushes at its end."""
    url = f"{iam_url.rstrip('/')}/v1/projects/-/serviceAccounts/{builder_email}:generateAccessToken"
    body = json.dumps({"scope": [CLOUD_PLATFORM_SCOPE], "lifetime": PUSH_TOKEN_LIFETIME})
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    response = http("POST", url, headers, body.encode("utf-8"))
    if response.status == 403:
        raise RegistryCredentialsError(
            f"IAM Credentials generateAccessToken at {url} answered 403: {builder_email} needs "
            f"{TOKEN_CREATOR_ROLE} on itself (pangeo_binder/gcp/registry.py grants it)"
        )
    answer = _ok(response, "IAM Credentials generateAccessToken", url)
    try:
        token = json.loads(answer)["accessToken"]
    except (ValueError, KeyError, TypeError) as error:
        raise RegistryCredentialsError(f"IAM Credentials at {url} gave no accessToken") from error
    if not isinstance(token, str) or not token:
        raise RegistryCredentialsError(f"IAM Credentials at {url} gave an empty accessToken")
    return token


def google_credentials(
    registry: str,
    builder_email: str,
    token_url: str = GKE_METADATA_TOKEN_URL,
    iam_url: str = IAM_CREDENTIALS_URL,
) -> dict[str, str]:
    """Push credentials for Artifact Registry: an hour-long token of the builder account."""
    if not builder_email:
        raise RegistryCredentialsError(
            "no builder service account email in the registry settings (builderEmail)"
        )
    token = generate_access_token(builder_email, metadata_token(token_url), iam_url)
    return {"registry": registry, "username": GOOGLE_TOKEN_USERNAME, "password": token}


# --- EKS: IRSA web identity -> STS temporary credentials -> ECR login token ---------------------


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    region: str,
    service: str,
    credentials: AwsCredentials,
    now: datetime.datetime,
) -> dict[str, str]:
    """`headers` plus X-Amz-Date, X-Amz-Security-Token (if any) and Authorization: an AWS
    Signature Version 4 over the method, path, query, every given header and the body."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urllib.parse.urlsplit(url)
    signed = {**headers, "host": parts.netloc, "x-amz-date": amz_date}
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    canonical_headers = {name.lower(): " ".join(str(v).split()) for name, v in signed.items()}
    names = sorted(canonical_headers)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    )
    canonical_request = "\n".join(
        [
            method,
            urllib.parse.quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def _xml_text(root: ET.Element, name: str) -> str:
    for element in root.iter():
        if element.tag.rpartition("}")[2] == name and element.text:
            return element.text.strip()
    return ""


def assume_role(
    sts_url: str, role_arn: str, web_identity_token: str, session_name: str
) -> AwsCredentials:
    """STS AssumeRoleWithWebIdentity with the pod's projected service account token (IRSA):
    temporary credentials of the builder role, 15 minutes, enough for one login."""
    form = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": STS_VERSION,
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "WebIdentityToken": web_identity_token,
            "DurationSeconds": "900",
        }
    ).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = _ok(http("POST", sts_url, headers, form), "STS AssumeRoleWithWebIdentity", sts_url)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise RegistryCredentialsError(f"STS at {sts_url} answered unreadable XML") from error
    found = AwsCredentials(
        _xml_text(root, "AccessKeyId"),
        _xml_text(root, "SecretAccessKey"),
        _xml_text(root, "SessionToken"),
    )
    if not (found.access_key_id and found.secret_access_key and found.session_token):
        raise RegistryCredentialsError(f"STS at {sts_url} gave no complete credentials")
    return found


def ecr_login(
    ecr_url: str, region: str, credentials: AwsCredentials, now: datetime.datetime
) -> tuple[str, str]:
    """ECR GetAuthorizationToken: (user, password) for `docker login`, valid 12 hours."""
    body = b"{}"
    headers = sigv4_headers(
        "POST",
        ecr_url,
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": ECR_TARGET},
        body,
        region=region,
        service="ecr",
        credentials=credentials,
        now=now,
    )
    answer = _ok(http("POST", ecr_url, headers, body), "ECR GetAuthorizationToken", ecr_url)
    try:
        token = json.loads(answer)["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode("utf-8").partition(":")
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise RegistryCredentialsError(f"ECR at {ecr_url} gave no authorization token") from error
    if not (user and password):
        raise RegistryCredentialsError(f"ECR at {ecr_url} gave an incomplete authorization token")
    return user, password


def aws_settings(settings: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Role and token file from the IRSA webhook's environment (AWS_ROLE_ARN,
    AWS_WEB_IDENTITY_TOKEN_FILE), endpoints from the region unless the settings give them."""
    role_arn = environ.get("AWS_ROLE_ARN", "")
    token_file = environ.get("AWS_WEB_IDENTITY_TOKEN_FILE", "")
    if not (role_arn and token_file):
        raise RegistryCredentialsError(
            "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not set: the BinderHub pod's "
            "service account lacks the builder role annotation (eks.amazonaws.com/role-arn)"
        )
    region = settings["region"]
    return {
        "region": region,
        "role_arn": role_arn,
        "token_file": token_file,
        "sts_url": settings.get("stsUrl") or f"https://sts.{region}.amazonaws.com/",
        "ecr_url": settings.get("ecrUrl") or f"https://api.ecr.{region}.amazonaws.com/",
    }


def aws_credentials(
    registry: str, settings: dict[str, Any], environ: dict[str, str] | None = None
) -> dict[str, str]:
    """Push credentials for ECR, minted under the builder role through IRSA."""
    found = aws_settings(settings, dict(os.environ if environ is None else environ))
    try:
        with open(found["token_file"], encoding="utf-8") as handle:
            web_identity_token = handle.read().strip()
    except OSError as error:
        raise RegistryCredentialsError(
            f"cannot read the web identity token {found['token_file']}: {error}"
        ) from error
    role = assume_role(found["sts_url"], found["role_arn"], web_identity_token, "binderhub-push")
    now = datetime.datetime.now(datetime.timezone.utc)
    user, password = ecr_login(found["ecr_url"], found["region"], role, now)
    return {"registry": registry, "username": user, "password": password}


def ecr_manifest(registry_url: str, image: str, tag: str, login: dict[str, str]) -> Any:
    """The manifest of `image:tag` in ECR (Docker registry API v2, basic auth with the login
    token), None when ECR does not have it (404, also for a repository not created yet)."""
    url = f"{registry_url.rstrip('/')}/v2/{image}/manifests/{tag}"
    basic = base64.b64encode(f"{login['username']}:{login['password']}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Accept": ", ".join(
            [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ]
        ),
    }
    response = http("GET", url, headers)
    if response.status == 404:
        return None
    return json.loads(_ok(response, "ECR image lookup", url))


def is_health_probe(image: str, tag: str) -> bool:
    """BinderHub's health check's lookup: image_prefix + some-image-name, tag 12345."""
    return tag == HEALTH_PROBE_TAG and image.endswith(HEALTH_PROBE_IMAGE)


# --- wiring into BinderHub ---------------------------------------------------------------------


def registry_classes(settings: dict[str, Any]) -> dict[str, type]:
    """BinderHub registry classes built on the installed BinderHub's own, by cloud."""
    from binderhub.registry import DockerRegistry, GoogleArtifactRegistry

    host = settings["registryHost"]

    class PangeoArtifactRegistry(GoogleArtifactRegistry):
        """GoogleArtifactRegistry looks images up with the metadata server's token; this adds
        push credentials: a fresh hour-long token of the builder account for each build."""

        # IAM Credentials API base; the tests point it at a fake.
        iam_credentials_url = IAM_CREDENTIALS_URL

        async def get_credentials(self, image: str, tag: str) -> dict[str, str]:
            try:
                return await asyncio.to_thread(
                    google_credentials,
                    host,
                    settings.get("builderEmail", ""),
                    self.token_url,
                    self.iam_credentials_url,
                )
            except RegistryCredentialsError as error:
                raise credentials_unavailable(error) from error

    class PangeoEcrRegistry(DockerRegistry):
        """ECR with a login token minted under IRSA, for lookups and for each build's push.
        Repositories are created on first push by the registry's creation template."""

        async def _login(self) -> dict[str, str]:
            return await asyncio.to_thread(aws_credentials, host, settings)

        async def get_image_manifest(self, image: str, tag: str) -> Any:
            try:
                login = await self._login()
                return await asyncio.to_thread(ecr_manifest, self.url, image, tag, login)
            except (RegistryCredentialsError, ValueError) as error:
                if is_health_probe(image, tag):
                    # /health must report the registry down, not "found nothing".
                    raise
                # As BinderHub does for a failed lookup: build (the push then needs
                # credentials, and get_credentials fails the build with the reason).
                self.log.error("ECR lookup of %s:%s failed: %s", image, tag, error)
                return None

        async def get_credentials(self, image: str, tag: str) -> dict[str, str]:
            try:
                return await self._login()
            except RegistryCredentialsError as error:
                raise credentials_unavailable(error) from error

    return {"gcp": PangeoArtifactRegistry, "aws": PangeoEcrRegistry}


def configure(c: Any, settings: dict[str, Any]) -> None:
    """Point BinderHub at the registry class of this cloud."""
    c.BinderHub.registry_class = registry_classes(settings)[settings["cloud"]]


if "c" in globals() and "PANGEO_BINDER_REGISTRY" in globals():  # binderhub-service extraConfig
    configure(c, PANGEO_BINDER_REGISTRY)  # type: ignore[name-defined]  # noqa: F821
