"""The hub URLs a deploy's smoke check calls, one per cloud of the stack.

`python -m pangeo_binder.smoke --stack staging outputs.json` prints one URL per line, read from
`pulumi stack output --json`: a cloud's `hubUrl` output when the stack exports one, otherwise
`https://` + that cloud's `hub.domain` from the stack file (the hub answers there once its DNS
record points at the proxy). deploy.yml then curls `<url>/hub/health` with a bounded retry.
A stack with no hub URL at all is an error, not a silent pass.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("outputs", type=Path, help="`pulumi stack output --json` of the stack")
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="where Pulumi.<stack>.yaml is"
    )
    args = parser.parse_args(argv)
    config = yaml.safe_load((args.root / f"Pulumi.{args.stack}.yaml").read_text()) or {}
    try:
        urls = hub_urls(json.loads(args.outputs.read_text()), config.get("config") or {})
    except SmokeError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 1
    print("\n".join(urls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
