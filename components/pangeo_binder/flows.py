"""The flow matrix (`data/flows.yaml`): every connection the platform needs and every one it
must never make, as data, with the upstream file that says so.

Sources and destinations are roles: pods named by namespace and label selector (the hub's
proxy, a user's server, a Dask worker), or an address outside the pod network (the metadata
server, the internet). The namespaces are symbolic (`hub`, `public`, `support`, `kube-system`):
a stack maps them to its own names. Nothing here reads Kubernetes or Pulumi: the tests
(tests/flow_analysis.py) judge the matrix with network-config-analyzer over every
NetworkPolicy the program registers and its charts render, and docs/reference/flows.md is
generated from it.

    matrix = load()
    for flow in matrix.needed:
        print(flow.source.name, "->", flow.destination.name, flow.ports, flow.protocols)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml

# Who makes a role's pods: a chart release (the rendered workloads), the program itself (the
# backup CronJob), KubeSpawner (user servers), the gateway's Kubernetes backend (schedulers,
# workers), BinderHub (build pods), or the cluster itself (kube-dns). `any` is every pod of
# its namespace (a forbidden flow's "anything there").
MADE_BY: tuple[str, ...] = (
    "chart",
    "program",
    "kubespawner",
    "dask-gateway",
    "binderhub",
    "cluster",
    "any",
)
NAMESPACES: tuple[str, ...] = ("hub", "public", "support", "kube-system")
PROTOCOLS: tuple[str, ...] = ("TCP", "UDP")
CLOUDS: tuple[str, ...] = ("gcp", "aws")
ALL_PORTS = (1, 65535)


class FlowsError(ValueError):
    """An entry of flows.yaml that cannot be read, named by its place in the file."""


@dataclass(frozen=True)
class Role:
    """Pods (namespace + selector) or an address (CIDR with exceptions)."""

    name: str
    description: str
    upstream: str
    namespace: str = ""
    selector: Mapping[str, Any] | None = None  # a Kubernetes label selector
    made_by: str = ""
    release: str = ""  # the Helm release that makes or configures its pods, where it matters
    blocks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (cidr, except) pairs

    @property
    def is_address(self) -> bool:
        return bool(self.blocks)

    def labels(self) -> dict[str, str]:
        """The selector's matchLabels: the labels of the pods this role stands for when the
        pods are made from the role itself (build pods, kube-dns)."""
        return dict((self.selector or {}).get("matchLabels", {}))


@dataclass(frozen=True)
class Flow:
    """One connection: `source` opens it to `destination` on `ports` over `protocols`."""

    kind: Literal["needed", "forbidden"]
    source: Role
    destination: Role
    ports: tuple[tuple[int, int], ...]  # inclusive ranges
    protocols: tuple[str, ...]
    why: str
    upstream: str
    clouds: tuple[str, ...] = CLOUDS

    @property
    def name(self) -> str:
        """A stable id: `needed: proxy -> hub 8081/TCP`."""
        return f"{self.kind}: {self.source.name} -> {self.destination.name} {self.port_text()}"

    def port_text(self) -> str:
        ports = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ports)
        if self.ports == (ALL_PORTS,):
            ports = "any port"
        return f"{ports}/{'+'.join(self.protocols)}"

    def namespaces(self) -> set[str]:
        return {r.namespace for r in (self.source, self.destination) if not r.is_address}

    def releases(self) -> set[tuple[str, str]]:
        """(namespace, release) pairs the flow's ends need installed to exist at all."""
        return {(r.namespace, r.release) for r in (self.source, self.destination) if r.release}


@dataclass(frozen=True)
class Matrix:
    roles: Mapping[str, Role]
    needed: tuple[Flow, ...]
    forbidden: tuple[Flow, ...]

    @property
    def flows(self) -> tuple[Flow, ...]:
        return self.needed + self.forbidden


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FlowsError(f"{where}.{key}: required, a non-empty string")
    return " ".join(value.split())


def _role(name: str, entry: Any) -> Role:
    where = f"roles.{name}"
    if not isinstance(entry, dict):
        raise FlowsError(f"{where}: a mapping, got {entry!r}")
    keys = set(entry)
    common = {"description", "upstream"}
    if "address" in entry:
        allowed = common | {"address"}
        if keys - allowed:
            raise FlowsError(f"{where}: unknown keys {sorted(keys - allowed)}")
        address = entry["address"]
        if not isinstance(address, list) or not address:
            raise FlowsError(f"{where}.address: a list of {{cidr, except}} blocks")
        blocks = []
        for number, block in enumerate(address):
            if not isinstance(block, dict) or not isinstance(block.get("cidr"), str):
                raise FlowsError(f"{where}.address[{number}]: needs cidr (and optionally except)")
            if set(block) - {"cidr", "except"}:
                raise FlowsError(f"{where}.address[{number}]: only cidr and except")
            excluding = block.get("except", [])
            if not isinstance(excluding, list) or not all(isinstance(e, str) for e in excluding):
                raise FlowsError(f"{where}.address[{number}].except: a list of CIDRs")
            blocks.append((block["cidr"], tuple(excluding)))
        return Role(
            name,
            _text(entry, "description", where),
            _text(entry, "upstream", where),
            blocks=tuple(blocks),
        )
    allowed = common | {"namespace", "selector", "madeBy", "release"}
    if keys - allowed:
        raise FlowsError(f"{where}: unknown keys {sorted(keys - allowed)}")
    namespace = entry.get("namespace")
    if namespace not in NAMESPACES:
        raise FlowsError(f"{where}.namespace: one of {list(NAMESPACES)}, got {namespace!r}")
    made_by = entry.get("madeBy")
    if made_by not in MADE_BY:
        raise FlowsError(f"{where}.madeBy: one of {list(MADE_BY)}, got {made_by!r}")
    selector = entry.get("selector", {})
    if not isinstance(selector, dict) or set(selector) - {"matchLabels", "matchExpressions"}:
        raise FlowsError(f"{where}.selector: a label selector (matchLabels, matchExpressions)")
    if made_by != "any" and not selector.get("matchLabels"):
        raise FlowsError(f"{where}.selector.matchLabels: required unless madeBy is any")
    release = entry.get("release", "")
    if not isinstance(release, str):
        raise FlowsError(f"{where}.release: a Helm release name")
    return Role(
        name,
        _text(entry, "description", where),
        _text(entry, "upstream", where),
        namespace=namespace,
        selector=selector,
        made_by=made_by,
        release=release,
    )


def _ports(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    if value == "any":
        return (ALL_PORTS,)
    if not isinstance(value, list) or not value:
        raise FlowsError(f"{where}.ports: `any` or a list of ports and 'low-high' ranges")
    ranges = []
    for item in value:
        low, _, high = str(item).partition("-")
        try:
            pair = (int(low), int(high or low))
        except ValueError:
            raise FlowsError(f"{where}.ports: {item!r} is not a port or a range") from None
        if not 1 <= pair[0] <= pair[1] <= 65535:
            raise FlowsError(f"{where}.ports: {item!r} is outside 1-65535")
        ranges.append(pair)
    return tuple(ranges)


def _names(value: Any, roles: Mapping[str, Role], where: str) -> list[Role]:
    names = value if isinstance(value, list) else [value]
    found = []
    for name in names:
        if name not in roles:
            raise FlowsError(f"{where}: unknown role {name!r} (roles: {', '.join(sorted(roles))})")
        found.append(roles[name])
    return found


def _flows(
    kind: Literal["needed", "forbidden"], entries: Any, roles: Mapping[str, Role]
) -> list[Flow]:
    if not isinstance(entries, list):
        raise FlowsError(f"{kind}: a list of flows")
    flows: list[Flow] = []
    for index, entry in enumerate(entries):
        where = f"{kind}[{index}]"
        if not isinstance(entry, dict):
            raise FlowsError(f"{where}: a mapping, got {entry!r}")
        where = f"{where} ({entry.get('from')} -> {entry.get('to')})"
        allowed = {"from", "to", "ports", "protocol", "why", "upstream", "clouds"}
        if set(entry) - allowed:
            raise FlowsError(f"{where}: unknown keys {sorted(set(entry) - allowed)}")
        protocols = entry.get("protocol", "TCP")
        protocols = protocols if isinstance(protocols, list) else [protocols]
        if not protocols or any(p not in PROTOCOLS for p in protocols):
            raise FlowsError(f"{where}.protocol: {list(PROTOCOLS)} or a list of them")
        clouds = entry.get("clouds", list(CLOUDS))
        if not isinstance(clouds, list) or not clouds or set(clouds) - set(CLOUDS):
            raise FlowsError(f"{where}.clouds: a list of {list(CLOUDS)}")
        sources = _names(entry.get("from"), roles, f"{where}.from")
        destinations = _names(entry.get("to"), roles, f"{where}.to")
        ports = _ports(entry.get("ports"), where)
        for source in sources:
            if source.is_address:
                raise FlowsError(f"{where}.from: {source.name} is an address, not pods")
            for destination in destinations:
                flows.append(
                    Flow(
                        kind,
                        source,
                        destination,
                        ports,
                        tuple(protocols),
                        _text(entry, "why", where),
                        _text(entry, "upstream", where),
                        tuple(clouds),
                    )
                )
    names = [flow.name for flow in flows]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise FlowsError(f"{kind}: listed twice: {twice}")
    return flows


def parse(data: Any) -> Matrix:
    """The matrix from flows.yaml's parsed content; FlowsError names the first bad entry."""
    if not isinstance(data, dict) or set(data) != {"roles", "needed", "forbidden"}:
        raise FlowsError("flows.yaml: exactly the keys roles, needed and forbidden")
    if not isinstance(data["roles"], dict):
        raise FlowsError("roles: a mapping of role name to role")
    roles = {name: _role(name, entry) for name, entry in data["roles"].items()}
    needed = _flows("needed", data["needed"], roles)
    forbidden = _flows("forbidden", data["forbidden"], roles)
    return Matrix(roles, tuple(needed), tuple(forbidden))


def load(text: str | None = None) -> Matrix:
    """The packaged matrix (or `text`, a flows.yaml of one's own)."""
    if text is None:
        text = resources.files("pangeo_binder").joinpath("data", "flows.yaml").read_text()
    return parse(yaml.safe_load(text))


def used_roles(flows: Sequence[Flow]) -> set[str]:
    return {role.name for flow in flows for role in (flow.source, flow.destination)}


# --- the reference page (docs/reference/flows.md) ------------------------------------------

HEADER = """# Flow reference

Generated from `components/pangeo_binder/data/flows.yaml` by `python -m pangeo_binder.flows`;
do not edit by hand. Every connection the platform needs and every one it must never make,
with the reason and the upstream file (at our pins) that says so. `tests/test_flows.py`
judges the whole matrix with IBM's network-config-analyzer over every NetworkPolicy the
program registers and its charts render, on both stacks and both clouds, with the rendered
pods and the ones made at run time (KubeSpawner's user servers, the gateway's schedulers and
workers, BinderHub's builds): each needed flow permitted, each forbidden one forbidden. The
analyzer keeps pods and IP blocks apart, as GKE's Dataplane V2 does, so every in-cluster
route must name pods by selector. One thing it cannot show: the EKS policy agent also matches
pods with private `ipBlock` ranges, so there a private-range rule (z2jh's DNS and 443 ones)
may allow more than the verdicts say. Why the namespaces are fenced:
[architecture](../explanation/architecture.md).

Namespaces: `hub` is the authenticated hub's (`hub.namespace`, `binder`), `public` the public
Binder's (`publicBinder.namespace`, staging only), `support` the monitoring one. A flow with
an end in a namespace a stack lacks, or made by a release it does not install (the public
Binder's Dask gateway, `publicBinder.dask`), is not judged there; the suite also judges
staging with the public gateway on.
"""


# Addresses in the matrix's prose (http://hub:8081, hub.<ns>.svc) are code on the page, not
# links, and their angle brackets are not HTML.
_ADDRESS = re.compile(r"[a-z]+://[^\s,;)]+|[\w./:-]*<[\w-]+>[\w./:-]*")


def _cell(text: str) -> str:
    return _ADDRESS.sub(lambda m: f"`{m.group(0)}`", text).replace("|", "\\|")


def _where(role: Role) -> str:
    if role.is_address:
        return ", ".join(
            cidr + (f" except {', '.join(excluding)}" if excluding else "")
            for cidr, excluding in role.blocks
        )
    selector = role.selector or {}
    parts = [f"{k}={v}" for k, v in selector.get("matchLabels", {}).items()]
    parts += [
        f"{e['key']} {e['operator']} ({', '.join(e.get('values', []))})"
        for e in selector.get("matchExpressions", [])
    ]
    return f"`{role.namespace}`: " + (", ".join(f"`{p}`" for p in parts) or "every pod")


def _table(found: Sequence[Flow]) -> list[str]:
    lines = ["| from | to | port | clouds | why | upstream |", "|---|---|---|---|---|---|"]
    for flow in found:
        clouds = ", ".join(flow.clouds)
        lines.append(
            f"| {flow.source.name} | {flow.destination.name} | {flow.port_text()} | {clouds} "
            f"| {_cell(flow.why)} | {_cell(flow.upstream)} |"
        )
    return lines


def render(matrix: Matrix | None = None) -> str:
    """docs/reference/flows.md from the matrix."""
    matrix = matrix or load()
    lines = [HEADER, "## Needed", "", *_table(matrix.needed), "", "## Forbidden", ""]
    lines += [*_table(matrix.forbidden), "", "## Roles", ""]
    lines += ["| role | made by | pods or addresses | what | upstream |", "|---|---|---|---|---|"]
    for role in matrix.roles.values():
        made_by = role.made_by or "address"
        lines.append(
            f"| {role.name} | {made_by} | {_cell(_where(role))} | {_cell(role.description)} "
            f"| {_cell(role.upstream)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
