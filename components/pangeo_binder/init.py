"""`python -m pangeo_binder.init`: a new stack file for one cloud, checked by the config model.

Writes `Pulumi.<stack>.yaml` with one cloud, default pools for it (a small core pool with one
node, a user pool and a spot dask pool; no GPU pool) and the hub's settings from the flags,
then prints the commands that follow, in order. Nothing is written unless the whole file passes
`load_config`; every problem is reported at once, named by the flag that caused it. The GitHub
client secret is never asked for nor written: a placeholder stands in for it during the check,
and the printed steps say how to set it (encrypted) with `pulumi config set --secret`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder.config import NAMESPACE, ConfigError, Problem, load_config

CLOUDS = ("gcp", "aws")
# Pulumi's own rule for stack names (letters, digits, `-`, `_`, `.`), kept short: the stack
# name only names the file here; resources are named by `environment`.
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
PLACEHOLDER_SECRET = "placeholder-not-written"

# Default pools: the cheapest shapes the config model and the shipped stack files use. The core
# pool keeps one node (the hub must run somewhere); everything else scales from zero.
DEFAULT_POOLS: dict[str, dict[str, dict[str, Any]]] = {
    "gcp": {
        "core": {
            "purpose": "core",
            "machineType": "e2-standard-2",
            "minNodes": 1,
            "maxNodes": 3,
            "diskSizeGb": 30,
        },
        "user": {"purpose": "user", "machineType": "n2-highmem-4", "maxNodes": 20},
        "dask": {"purpose": "dask", "machineType": "n2-highmem-16", "maxNodes": 100, "spot": True},
    },
    "aws": {
        "core": {
            "purpose": "core",
            "machineType": "t3a.large",
            "minNodes": 1,
            "maxNodes": 3,
            "diskSizeGb": 30,
        },
        "user": {"purpose": "user", "machineType": "r5.xlarge", "maxNodes": 20},
        "dask": {
            "purpose": "dask",
            "machineType": "r5.4xlarge",
            # Several types of one size: spot capacity is found in more pools.
            "instanceTypes": ["r5.4xlarge", "r5a.4xlarge", "r6i.4xlarge", "r7i.4xlarge"],
            "maxNodes": 100,
            "spot": True,
        },
    },
}

# Required flags, in the order they are prompted for; `--project` only for GCP.
REQUIRED = ("stack", "cloud", "region", "domain", "contact_email", "github_org", "client_id")

# Config key (below `clouds.<cloud>.` for the cloud's own keys) -> the flag that sets it.
CLOUD_FLAGS = {
    "region": "--region",
    "zone": "--zone",
    "project": "--project",
    "accountId": "--account-id",
    "availabilityZones": "--region",
    "nodePools": "--region",  # the default pools are checked against the region's zones
    "hub.domain": "--domain",
    "hub.dns": "--domain",
    "hub.contactEmail": "--contact-email",
    "hub.github.clientId": "--client-id",
    "hub.github": "--client-id",
}
TOP_FLAGS = {
    "environment": "--environment",
    "hub.allowedOrganizations": "--github-org",
    "hub.adminUsers": "--admin",
    "hub.privilegedGroups": "--github-org",
}


def flag_of(path: str) -> str:
    """The flag behind a config problem's key path (`clouds.gcp.region` -> `--region`)."""
    parts = path.split(".")
    if parts[:1] == ["clouds"] and len(parts) > 2:
        rest = parts[2:]
        for length in range(len(rest), 0, -1):
            flag = CLOUD_FLAGS.get(".".join(rest[:length]))
            if flag:
                return flag
    for length in range(len(parts), 0, -1):
        flag = TOP_FLAGS.get(".".join(parts[:length]))
        if flag:
            return flag
    if parts[:1] == ["secrets"]:
        return "(the client secret)"
    return "--cloud"


def stack_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The `pangeo-binder:` keys of the new stack, without the namespace."""
    cloud: dict[str, Any] = {}
    if args.cloud == "gcp":
        cloud["project"] = args.project
    cloud["region"] = args.region
    if args.zone:
        cloud["zone"] = args.zone
    if args.account_id:
        cloud["accountId"] = args.account_id
    cloud["nodePools"] = DEFAULT_POOLS[args.cloud]
    cloud["hub"] = {
        "domain": args.domain,
        "contactEmail": args.contact_email,
        "github": {"clientId": args.client_id},
    }
    hub: dict[str, Any] = {"namespace": "binder", "allowedOrganizations": list(args.github_org)}
    if args.admin:
        hub["adminUsers"] = list(args.admin)
    return {
        "environment": args.environment,
        "hub": hub,
        "clouds": {args.cloud: {k: v for k, v in cloud.items() if v is not None}},
    }


def secret_step(cloud: str, stack: str) -> str:
    """The command that stores the GitHub client secret, encrypted, in the stack file."""
    return (
        f"pulumi config set --secret --path 'secrets.{cloud}.githubClientSecret' "
        f"--stack {stack} VALUE"
    )


def _flow(value: Any) -> str:
    """One YAML value on one line (quoted where YAML would misread it: '012345678901')."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def render(stack: str, keys: dict[str, Any]) -> str:
    """The stack file's text, laid out as the shipped stack files are."""
    [(cloud, settings)] = keys["clouds"].items()
    lines = [
        f"# {stack}: written by `python -m pangeo_binder.init`; every key is in",
        "# docs/reference/config.md. The GitHub OAuth app's client secret is not in this file:",
        "# set it once per stack, stored here encrypted, never in plain text:",
        f"#   {secret_step(cloud, stack)}",
        "config:",
        f"  {NAMESPACE}:environment: {_flow(keys['environment'])}",
        f"  {NAMESPACE}:hub:",
        *[f"    {key}: {_flow(value)}" for key, value in keys["hub"].items()],
        f"  {NAMESPACE}:clouds:",
        f"    {cloud}:",
    ]
    for key, value in settings.items():
        if key in ("nodePools", "hub"):
            lines.append(f"      {key}:")
            lines += [f"        {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"      {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def check(text: str) -> list[Problem]:
    """Every problem of a stack file's text under the config model, with the client secret
    (unknown yet) stood in for by a placeholder that is never written."""
    data = yaml.safe_load(text)["config"]
    raw = {key.split(":", 1)[1]: value for key, value in data.items()}
    raw["secrets"] = {
        cloud: {"githubClientSecret": PLACEHOLDER_SECRET} for cloud in raw.get("clouds", {})
    }
    try:
        load_config(raw, secret_keys={"secrets"})
    except ConfigError as error:
        return error.problems
    return []


def next_steps(stack: str, cloud: str, domain: str) -> list[str]:
    """What to run after the file is written, in order (the README follows the same order)."""
    bucket = {"gcp": "gs://<state-bucket>", "aws": "s3://<state-bucket>"}[cloud]
    return [
        f"Choose where Pulumi keeps state: pulumi login {bucket} (a bucket you own), or "
        "make login for a local file backend.",
        f"pulumi stack init {stack}",
        "The GitHub OAuth app whose client id you gave: Homepage URL "
        f"https://{domain}, Authorization callback URL https://{domain}/hub/oauth_callback "
        "(GitHub: Settings > Developer settings > OAuth Apps, or the organization's).",
        f"{secret_step(cloud, stack)}   (the app's client secret)",
        f"make preview STACK={stack}",
        f"make up STACK={stack}",
        f"DNS: automatic when clouds.{cloud}.hub.dns names a zone you have (add it before "
        f"make up; docs/howto/https.md). Otherwise point {domain} at the hubAddress output "
        f"(pulumi stack output --stack {stack} --json), then: "
        "kubectl -n binder rollout restart deployment/autohttps",
        f"Log in at https://{domain}",
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pangeo_binder.init", description=__doc__.splitlines()[0]
    )
    p.add_argument("--stack", help="stack name; the file is Pulumi.<stack>.yaml")
    p.add_argument("--cloud", help="gcp or aws")
    p.add_argument("--environment", default="staging", help="staging (default) or prod")
    p.add_argument("--region", help="region of the cluster, buckets and registry")
    p.add_argument("--zone", help="gcp only: a zone of the region, for a zonal cluster")
    p.add_argument("--project", help="gcp: the project id (required for gcp)")
    p.add_argument("--account-id", help="aws: the 12-digit account to pin (optional)")
    p.add_argument("--domain", help="the hub's DNS name (hub.example.org)")
    p.add_argument("--contact-email", help="Let's Encrypt account email")
    p.add_argument(
        "--github-org", action="append", default=[], help="org or org:team allowed in; repeatable"
    )
    p.add_argument("--client-id", help="the GitHub OAuth app's client id")
    p.add_argument("--admin", action="append", default=[], help="a hub admin's GitHub login")
    p.add_argument("--dir", type=Path, default=Path.cwd(), help="where to write (default: .)")
    return p


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def required(args: argparse.Namespace) -> list[str]:
    """The destinations of required flags not given (`--project` when the cloud is gcp)."""
    needed = list(REQUIRED) + (["project"] if args.cloud == "gcp" else [])
    return [dest for dest in needed if not getattr(args, dest)]


def prompt_missing(args: argparse.Namespace, ask: Callable[[str], str]) -> None:
    """Ask for each missing required value (a terminal is attached)."""
    for dest in (*REQUIRED, "project"):
        if dest == "project" and args.cloud != "gcp":
            continue
        if getattr(args, dest):
            continue
        answer = ask(f"{_flag(dest)}: ").strip()
        if dest == "github_org":
            args.github_org = [org.strip() for org in answer.split(",") if org.strip()]
        else:
            setattr(args, dest, answer or None)


def problems_of(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """Every problem, as `--flag: message`, and the stack file's text when there are none."""
    found = [f"{_flag(dest)}: required" for dest in required(args)]
    if args.stack and not STACK_NAME.match(args.stack):
        found.append(f"--stack: {args.stack!r} is not a stack name (letters, digits, - _ .)")
    if args.cloud and args.cloud not in CLOUDS:
        found.append(f"--cloud: {args.cloud!r}; accepted: gcp, aws")
    if args.cloud == "aws":
        found += [
            f"{flag}: only for --cloud gcp"
            for flag in ("--zone", "--project")
            if getattr(args, flag[2:])
        ]
    if args.cloud == "gcp" and args.account_id:
        found.append("--account-id: only for --cloud aws (a GCP project is pinned by --project)")
    if not args.dir.is_dir():
        found.append(f"--dir: {args.dir} is not a directory")
    elif args.stack and (args.dir / f"Pulumi.{args.stack}.yaml").exists():
        found.append(
            f"--stack: {args.dir / f'Pulumi.{args.stack}.yaml'} exists; choose another stack "
            "name or edit that file"
        )
    if args.cloud not in CLOUDS:
        return found, None
    text = render(args.stack or "new", stack_keys(args))
    missing = {_flag(dest) for dest in required(args)}
    for problem in check(text):
        flag = flag_of(problem.path)
        if flag not in missing:
            found.append(f"{flag}: {problem.path}: {problem.message}")
    return found, (None if found else text)


def main(
    argv: list[str] | None = None,
    *,
    interactive: bool | None = None,
    ask: Callable[[str], str] = input,
) -> int:
    args = parser().parse_args(argv)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if interactive and required(args):
        prompt_missing(args, ask)
    found, text = problems_of(args)
    if found or text is None:
        print(f"init: nothing written; {len(found)} problem(s):", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        return 2
    path = args.dir / f"Pulumi.{args.stack}.yaml"
    path.write_text(text)
    print(f"wrote {path}\n\nNext, in this order:")
    for number, step in enumerate(next_steps(args.stack, args.cloud, args.domain), start=1):
        print(f"  {number}. {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
