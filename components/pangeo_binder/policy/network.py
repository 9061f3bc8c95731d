"""The CNIs' own rules for NetworkPolicies: what GKE's Dataplane V2 (Cilium) and the EKS VPC
CNI's network policy agent do with a rule, where that differs from what the Kubernetes API
says it means. A rule that one of them reads differently passes every schema check and breaks
on a real cluster, so these are policy rules: previews and fork plans catch them.

They read every NetworkPolicy the program registers and the ones the JupyterHub chart (z2jh
4.4.0) renders from a release's values (`<component>.networkPolicy.egressAllowRules`,
`.egress`, `.ingress`; `templates/_helpers-netpol.tpl`). The sources are in
docs/reference/policies.md, "How each CNI reads a NetworkPolicy".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from typing import Any

from pangeo_binder.policy.rules import HELM_TYPES, Context, Resource, _get, _listed, rule

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

# Where pods and services live unless the stack says otherwise: RFC 1918. Both clouds' default
# ranges are in it (GKE pods 10.16.0.0/14 and services 10.20.0.0/20 here, the VPC CNI's pods in
# the VPC's range, EKS services 10.100.0.0/16 or 172.20.0.0/16), and a rule naming one of these
# ranges means "pods" whatever the cluster's ranges are.
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# EKS picks the service range itself when kubernetesNetworkConfig.serviceIpv4Cidr is unset
# (EKS API reference, KubernetesNetworkConfigRequest): one of these two.
EKS_DEFAULT_SERVICES = ("10.100.0.0/16", "172.20.0.0/16")
# The one in-cluster destination that is not a pod and has no selector: the Kubernetes API
# (EKS serves it from ENIs in the VPC, GKE from its control plane), on TCP 443.
KUBE_API_PORT = 443
# Link-local endpoints a pod may be allowed, and the ports each serves:
# - 169.254.169.254: the metadata server (GCE and EC2) on 80. On GKE Dataplane V2 policy is
#   evaluated before the metadata DNAT, so this is the address and port the rule must allow
#   (gke-labs/kube-agents #747, #777); port 53 is its resolver (Cloud DNS for GKE).
# - 169.254.169.252: the GKE metadata server daemon on 988, what the legacy dataplane
#   (iptables, Calico) evaluates after the DNAT (GKE's workload identity docs).
# - 169.254.170.23: the EKS Pod Identity Agent (a hostNetwork DaemonSet) on 80.
METADATA = "169.254.169.254"
GKE_METADATA_DAEMON = "169.254.169.252"
METADATA_ENDPOINTS = {
    METADATA: (80, 53),
    GKE_METADATA_DAEMON: (988,),
    "169.254.170.23": (80,),
}
LINK_LOCAL = ip_network("169.254.0.0/16")
DNS_PORTS = (53, "dns", "dns-tcp")  # CoreDNS's port names in the kube-dns Service
KUBE_SYSTEM = {"kubernetes.io/metadata.name": "kube-system"}
KUBE_DNS = {"k8s-app": "kube-dns"}  # on GKE's kube-dns and EKS's CoreDNS alike
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": KUBE_SYSTEM},
            "podSelector": {"matchLabels": KUBE_DNS},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
METADATA_RULE = {
    "to": [{"ipBlock": {"cidr": f"{METADATA}/32"}}],
    "ports": [{"port": 80, "protocol": "TCP"}],
}


# --- what the cluster will hold -------------------------------------------------------------


@dataclass(frozen=True)
class NetRule:
    """One ingress or egress rule: its peers (`to`/`from`; none is everyone) and ports (none is
    every port), and `where` it is written, for the message (`egress[2]` of a NetworkPolicy, or
    the values key of a chart that renders it)."""

    where: str
    direction: str  # ingress | egress
    peers: list[dict[str, Any]]
    ports: list[dict[str, Any]]
    fix: str = ""  # how to change it at `where`, when it is not the rule itself


@dataclass(frozen=True)
class NetPolicy:
    name: str  # "NetworkPolicy binder/dask-clusters", "z2jh's hub NetworkPolicy (values hub.)"
    rules: list[NetRule]


def _dict(value: Any) -> dict[str, Any]:
    """A map, or an empty one for anything else (a value unknown during a preview)."""
    return value if isinstance(value, dict) else {}


def _rules(spec: Any, name: str, prefix: str = "") -> list[NetRule]:
    spec, found = _dict(spec), []
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for index, item in enumerate(_listed(spec.get(direction))):
            item = _dict(item)
            found.append(
                NetRule(
                    f"{name} {prefix}{direction}[{index}]",
                    direction,
                    [p for p in _listed(item.get(peers_key)) if isinstance(p, dict)],
                    [p for p in _listed(item.get("ports")) if isinstance(p, dict)],
                )
            )
    return found


# z2jh 4.4.0's NetworkPolicies and the defaults of their `egressAllowRules` (values.yaml).
Z2JH_ALL = dict.fromkeys(
    (
        "cloudMetadataServer",
        "dnsPortsCloudMetadataServer",
        "dnsPortsKubeSystemNamespace",
        "dnsPortsPrivateIPs",
        "nonPrivateIPs",
        "privateIPs",
    ),
    True,
)
Z2JH_POLICIES = {
    "hub": Z2JH_ALL,
    "proxy.chp": Z2JH_ALL,
    "proxy.traefik": Z2JH_ALL,
    "singleuser": {**Z2JH_ALL, "cloudMetadataServer": False, "privateIPs": False},
}


DNS_FLAGS = ("dnsPortsCloudMetadataServer", "dnsPortsKubeSystemNamespace", "dnsPortsPrivateIPs")


def _z2jh_shortcuts(flags: dict[str, Any], ip: str) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """What `jupyterhub.networkPolicy.renderEgressRules` renders for the flags that are on, and
    which flags each rule comes from (one DNS rule for the three DNS flags, as the chart does)."""
    private = [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE]
    dns_peers = {
        "dnsPortsCloudMetadataServer": [{"ipBlock": {"cidr": f"{ip}/32"}}],
        "dnsPortsKubeSystemNamespace": [{"namespaceSelector": {"matchLabels": KUBE_SYSTEM}}],
        "dnsPortsPrivateIPs": private,
    }
    dns = [flag for flag in DNS_FLAGS if flags.get(flag)]
    if dns:
        peers = [peer for flag in dns for peer in dns_peers[flag]]
        yield dns, {"ports": DNS_RULE["ports"], "to": peers}
    rendered = {
        "nonPrivateIPs": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE, f"{ip}/32"]}}],
        "privateIPs": private,
        "cloudMetadataServer": [{"ipBlock": {"cidr": f"{ip}/32"}}],
    }
    for flag, peers in rendered.items():
        if flags.get(flag):
            yield [flag], {"to": peers}


class _Unknown(Exception):
    """A value the rules cannot read (unknown during a preview): they judge what they can."""


def _known(value: Any, *path: str) -> dict[str, Any]:
    """The map at `path` ({} where a key is absent); _Unknown where a step is not a map."""
    for key in path:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Unknown
        value = value.get(key)
    if value is not None and not isinstance(value, dict):
        raise _Unknown
    return value or {}


def z2jh_policies(r: Resource) -> list[NetPolicy]:
    """The NetworkPolicies a jupyterhub release renders, from its values and z2jh's defaults;
    none from a component whose values are not known yet."""
    values = r.inputs.get("values") or {}
    if not isinstance(values, dict):
        return []
    ip = str(_get(values, "singleuser", "cloudMetadata", "ip") or METADATA)
    https = _dict(_get(values, "proxy", "https"))
    autohttps = bool(
        https.get("enabled") and https.get("type", "letsencrypt") == "letsencrypt"
    ) and bool(https.get("hosts"))
    found = []
    for path, defaults in Z2JH_POLICIES.items():
        if path == "proxy.traefik" and not autohttps:
            continue
        try:
            netpol = _known(values, *path.split("."), "networkPolicy")
            given = _known(netpol, "egressAllowRules")
        except _Unknown:
            continue
        if netpol.get("enabled", True) is False:
            continue
        name = f"{r.name}'s {path} NetworkPolicy (values {path}.networkPolicy)"
        flags = {**defaults, **given}
        rules = []
        for on, item in _z2jh_shortcuts(flags, ip):
            keys = ", ".join(on)
            defaulted = [flag for flag in on if flag not in given]
            note = (
                ""
                if not defaulted
                else " (on by z2jh's default)"
                if defaulted == on
                else f" ({', '.join(defaulted)} on by z2jh's default)"
            )
            rules.append(
                NetRule(
                    f"{r.name}: {path}.networkPolicy.egressAllowRules {keys}{note}",
                    "egress",
                    item["to"],
                    item.get("ports", []),
                    fix=f"set {keys} false under {path}.networkPolicy.egressAllowRules and "
                    f"write the rule meant in {path}.networkPolicy.egress",
                )
            )
        rules += _rules(
            {"ingress": netpol.get("ingress"), "egress": netpol.get("egress")},
            f"{r.name}:",
            f"{path}.networkPolicy.",
        )
        found.append(NetPolicy(name, rules))
    return found


def policies_of(r: Resource) -> list[NetPolicy]:
    """The NetworkPolicies `r` puts in the cluster: itself, or what its chart renders."""
    if r.type == NETWORK_POLICY:
        meta = _dict(r.inputs.get("metadata"))
        name = f"NetworkPolicy {meta.get('namespace', 'default')}/{meta.get('name', r.name)}"
        return [NetPolicy(name, _rules(r.inputs.get("spec"), name))]
    if r.type in HELM_TYPES and str(r.inputs.get("chart", "")).endswith("jupyterhub"):
        return z2jh_policies(r)
    return []


# --- addresses as integer spans -------------------------------------------------------------

Span = tuple[int, int]


def _net(cidr: Any) -> IPv4Network | None:
    try:
        net = ip_network(str(cidr), strict=False)
    except ValueError:
        return None
    return net if isinstance(net, IPv4Network) else None  # IPv6: neither cluster has it


def _span(net: IPv4Network) -> Span:
    return int(net.network_address), int(net.broadcast_address)


def _minus(spans: list[Span], cut: Span) -> list[Span]:
    out = []
    for low, high in spans:
        if cut[1] < low or cut[0] > high:
            out.append((low, high))
            continue
        if low < cut[0]:
            out.append((low, cut[0] - 1))
        if cut[1] < high:
            out.append((cut[1] + 1, high))
    return out


def block_spans(block: Any) -> list[Span]:
    """The addresses an ipBlock matches: its cidr without its `except` ranges."""
    block = _dict(block)
    net = _net(block.get("cidr"))
    if net is None:
        return []
    spans = [_span(net)]
    for cut in _listed(block.get("except")):
        cut_net = _net(cut)
        if cut_net is not None:
            spans = _minus(spans, _span(cut_net))
    return spans


def _meets(spans: Iterable[Span], net: IPv4Network) -> bool:
    low, high = _span(net)
    return any(a <= high and low <= b for a, b in spans)


def _contains(spans: Iterable[Span], address: str) -> bool:
    return _meets(spans, ip_network(f"{address}/32"))


def _allows_port(ports: list[dict[str, Any]], port: int | str, protocol: str = "TCP") -> bool:
    """Whether a rule's ports admit `port` (a number or a name) over `protocol`; no ports is
    every port."""
    if not ports:
        return True
    for entry in ports:
        if str(entry.get("protocol") or "TCP").upper() != protocol:
            continue
        given = entry.get("port")
        if given is None or str(given) == str(port):
            return True
        end = entry.get("endPort")
        if isinstance(port, int) and isinstance(given, int) and end and given <= port <= end:
            return True
    return False


def _is_dns(rule: NetRule) -> bool:
    return bool(rule.ports) and any(
        _allows_port(rule.ports, port, protocol)
        for port in DNS_PORTS
        for protocol in ("UDP", "TCP")
    )


def _only_kube_api(rule: NetRule) -> bool:
    return (
        rule.direction == "egress"
        and bool(rule.ports)
        and all(
            p.get("port") == KUBE_API_PORT
            and str(p.get("protocol") or "TCP").upper() == "TCP"
            and not p.get("endPort")
            for p in rule.ports
        )
    )


def _show(value: Any) -> str:
    return repr(value).replace("'", '"')


# --- the stack's in-cluster ranges ----------------------------------------------------------


def cluster_ranges(resources: Iterable[Resource]) -> tuple[tuple[str, str], ...]:
    """(cidr, what) of every address range pods, services and nodes get, as the stack's
    resources configure them (gcp/cluster.py's subnet and its secondary ranges, aws/network.py's
    VPC, the EKS cluster's service range), after RFC 1918."""
    found = [(cidr, "a private range (RFC 1918)") for cidr in PRIVATE]
    for r in resources:
        i = r.inputs
        if r.type == "gcp:compute/subnetwork:Subnetwork":
            found.append((str(i.get("ipCidrRange")), "GKE nodes"))
            for secondary in map(_dict, _listed(i.get("secondaryIpRanges"))):
                what = f"GKE {secondary.get('rangeName', 'secondary range')}"
                found.append((str(secondary.get("ipCidrRange")), what))
        elif r.type == "aws:ec2/vpc:Vpc":
            found.append((str(i.get("cidrBlock")), "the VPC (EKS nodes and VPC CNI pods)"))
        elif r.type == "aws:eks/cluster:Cluster":
            services = _get(i, "kubernetesNetworkConfig", "serviceIpv4Cidr")
            for cidr in _listed(services) or EKS_DEFAULT_SERVICES:
                found.append((str(cidr), "EKS services"))
    return tuple((cidr, what) for cidr, what in dict.fromkeys(found) if _net(cidr) is not None)


# --- the rules ------------------------------------------------------------------------------


@rule(
    "netpol-pods-by-selector",
    "mandatory",
    "No NetworkPolicy rule (registered, or rendered by the JupyterHub chart from its values) "
    "has an ipBlock that matches pod, service or node addresses: the cluster's own ranges "
    "and RFC 1918. Pods are reached by podSelector/namespaceSelector. Allowed: link-local "
    "addresses (the metadata servers), the Kubernetes API (an egress rule on TCP 443 only), and "
    "the internet as 0.0.0.0/0 whose `except` removes every in-cluster range.",
    "project rule (Cilium's Kubernetes compatibility notes, cilium/cilium#9209)",
    "GKE's Dataplane V2 (Cilium) never matches an ipBlock against a pod, while the EKS agent "
    "does: the same rule is open on one cloud and silently closed on the other, and a "
    "schema check cannot tell.",
    needs_stack=True,
)
def pods_by_selector(r: Resource, ctx: Context) -> Iterator[str]:
    ranges = [(cidr, what, _net(cidr)) for cidr, what in ctx.cluster_ranges or cluster_ranges([])]
    for policy in policies_of(r):
        for item in policy.rules:
            if _only_kube_api(item) or (item.direction == "egress" and _is_dns(item)):
                continue  # the API server's exception; DNS rules have their own rule
            blocks, hits, internet = [], {}, False
            for peer in item.peers:
                block = peer.get("ipBlock")
                if not isinstance(block, dict):
                    continue
                spans = block_spans(block)
                hit = [(c, w) for c, w, net in ranges if net is not None and _meets(spans, net)]
                if hit:
                    blocks.append(str(block.get("cidr")))
                    hits.update(hit)
                    net = _net(block.get("cidr"))
                    internet = internet or (net is not None and net.prefixlen == 0)
            if not blocks:
                continue
            own = {c: w for c, w in hits.items() if c not in PRIVATE} or hits
            covered = ", ".join(f"{c} ({w})" for c, w in own.items())
            if internet:
                private = [_net(c) for c in hits if c in PRIVATE]
                missing = [
                    c
                    for c in hits
                    if c in PRIVATE or not any(_net(c).subnet_of(n) for n in private)
                ]
                instead = f"add {', '.join(missing)} to its except"
            else:
                instead = (
                    "reach pods by podSelector/namespaceSelector (an ipBlock is for addresses "
                    f"outside the cluster; the Kubernetes API is allowed on TCP {KUBE_API_PORT} "
                    "alone)"
                )
            fix = f"; {item.fix}" if item.fix else ""
            yield (
                f"{item.where}: ipBlock {', '.join(blocks)} covers in-cluster addresses "
                f"{covered}, which Dataplane V2 never matches against pods while the EKS "
                f"agent does: {instead}{fix}"
            )


@rule(
    "netpol-metadata-as-cni-sees-it",
    "mandatory",
    "A NetworkPolicy that lets pods reach GKE's metadata server daemon (169.254.169.252:988) "
    "also allows 169.254.169.254/32 on TCP 80; a rule to a metadata address allows a port "
    "that address serves (169.254.169.254: 80, or 53 for DNS; 169.254.169.252: 988; the EKS "
    "Pod Identity Agent 169.254.170.23: 80).",
    "project rule (gke-labs/kube-agents #747, #777; GKE workload identity docs)",
    "Dataplane V2 evaluates egress before the metadata DNAT, so a policy allowing only the "
    "post-NAT 169.254.169.252:988 drops every token request: workload identity (bucket "
    "access, image pushes) fails at run time, with nothing in the preview.",
)
def metadata_as_cni_sees_it(r: Resource, ctx: Context) -> Iterator[str]:
    for policy in policies_of(r):
        egress = [item for item in policy.rules if item.direction == "egress"]
        pre_nat = any(
            _allows_port(item.ports, 80)
            and (
                not item.peers
                or any(_contains(block_spans(p.get("ipBlock")), METADATA) for p in item.peers)
            )
            for item in egress
        )
        for item in egress:
            for peer in item.peers:
                net = _net(_get(peer, "ipBlock", "cidr"))
                if net is None or not net.subnet_of(LINK_LOCAL):
                    continue  # not meant for a metadata address
                spans = block_spans(peer["ipBlock"])
                if _contains(spans, GKE_METADATA_DAEMON) and not pre_nat:
                    yield (
                        f"{item.where}: allows {GKE_METADATA_DAEMON} (the metadata daemon after "
                        f"the DNAT) but no egress rule of {policy.name} allows {METADATA}/32 on "
                        "TCP 80, which Dataplane V2 evaluates before the DNAT: add the egress "
                        f"rule {_show(METADATA_RULE)}"
                    )
                for address, ports in METADATA_ENDPOINTS.items():
                    if not _contains(spans, address) or net.prefixlen < 30:
                        continue  # a broad link-local range is not a rule for one endpoint
                    if not any(
                        _allows_port(item.ports, p, proto)
                        for p in ports
                        for proto in ("TCP", "UDP")
                    ):
                        given = [p.get("port") for p in item.ports]
                        yield (
                            f"{item.where}: allows {address} only on ports {given}, where it "
                            f"serves {', '.join(map(str, ports))}: nothing there answers"
                        )


def _selects(selector: Any, labels: dict[str, str]) -> bool:
    """Whether a label selector is exactly `matchLabels` holding `labels` (no expressions)."""
    if not isinstance(selector, dict) or selector.get("matchExpressions"):
        return False
    given = selector.get("matchLabels") or {}
    return all(given.get(key) == value for key, value in labels.items())


def _dns_peer_problem(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return f"to ipBlock {_get(peer, 'ipBlock', 'cidr')}"
    if not _selects(peer.get("namespaceSelector"), KUBE_SYSTEM):
        return "to pods outside kube-system (no namespaceSelector kube-system)"
    if not _selects(peer.get("podSelector"), KUBE_DNS):
        return "to every pod of kube-system (no podSelector k8s-app: kube-dns)"
    return ""


@rule(
    "netpol-dns-to-kube-dns",
    "mandatory",
    "Every egress rule that allows port 53 (registered, or rendered by the JupyterHub chart "
    "from its values) is `to` kube-dns by selector: namespaceSelector "
    "`kubernetes.io/metadata.name: kube-system` with podSelector `k8s-app: kube-dns`, never "
    "a port-only rule, an ipBlock or a whole namespace.",
    "project rule (aws/amazon-network-policy-controller-k8s #146, #121)",
    "The EKS policy agent drops DNS allowed by a port-only rule beside a `0.0.0.0/0 except "
    "private` rule (#146, open), and Dataplane V2 never matches an ipBlock against kube-dns "
    "pods: every name lookup of the pods it selects fails.",
)
def dns_to_kube_dns(r: Resource, ctx: Context) -> Iterator[str]:
    for policy in policies_of(r):
        for item in policy.rules:
            if item.direction != "egress" or not _is_dns(item):
                continue
            if not item.peers:
                problems = ["to every address (a port-only rule)"]
            else:
                problems = [p for p in map(_dns_peer_problem, item.peers) if p]
            if not problems:
                continue
            instead = item.fix or "write instead"
            yield (f"{item.where}: allows DNS {'; '.join(problems)}: {instead}: {_show(DNS_RULE)}")
