"""`python -m pangeo_binder.init`: a new stack file for one cloud, checked by the config model.

Writes `Pulumi.<stack>.yaml` with one cloud, default pools for it (a small core pool with one
node, a user pool and a spot dask pool; no GPU pool), a budget with alerts (`--budget`) and the
hub's settings from the flags, then prints the commands that follow, in order. Nothing is
written unless the whole file passes `load_config`; every problem is reported at once, named by
the flag that caused it, with what to type (the config model's own messages). The README's
placeholders (`PROJECT`, `YOUR-ORG`, ...) are refused. The GitHub client secret is never asked
for nor written: a placeholder stands in for it during the check, and the printed steps say how
to set it (encrypted) with `pulumi config set --secret`. The OAuth app's client id may come
later: the file then lacks it, and the config check (`make preview`) names the command.
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

# Required flags, in the order they are prompted for; `--project` only for GCP. `--client-id`
# is asked for but may be left out: the OAuth app can be created after the stack file.
REQUIRED = ("stack", "cloud", "region", "domain", "contact_email", "github_org")
PROMPTED = (*REQUIRED, "client_id")

# A new stack's monthly budget (USD) when --budget is not given. The stack init writes idles at
# $81 (GCP, zonal) / $167 (AWS) a month and its ceiling, every pool at maxNodes, is $29,086 /
# $33,400 a month, $40-46 an hour (make plan, measured 2026-12-07). $1,000 is far above idle, so
# the 50% alert means real use, and about 3% of the ceiling: at full scale-out the budget is
# spent in about a day, so the alerts come the day a runaway starts, not with the month's bill
# (docs/howto/budget-alerts.md).
DEFAULT_BUDGET_USD = 1000

# The README's and the docs' placeholders, typed as they are: a stack built from them fails
# far later (an OAuth app that does not exist, a project nobody owns), so they are refused here.
PLACEHOLDERS = {
    "PROJECT", "YOUR-ORG", "ORG", "OAUTH_CLIENT_ID", "CLIENT_ID", "YOU", "ID", "NAME", "LOGIN",
    "DOMAIN", "HUB_DOMAIN", "EMAIL", "REGION", "ZONE", "ACCOUNT_ID", "BILLING_ACCOUNT", "VALUE",
    "hub.example.org", "you@example.org",
}  # fmt: skip
# What to type instead, per flag (said beside a placeholder).
WHAT_TO_TYPE = {
    "--stack": "a name of your own for the stack (letters, digits, - _ .)",
    "--project": "your GCP project's id (gcloud projects list)",
    "--account-id": "your AWS account's 12 digits (aws sts get-caller-identity)",
    "--domain": "the DNS name the hub will have, in a domain you control",
    "--contact-email": "an address you read (Let's Encrypt writes there)",
    "--github-org": "your GitHub organization (github.com/ORG), or ORG:TEAM",
    "--client-id": "your OAuth app's Client ID (its settings page; README, Quickstart step 2)",
    "--admin": "your own GitHub login",
    "--region": "a region of the cloud (us-central1, us-west-2)",
    "--zone": "a zone of the region (us-central1-b)",
    "--billing-account": "the project's billing account (gcloud billing projects describe PROJECT)",
    "--budget-email": "an address you read",
}

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
    "budget.billingAccount": "--billing-account",
    "budget.emails": "--budget-email",
    "budget": "--budget",
}
TOP_FLAGS = {
    "environment": "--environment",
    "hub.allowedOrganizations": "--github-org",
    "hub.adminUsers": "--admin",
    "hub.privilegedGroups": "--github-org",
    "(stack name)": "--stack",  # the resource names derive from it (pangeo_binder.naming)
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
    cloud["hub"] = {"domain": args.domain, "contactEmail": args.contact_email}
    if args.client_id:
        cloud["hub"]["github"] = {"clientId": args.client_id}
    cloud["budget"] = budget(args)
    hub: dict[str, Any] = {"namespace": "binder", "allowedOrganizations": list(args.github_org)}
    if args.admin:
        hub["adminUsers"] = list(args.admin)
    return {
        "environment": args.environment,
        "hub": hub,
        "clouds": {args.cloud: {k: v for k, v in cloud.items() if v is not None}},
    }


def budget(args: argparse.Namespace) -> dict[str, Any] | None:
    """The cloud's `budget`: alerts at 50/90/100/120% of the amount, emailed to
    --budget-email (else the contact email); none with --budget 0."""
    if not args.budget:
        return None
    emails = list(args.budget_email) or ([args.contact_email] if args.contact_email else [])
    entry: dict[str, Any] = {"monthlyUsd": args.budget}
    if args.cloud == "gcp":
        entry["billingAccount"] = args.billing_account
    entry["emails"] = emails
    return entry


def client_id_step(cloud: str, stack: str) -> str:
    """The command that puts the OAuth app's client id in the stack file, once it exists."""
    return (
        f"pulumi config set --path 'clouds.{cloud}.hub.github.clientId' --stack {stack} CLIENT_ID"
    )


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
    ]
    if "github" not in settings["hub"]:
        lines += [
            "# Missing: the GitHub OAuth app's client id (make preview stops until it is set):",
            f"#   {client_id_step(cloud, stack)}",
        ]
    lines += [
        "config:",
        f"  {NAMESPACE}:environment: {_flow(keys['environment'])}",
        *(
            # A new stack beside another of its environment must not take that one's names.
            [f"  {NAMESPACE}:resourceNames: stack"] if stack != keys["environment"] else []
        ),
        f"  {NAMESPACE}:hub:",
        *[f"    {key}: {_flow(value)}" for key, value in keys["hub"].items()],
        f"  {NAMESPACE}:clouds:",
        f"    {cloud}:",
    ]
    for key, value in settings.items():
        if key in ("nodePools", "hub", "budget"):
            lines.append(f"      {key}:")
            lines += [f"        {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"      {key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def check(text: str, stack: str | None = None) -> list[Problem]:
    """Every problem of a stack file's text under the config model, with the client secret
    (unknown yet) stood in for by a placeholder that is never written; `stack` is checked
    as the name the stack's resources take."""
    data = yaml.safe_load(text)["config"]
    raw = {key.split(":", 1)[1]: value for key, value in data.items()}
    raw["secrets"] = {
        cloud: {"githubClientSecret": PLACEHOLDER_SECRET} for cloud in raw.get("clouds", {})
    }
    try:
        load_config(raw, secret_keys={"secrets"}, stack=stack)
    except ConfigError as error:
        return error.problems
    return []


# How the hub's name points at `hubAddress` when the program does not write the record: one
# static IP on GCP; on AWS one Elastic IP per public subnet, comma-separated, each its own A
# record (aws/hub_address.py; smoke --diagnose checks the same).
DNS_RECORDS = {
    "gcp": "an A record for {domain} pointing at it",
    "aws": "one A record for {domain} per Elastic IP in it (comma-separated)",
}


def next_steps(stack: str, cloud: str, domain: str, *, client_id: bool = True) -> list[str]:
    """What to run after the file is written, in order (the README follows the same order);
    each command names the stack, so none falls back to another stack file."""
    bucket = {"gcp": "gs://STATE-BUCKET", "aws": "s3://STATE-BUCKET"}[cloud]
    app = (
        f"The GitHub OAuth app's callback URL must be https://{domain}/hub/oauth_callback."
        if client_id
        else "Create the GitHub OAuth app (GitHub: your organization's Settings > Developer "
        f"settings > OAuth Apps): Homepage URL https://{domain}, Authorization callback URL "
        f"https://{domain}/hub/oauth_callback; then {client_id_step(cloud, stack)}"
    )
    kubeconfig = f"kubeconfig-{stack}.json"
    return [
        "export PULUMI_CONFIG_PASSPHRASE=... (a passphrase you keep), then "
        f"make login STACK={stack}: it checks the CLIs and logins the stack needs and uses "
        f"the Pulumi backend you are logged in to (a team's: pulumi login {bucket} first), "
        "else a local file backend.",
        f"pulumi stack init {stack}",
        app,
        f"{secret_step(cloud, stack)}   (the app's client secret)",
        f"make preview STACK={stack}",
        f"make up STACK={stack}",
        f"DNS: automatic when clouds.{cloud}.hub.dns names a zone you have (add it before "
        f"make up STACK={stack}; docs/howto/https.md). Otherwise read hubAddress from "
        f"pulumi stack output {cloud} --stack {stack} and make "
        f"{DNS_RECORDS[cloud].format(domain=domain)}, then: "
        f"pulumi stack output {cloud}Kubeconfig --show-secrets --stack {stack} > {kubeconfig} "
        f"&& KUBECONFIG={kubeconfig} kubectl -n binder rollout restart deployment/autohttps",
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
    p.add_argument(
        "--client-id", help="the GitHub OAuth app's client id (may be set later: init says how)"
    )
    p.add_argument("--admin", action="append", default=[], help="a hub admin's GitHub login")
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_USD,
        help=f"monthly budget in USD with alerts at 50/90/100/120%% (default "
        f"{DEFAULT_BUDGET_USD}; 0: no budget)",
    )
    p.add_argument(
        "--budget-email",
        action="append",
        default=[],
        help="who gets the budget alerts; repeatable (default: --contact-email)",
    )
    p.add_argument(
        "--billing-account",
        help="gcp: the billing account of the project, for the budget (012345-6789AB-CDEF01)",
    )
    p.add_argument("--dir", type=Path, default=Path.cwd(), help="where to write (default: .)")
    return p


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def required(args: argparse.Namespace) -> list[str]:
    """The destinations of required flags not given (`--project` when the cloud is gcp, and
    `--billing-account` there too unless `--budget 0`)."""
    needed = list(REQUIRED) + (["project"] if args.cloud == "gcp" else [])
    if args.cloud == "gcp" and args.budget:
        needed.append("billing_account")
    return [dest for dest in needed if not getattr(args, dest)]


def prompt_missing(args: argparse.Namespace, ask: Callable[[str], str]) -> None:
    """Ask for each missing required value (a terminal is attached); the client id may be
    left empty, to be set later."""
    for dest in (*PROMPTED, "project", "billing_account"):
        if dest in ("project", "billing_account") and args.cloud != "gcp":
            continue
        if dest == "billing_account" and not args.budget:
            continue
        if getattr(args, dest):
            continue
        later = " (Enter: set it later)" if dest == "client_id" else ""
        answer = ask(f"{_flag(dest)}{later}: ").strip()
        if dest == "github_org":
            args.github_org = [org.strip() for org in answer.split(",") if org.strip()]
        else:
            setattr(args, dest, answer or None)


def _required_message(dest: str, args: argparse.Namespace) -> str:
    if dest == "billing_account":
        return (
            "--billing-account: required for the new stack's budget (gcloud billing projects "
            f"describe {args.project or 'PROJECT'} shows it), or --budget 0 for no budget"
        )
    return f"{_flag(dest)}: required; give {WHAT_TO_TYPE.get(_flag(dest), 'a value')}"


def placeholders(args: argparse.Namespace) -> dict[str, str]:
    """Flags given a placeholder from the README (`--project PROJECT`), with the message."""
    found: dict[str, str] = {}
    for dest, flag in (
        (dest, _flag(dest))
        for dest in (*PROMPTED, "project", "account_id", "zone", "admin", "billing_account")
    ):
        values = getattr(args, dest)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value.strip() in PLACEHOLDERS:
                found[flag] = (
                    f"{flag}: {value!r} is the README's placeholder; type "
                    f"{WHAT_TO_TYPE.get(flag, 'your own value')}"
                )
    for value in args.budget_email:
        if value in PLACEHOLDERS:
            found["--budget-email"] = (
                f"--budget-email: {value!r} is the README's placeholder; type an address you read"
            )
    return found


def problems_of(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """Every problem, as `--flag: message`, and the stack file's text when there are none."""
    found = [_required_message(dest, args) for dest in required(args)]
    placeheld = placeholders(args)
    found += placeheld.values()
    if args.budget < 0:
        found.append("--budget: a monthly amount in USD (1000), or 0 for no budget")
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
    # Flags already reported (missing or placeholders), and the client id when it comes later.
    skip = {_flag(dest) for dest in required(args)} | set(placeheld)
    if args.budget < 0:
        skip.add("--budget")
    if not args.budget_email:  # the budget's address is --contact-email's, reported there
        skip.add("--budget-email")
    for problem in check(text, args.stack):
        flag = flag_of(problem.path)
        later = not args.client_id and problem.path == f"clouds.{args.cloud}.hub.github"
        if flag not in skip and not later:
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
    steps = next_steps(args.stack, args.cloud, args.domain, client_id=bool(args.client_id))
    for number, step in enumerate(steps, start=1):
        print(f"  {number}. {step}")
    if args.budget:
        print(
            f"\nThe stack has a budget of ${args.budget:,.0f} a month with alerts to "
            f"{', '.join(budget(args)['emails'])} (--budget to change it, 0 for none; "
            "docs/howto/budget-alerts.md for the deployer's billing roles)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
