"""The hub URLs a deploy's smoke check calls, one per cloud of the stack.

`python -m pangeo_binder.smoke --stack staging outputs.json` prints one URL per line, read from
`pulumi stack output --json`: a cloud's `hubUrl` output when the stack exports one, otherwise
`https://` + that cloud's `hub.domain` from the stack file (the hub answers there once its DNS
record points at the proxy). deploy.yml then curls `<url>/hub/health` with a bounded retry.
A stack with no hub URL at all is an error, not a silent pass.

With `--diagnose` it checks each hub instead and, when one does not answer, says which step of
docs/howto/https.md is missing: the domain does not resolve; it resolves to something other
than the reserved `hubAddress` output; or it resolves correctly but TLS fails (the certificate
was not issued: it prints the command that restarts autohttps). The resolver and the fetcher
are arguments, so the checks are tested without a network.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pangeo_binder.config import NAMESPACE

CLOUDS = ("gcp", "aws")


class SmokeError(ValueError):
    """The stack gives no usable hub URL."""


def _checked(url: str, origin: str) -> str:
    """Only a plain https URL reaches curl: no spaces, no other schemes, a host."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        raise SmokeError(f"{origin}: not an https URL: {url!r}")
    return url.rstrip("/")


def hub_urls(outputs: dict[str, Any], stack_config: dict[str, Any]) -> list[str]:
    """One URL per cloud that has a hub: its `hubUrl` output, else its configured domain."""
    clouds = stack_config.get(f"{NAMESPACE}:clouds") or {}
    urls = []
    for cloud in CLOUDS:
        exported = outputs.get(cloud)
        if isinstance(exported, dict) and exported.get("hubUrl"):
            urls.append(_checked(str(exported["hubUrl"]), f"output {cloud}.hubUrl"))
            continue
        domain = ((clouds.get(cloud) or {}).get("hub") or {}).get("domain")
        if domain:
            urls.append(_checked(f"https://{domain}", f"config clouds.{cloud}.hub.domain"))
    if not urls:
        raise SmokeError("no cloud of this stack exports hubUrl or configures hub.domain")
    return urls


# host -> its IPv4 addresses, empty when the name does not resolve.
Resolver = Callable[[str], list[str]]
# GET a URL; raises on failure (ssl.SSLError, or URLError wrapping one, for a TLS failure).
Fetcher = Callable[[str], None]


def resolve(host: str) -> list[str]:
    """The IPv4 addresses `host` resolves to, in the order the resolver gives them."""
    try:
        infos = socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def fetch(url: str) -> None:
    """GET `url` with certificate verification; raise on any failure."""
    with urllib.request.urlopen(url, timeout=15):  # https only (see _checked)
        pass


def restart_command(namespace: str) -> str:
    """Makes autohttps ask Let's Encrypt again (z2jh 4.4.0 names its Deployment autohttps)."""
    return f"kubectl -n {namespace} rollout restart deployment/autohttps"


def _tls_failure(error: BaseException) -> bool:
    return isinstance(error, ssl.SSLError) or isinstance(
        getattr(error, "reason", None), ssl.SSLError
    )


def diagnose(
    url: str,
    hub_address: str,
    *,
    namespace: str,
    resolver: Resolver | None = None,
    fetcher: Fetcher | None = None,
) -> str | None:
    """None when `<url>/hub/health` answers over TLS; else which step is missing.

    `hub_address`: the cloud's `hubAddress` output (one IP, or Elastic IPs comma-separated);
    empty when the stack exports none, and then where the domain points is not checked."""
    resolver, fetcher = resolver or resolve, fetcher or fetch  # looked up now: patchable
    host = urlsplit(url).hostname or ""
    reserved = [a.strip() for a in hub_address.split(",") if a.strip()]
    target = ", ".join(reserved) or "the hubAddress output"
    addresses = resolver(host)
    if not addresses:
        return (
            f"{host} does not resolve: create an A record for it pointing at {target}, "
            "then restart autohttps (docs/howto/https.md)"
        )
    stray = [a for a in addresses if a not in reserved]
    if reserved and stray:
        return (
            f"{host} resolves to {', '.join(addresses)}, not the reserved hubAddress {target}: "
            "point its A record there (docs/howto/https.md)"
        )
    try:
        fetcher(f"{url}/hub/health")
    except Exception as error:  # every failure is reported
        if _tls_failure(error):
            return (
                f"{host} resolves to the hub, but TLS fails ({error}): the certificate has not "
                f"been issued; restart autohttps so it asks again: {restart_command(namespace)}"
            )
        return f"{host} resolves to the hub, but {url}/hub/health fails: {error}"
    return None


def diagnose_stack(
    outputs: dict[str, Any],
    stack_config: dict[str, Any],
    *,
    resolver: Resolver | None = None,
    fetcher: Fetcher | None = None,
) -> list[str]:
    """One line per cloud's hub: `ok <url>` or `<cloud>: <what is missing>`."""
    clouds = stack_config.get(f"{NAMESPACE}:clouds") or {}
    namespace = (stack_config.get(f"{NAMESPACE}:hub") or {}).get("namespace") or "binder"
    lines = []
    for cloud in CLOUDS:
        if cloud not in clouds and cloud not in outputs:
            continue
        exported = outputs.get(cloud) if isinstance(outputs.get(cloud), dict) else {}
        urls = hub_urls({cloud: exported}, {f"{NAMESPACE}:clouds": {cloud: clouds.get(cloud)}})
        problem = diagnose(
            urls[0],
            str(exported.get("hubAddress") or ""),
            namespace=namespace,
            resolver=resolver,
            fetcher=fetcher,
        )
        lines.append(f"ok {urls[0]}" if problem is None else f"{cloud}: {problem}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("outputs", type=Path, help="`pulumi stack output --json` of the stack")
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="where Pulumi.<stack>.yaml is"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="check each hub: DNS, the reserved address, TLS; say which step is missing",
    )
    args = parser.parse_args(argv)
    config = yaml.safe_load((args.root / f"Pulumi.{args.stack}.yaml").read_text()) or {}
    outputs = json.loads(args.outputs.read_text())
    try:
        if args.diagnose:
            lines = diagnose_stack(outputs, config.get("config") or {})
            print("\n".join(lines))
            return 0 if all(line.startswith("ok ") for line in lines) else 1
        urls = hub_urls(outputs, config.get("config") or {})
    except SmokeError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 1
    print("\n".join(urls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
