"""The plan as text (a terminal), Markdown (a pull request comment) or JSON (other tools).

Every format goes through `_scrubbed`, which replaces anything that was a secret in
the stack file once more, so no format can carry one even if a redaction rule missed it.
"""

from __future__ import annotations

import json
from typing import Any

from pangeo_binder.plan.build import public
from pangeo_binder.plan.runtime import PLACEHOLDER, SECRET

# GitHub refuses comment bodies over 65,536 characters, and the pull request workflow puts
# both stacks' plans in one comment (cut at 60,000): each stays under half of that.
MARKDOWN_BUDGET = 28_000


def _scrubbed(text: str, document: dict[str, Any]) -> str:
    for secret in [*document.get("_scrub", []), PLACEHOLDER]:
        if secret:
            text = text.replace(secret, SECRET)
    return text


def usd(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _cost_rows(cost: dict[str, Any], scope: str) -> list[tuple[str, str, str, str]]:
    return [
        (line["item"], f"{line['quantity']:g}", f"{line['unitUsd']:.4f}", usd(line["monthlyUsd"]))
        for line in cost["lines"]
        if line["scope"] == scope
    ]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def cell(value: str) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _tree_lines(resources: list[dict[str, str]]) -> list[str]:
    """The resources indented under their parent component."""
    children: dict[str, list[dict[str, str]]] = {}
    for r in resources:
        children.setdefault(r["parent"], []).append(r)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for r in children.get(parent, []):
            lines.append(f"{'  ' * depth}{r['name']}  ({r['type']})")
            if "/" not in r["type"]:  # a component (custom types carry a module path)
                walk(r["name"], depth + 1)

    walk("", 1)
    return lines


def warnings(document: dict[str, Any]) -> list[str]:
    """What the stack file lacks (a client secret), then one warning per unpriced item."""
    return [f"warning: {w}" for w in document.get("warnings", [])] + [
        f"warning: {cloud}: no price for {name}; left out of the totals"
        for cloud, block in document["clouds"].items()
        for name in block["cost"]["unpriced"]
    ]


def _kinds(resources: list[dict[str, Any]]) -> str:
    """Resource counts by provider module (`aws:iam`, `kubernetes:core`), most first."""
    counts: dict[str, int] = {}
    for r in resources:
        if "/" in r["type"]:  # components and providers are not counted
            package, module = r["type"].split(":")[:2]
            kind = f"{package}:{module.split('/')[0].split('.')[0]}"
            counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def summary(document: dict[str, Any]) -> list[str]:
    """What a reader needs before the detail: clouds, resources by kind and, with
    `--compare`, added/removed/changed, the idle and ceiling cost, policies and warnings.

    The plan is offline: which changes a provider makes by replacement is known only to
    `pulumi preview`, so changes are counted as changed."""
    clouds = document["clouds"]
    out = [f"clouds: {', '.join(clouds) or 'none'}"]
    idle = ceiling = 0.0
    for cloud, block in clouds.items():
        resources, cost = block["resources"], block["cost"]
        custom = sum("/" in r["type"] for r in resources)
        idle += cost["idleMonthlyUsd"]
        ceiling += cost["ceilingMonthlyUsd"]
        out += [
            f"{cloud}: {custom} resources, {len(resources) - custom} components, "
            f"{len(block['releases'])} Helm releases; idle {usd(cost['idleMonthlyUsd'])}, "
            f"ceiling {usd(cost['ceilingMonthlyUsd'])} a month",
            f"  by kind: {_kinds(resources) or 'none'}",
        ]
    unpriced = sum(len(block["cost"]["unpriced"]) for block in clouds.values())
    out.append(
        f"cost: idle {usd(idle)}, ceiling {usd(ceiling)} a month (list prices, 730 hours)"
        + (f"; {unpriced} items unpriced, left out" if unpriced else "")
    )
    delta = document.get("delta")
    if delta is not None:
        new = (
            f"the stack is new (no Pulumi.{document['stack']}.yaml at {delta['against']}): "
            if delta.get("newStack")
            else ""
        )
        out.append(
            f"change against {delta['against']}: {new}{len(delta['resourcesAdded'])} added, "
            f"{len(delta['resourcesRemoved'])} removed, {len(delta['resourcesChanged'])} "
            f"changed, {len(delta['valuesChanged'])} Helm values changed; idle "
            f"{usd(delta['idleMonthlyUsd'])}, ceiling {usd(delta['ceilingMonthlyUsd'])} a month"
        )
    found = (document.get("policies") or {}).get("violations")
    if found is not None:
        blocking = sum(v["enforcement"] == "mandatory" for v in found)
        out.append(f"policies: {blocking} mandatory, {len(found) - blocking} advisory violations")
    problems = warnings(document)
    out.append(f"warnings: {len(problems)}")
    return out + problems


def _policy_lines(document: dict[str, Any]) -> list[str]:
    """The policy violations (docs/reference/policies.md), mandatory ones first."""
    found = (document.get("policies") or {}).get("violations")
    if found is None:
        return []
    out = ["### Policies", ""]
    if not found:
        return [*out, "No policy violations.", ""]
    blocking = sum(v["enforcement"] == "mandatory" for v in found)
    out += [f"{blocking} mandatory (blocks the deploy), {len(found) - blocking} advisory.", ""]
    rows = [
        (
            v["enforcement"],
            v["policy"],
            v.get("cloud", ""),
            v["resource"]["type"],
            v["resource"]["name"],
            v["message"],
        )
        for v in found
    ]
    return [*out, *_table(("enforcement", "policy", "cloud", "type", "name", "message"), rows), ""]


def markdown(document: dict[str, Any]) -> str:
    out = [f"## Offline plan: stack `{document['stack']}`", ""]
    out += [*(f"- {line.strip()}" for line in summary(document)), ""]
    delta = document.get("delta")
    if delta is not None:
        out += [f"### Change against `{delta['against']}`", ""]
        if delta.get("newStack"):
            out += [
                f"New stack: `Pulumi.{document['stack']}.yaml` does not exist at "
                f"`{delta['against']}`; every resource is added.",
                "",
            ]
        out += _table(
            ("", "monthly change"),
            [
                ("idle", usd(delta["idleMonthlyUsd"])),
                ("ceiling (every pool at maxNodes)", usd(delta["ceilingMonthlyUsd"])),
            ],
        )
        rows = [("added", r["cloud"], r["type"], r["name"], "") for r in delta["resourcesAdded"]]
        rows += [
            ("removed", r["cloud"], r["type"], r["name"], "") for r in delta["resourcesRemoved"]
        ]
        rows += [
            ("changed", r["cloud"], r["type"], r["name"], ", ".join(r["inputs"]))
            for r in delta["resourcesChanged"]
        ]
        out += [""]
        if rows:
            out += _table(("change", "cloud", "type", "name", "inputs"), rows)
        else:
            out += ["No resource changes."]
        if delta["valuesChanged"]:
            out += ["", "Helm values changed:", ""]
            out += _table(
                ("cloud", "release", "path", "before", "after"),
                [
                    (v["cloud"], v["release"], v["path"], _short(v["before"]), _short(v["after"]))
                    for v in delta["valuesChanged"]
                ],
            )
        out += [""]
    out += _policy_lines(document)
    out += ["### Monthly cost (list prices, 730 hours)", ""]
    out += _table(
        ("cloud", "idle", "ceiling", "unpriced"),
        [
            (
                cloud,
                usd(block["cost"]["idleMonthlyUsd"]),
                usd(block["cost"]["ceilingMonthlyUsd"]),
                ", ".join(block["cost"]["unpriced"]) or "none",
            )
            for cloud, block in document["clouds"].items()
        ],
    )
    for cloud, block in document["clouds"].items():
        for scope in ("idle", "ceiling"):
            out += ["", f"<details><summary>{cloud} {scope} line items</summary>", ""]
            out += _table(
                ("item", "quantity", "USD/hour", "monthly"), _cost_rows(block["cost"], scope)
            )
            out += ["", "</details>"]
    # Optional blocks, in order, while the comment stays under GitHub's limit.
    extras: list[tuple[str, list[str]]] = []
    for cloud, block in document["clouds"].items():
        title = f"{cloud} resources ({len(block['resources'])})"
        rows = [(r["type"], r["name"], r["parent"]) for r in block["resources"]]
        extras.append((title, _table(("type", "name", "parent"), rows)))
    for cloud, block in document["clouds"].items():
        for release in block["releases"]:
            title = (
                f"{cloud} Helm values: {release['name']} ({release['chart']} {release['version']})"
            )
            values = json.dumps(release["values"], indent=2, sort_keys=True)
            extras.append((title, ["```json", values, "```"]))
    size = sum(len(line) + 1 for line in out)
    omitted = []
    for title, body in extras:
        block = ["", f"<details><summary>{title}</summary>", "", *body, "", "</details>"]
        length = sum(len(line) + 1 for line in block)
        if size + length > MARKDOWN_BUDGET:
            omitted.append(title)
            continue
        out += block
        size += length
    if omitted:
        out += [
            "",
            "Left out to fit a comment (see `make plan` or the JSON): " + "; ".join(omitted),
        ]
    return _scrubbed("\n".join(out) + "\n", document)


def text(document: dict[str, Any]) -> str:
    out = [f"Offline plan for stack {document['stack']}", "", "== summary =="]
    out += [f"  {line}" for line in summary(document)]
    delta = document.get("delta")
    if delta is not None and delta.get("newStack"):
        out += [f"  every resource below is added: {delta['against']} has no such stack"]
    out += ["", "(detail follows: resources, Helm values, cost lines, policies, change)"]
    for cloud, block in document["clouds"].items():
        out += ["", f"== {cloud} =="]
        out += _tree_lines(block["resources"])
        for release in block["releases"]:
            out += [
                "",
                f"  Helm release {release['name']} ({release['chart']} {release['version']}):",
            ]
            out += [
                "    " + line
                for line in json.dumps(release["values"], indent=2, sort_keys=True).splitlines()
            ]
        cost = block["cost"]
        for scope in ("idle", "ceiling"):
            total = cost[f"{scope}MonthlyUsd"]
            out += ["", f"  {scope}: {usd(total)} a month"]
            out += [
                f"    {item:<60} {q:>6} x {unit}/h = {monthly}"
                for item, q, unit, monthly in _cost_rows(cost, scope)
            ]
        if cost["unpriced"]:
            out += ["", "  unpriced: " + ", ".join(cost["unpriced"])]
    found = (document.get("policies") or {}).get("violations")
    if found is not None:
        out += ["", "== policies =="]
        out += [
            f"  {v['enforcement']} {v['policy']}: {v.get('cloud', '')} {v['resource']['type']} "
            f"{v['resource']['name']}: {v['message']}"
            for v in found
        ] or ["  no violations"]
    if delta is not None:
        out += ["", f"== change against {delta['against']} =="]
        if delta.get("newStack"):
            out += [f"  new stack: Pulumi.{document['stack']}.yaml is not in {delta['against']}"]
        idle, ceiling = usd(delta["idleMonthlyUsd"]), usd(delta["ceilingMonthlyUsd"])
        out += [f"  idle {idle}, ceiling {ceiling} a month"]
        out += [f"  + {r['cloud']} {r['type']} {r['name']}" for r in delta["resourcesAdded"]]
        out += [f"  - {r['cloud']} {r['type']} {r['name']}" for r in delta["resourcesRemoved"]]
        out += [
            f"  ~ {r['cloud']} {r['type']} {r['name']}: {', '.join(r['inputs'])}"
            for r in delta["resourcesChanged"]
        ]
        out += [
            f"  ~ {v['cloud']} values {v['release']} {v['path']}: "
            f"{_short(v['before'])} -> {_short(v['after'])}"
            for v in delta["valuesChanged"]
        ]
    return _scrubbed("\n".join(out) + "\n", document)


def as_json(document: dict[str, Any]) -> str:
    return _scrubbed(json.dumps(public(document), indent=2, sort_keys=False) + "\n", document)


RENDERERS = {"text": text, "markdown": markdown, "json": as_json}
