"""The CNIs' rules (pangeo_binder.policy.network) on synthetic NetworkPolicies and z2jh values:
each flags the shape a real cluster breaks on, naming the policy, the rule and what to write,
and passes the shape that works; and the program's own stacks pass them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import ROOT
from pangeo_binder.plan import build
from pangeo_binder.plan.render import RENDERERS
from pangeo_binder.policy.check import check_plan
from pangeo_binder.policy.network import (
    DNS_RULE,
    METADATA_RULE,
    Z2JH_ALL,
    cluster_ranges,
    policies_of,
)
from pangeo_binder.policy.rules import Context, Resource, check_stack

PODS = "netpol-pods-by-selector"
METADATA = "netpol-metadata-as-cni-sees-it"
DNS = "netpol-dns-to-kube-dns"
GKE_DAEMON = {
    "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
    "ports": [{"port": 988, "protocol": "TCP"}],
}
INTERNET = {
    "to": [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
            }
        }
    ]
}
KUBE_API = {
    "to": [{"ipBlock": {"cidr": c}} for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")],
    "ports": [{"port": 443, "protocol": "TCP"}],
}
TO_PODS = {
    "to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
    "ports": [{"port": 8081}],
}
# A GKE subnet whose pods use carrier-grade NAT addresses (outside RFC 1918), as GKE allows.
CGNAT_SUBNET = Resource(
    "gcp:compute/subnetwork:Subnetwork",
    "gcp-gke-subnet",
    {
        "ipCidrRange": "10.0.0.0/20",
        "secondaryIpRanges": [
            {"rangeName": "pods", "ipCidrRange": "100.64.0.0/14"},
            {"rangeName": "services", "ipCidrRange": "10.20.0.0/20"},
        ],
    },
)


def netpol(egress: list[Any] = (), ingress: list[Any] = (), name: str = "web") -> Resource:
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    spec |= {"egress": list(egress), "ingress": list(ingress)}
    return Resource(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        f"gcp-{name}",
        {"metadata": {"name": name, "namespace": "binder"}, "spec": spec},
    )


def z2jh(values: dict[str, Any]) -> Resource:
    return Resource(
        "kubernetes:helm.sh/v4:Chart",
        "gcp-hub-jupyterhub",
        {"chart": "jupyterhub", "version": "4.4.0", "namespace": "binder", "values": values},
    )


def flagged(rule: str, *resources: Resource) -> list[str]:
    return [v.message for v in check_stack(list(resources), Context()) if v.policy == rule]


# z2jh values with every shortcut off but what each component needs, DNS by selector.
CLOSED = dict.fromkeys(Z2JH_ALL, False)


def closed_z2jh(**extra: Any) -> dict[str, Any]:
    policy = {"egressAllowRules": dict(CLOSED), "egress": [DNS_RULE]}
    return {
        "hub": {"networkPolicy": {**policy, "egress": [DNS_RULE, KUBE_API]}},
        "proxy": {"chp": {"networkPolicy": policy}},
        "singleuser": {"networkPolicy": {**policy, "egress": [DNS_RULE, INTERNET]}},
        **extra,
    }


# --- pods by selector ---------------------------------------------------------------------


def test_an_ipblock_over_the_pod_range_is_flagged_naming_policy_and_rule() -> None:
    bad = netpol([TO_PODS, {"to": [{"ipBlock": {"cidr": "10.16.0.0/14"}}]}])
    [message] = flagged(PODS, bad)
    assert message.startswith("NetworkPolicy binder/web egress[1]: ipBlock 10.16.0.0/14")
    assert "podSelector/namespaceSelector" in message
    [message] = flagged(PODS, netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]))
    assert message.startswith("NetworkPolicy binder/web ingress[0]: ipBlock 10.0.0.0/8")


def test_selectors_link_local_the_api_server_and_the_internet_pass() -> None:
    good = netpol([TO_PODS, INTERNET, METADATA_RULE, GKE_DAEMON, KUBE_API, DNS_RULE])
    assert flagged(PODS, good) == []
    # the API server's exception is 443 alone: another port to the same ranges is pods
    other = {**KUBE_API, "ports": [{"port": 443}, {"port": 8443}]}
    assert flagged(PODS, netpol([other]))


def test_the_internet_rule_must_except_the_stacks_own_ranges() -> None:
    """The ranges come from the stack: a pod range outside RFC 1918 must be in the except."""
    assert flagged(PODS, netpol([INTERNET])) == []
    [message] = flagged(PODS, netpol([INTERNET]), CGNAT_SUBNET)
    assert "100.64.0.0/14 (GKE pods)" in message
    assert message.endswith("add 100.64.0.0/14 to its except")
    [message] = flagged(PODS, netpol([{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]))
    assert "add 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 to its except" in message


def test_the_stacks_ranges_are_read_from_its_network_resources() -> None:
    vpc = Resource("aws:ec2/vpc:Vpc", "aws-network-vpc", {"cidrBlock": "10.0.0.0/16"})
    eks = Resource("aws:eks/cluster:Cluster", "aws-eks-cluster", {})
    eks_set = Resource(
        "aws:eks/cluster:Cluster",
        "aws-eks-cluster",
        {"kubernetesNetworkConfig": {"serviceIpv4Cidr": "100.80.0.0/16"}},
    )
    ranges = dict(cluster_ranges([CGNAT_SUBNET, vpc, eks]))
    assert ranges["100.64.0.0/14"] == "GKE pods"
    assert ranges["10.0.0.0/20"] == "GKE nodes"
    assert ranges["10.0.0.0/16"].startswith("the VPC")
    assert {"10.100.0.0/16", "172.20.0.0/16"} <= set(ranges)  # EKS picks one of these
    assert dict(cluster_ranges([eks_set]))["100.80.0.0/16"] == "EKS services"


# --- the metadata server --------------------------------------------------------------------


def test_the_gke_daemon_alone_is_flagged_and_the_pre_nat_rule_named() -> None:
    [message] = flagged(METADATA, netpol([TO_PODS, GKE_DAEMON]))
    assert message.startswith("NetworkPolicy binder/web egress[1]: allows 169.254.169.252")
    assert "169.254.169.254/32 on TCP 80" in message
    assert json.dumps(METADATA_RULE) in message
    assert flagged(METADATA, netpol([GKE_DAEMON, METADATA_RULE])) == []
    # z2jh's cloudMetadataServer: 169.254.169.254/32 on every port, 80 included
    assert flagged(METADATA, netpol([GKE_DAEMON, {"to": METADATA_RULE["to"]}])) == []


def test_a_metadata_address_on_a_port_it_does_not_serve_is_flagged() -> None:
    wrong = {"to": METADATA_RULE["to"], "ports": [{"port": 988, "protocol": "TCP"}]}
    [message] = flagged(METADATA, netpol([wrong]))
    assert "allows 169.254.169.254 only on ports [988]" in message
    pod_identity = {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}]}
    assert flagged(METADATA, netpol([{**pod_identity, "ports": [{"port": 80}]}])) == []
    assert flagged(METADATA, netpol([{**pod_identity, "ports": [{"port": 443}]}]))


def test_z2jh_user_policy_on_gke_needs_cloud_metadata_server_beside_the_daemon() -> None:
    values = {"singleuser": {"networkPolicy": {"egress": [GKE_DAEMON]}}}  # z2jh: false for users
    [message] = flagged(METADATA, z2jh(values))
    assert message.startswith("gcp-hub-jupyterhub: singleuser.networkPolicy.egress[0]")
    values["singleuser"]["networkPolicy"]["egressAllowRules"] = {"cloudMetadataServer": True}
    assert flagged(METADATA, z2jh(values)) == []


# --- DNS ------------------------------------------------------------------------------------


def test_the_eks_agent_146_shape_is_flagged() -> None:
    """aws/amazon-network-policy-controller-k8s#146: a port-only DNS rule beside 0.0.0.0/0
    except private."""
    port_only = {"ports": DNS_RULE["ports"]}
    [message] = flagged(DNS, netpol([INTERNET, port_only]))
    assert message.startswith("NetworkPolicy binder/web egress[1]: allows DNS to every address")
    assert json.dumps(DNS_RULE) in message
    assert flagged(DNS, netpol([INTERNET, DNS_RULE])) == []


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 53}]},
            "ipBlock 0.0.0.0/0",
        ),
        (
            {
                "to": [{"namespaceSelector": DNS_RULE["to"][0]["namespaceSelector"]}],
                "ports": [{"port": 53, "protocol": "UDP"}],
            },
            "every pod of kube-system",
        ),
        (
            {
                "to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"port": 53}],
            },
            "outside kube-system",
        ),
        (
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 1, "endPort": 1024}]},
            "10.0.0.0/8",
        ),
        ({"ports": [{"port": "dns", "protocol": "UDP"}]}, "port-only"),
    ],
)
def test_dns_anywhere_but_kube_dns_by_selector_is_flagged(rule: dict[str, Any], says: str) -> None:
    [message] = flagged(DNS, netpol([rule]))
    assert says in message


def test_a_rule_without_port_53_is_not_a_dns_rule() -> None:
    assert flagged(DNS, netpol([TO_PODS, INTERNET, METADATA_RULE])) == []


def test_z2jh_defaults_are_flagged_naming_the_values_keys() -> None:
    found = flagged(DNS, z2jh({}))
    assert len(found) == 3  # hub, proxy, singleuser (no autohttps without https.hosts)
    hub = next(m for m in found if ": hub.networkPolicy" in m)
    assert "dnsPortsCloudMetadataServer, dnsPortsKubeSystemNamespace, dnsPortsPrivateIPs" in hub
    assert "on by z2jh's default" in hub
    assert "write the rule meant in hub.networkPolicy.egress" in hub
    pods = flagged(PODS, z2jh({}))
    assert [m.split(":")[1].strip() for m in pods] == [
        "hub.networkPolicy.egressAllowRules privateIPs (on by z2jh's default)",
        "proxy.chp.networkPolicy.egressAllowRules privateIPs (on by z2jh's default)",
    ]


def test_z2jh_values_closed_with_selectors_pass_every_cni_rule() -> None:
    https = {"enabled": True, "type": "letsencrypt", "hosts": ["hub.example.org"]}
    values = closed_z2jh(proxy={"chp": closed_z2jh()["proxy"]["chp"], "https": https})
    names = [p.name for p in policies_of(z2jh(values))]
    assert "gcp-hub-jupyterhub's proxy.traefik NetworkPolicy" in " ".join(names)
    # autohttps' Traefik still has z2jh's defaults: flagged until it is closed too
    assert flagged(DNS, z2jh(values)) and flagged(PODS, z2jh(values))
    values["proxy"]["traefik"] = closed_z2jh()["proxy"]["chp"]
    for rule in (PODS, METADATA, DNS):
        assert flagged(rule, z2jh(values)) == [], rule
    values["singleuser"]["networkPolicy"]["enabled"] = False
    assert "singleuser" not in " ".join(p.name for p in policies_of(z2jh(values)))


# --- the program's own stacks -------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_programs_own_stacks_pass_the_cni_rules(stack: str) -> None:
    """Every NetworkPolicy the program registers, and every one its jupyterhub releases
    render, on both clouds of both stacks."""
    plan = json.loads(RENDERERS["json"](build.full_plan(ROOT, stack)))
    kinds = {r["type"] for block in plan["clouds"].values() for r in block["resources"]}
    assert "kubernetes:networking.k8s.io/v1:NetworkPolicy" in kinds  # the rules had input
    found = [
        f"{v['cloud']} {v['policy']}: {v['message']}"
        for v in check_plan(plan)
        if v["policy"].startswith("netpol-")
    ]
    assert found == [], "\n".join(found)


def test_values_unknown_during_a_preview_do_not_break_the_rules() -> None:
    unknown = "<unknown during preview>"
    resources = [
        Resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", "a", {"spec": unknown}),
        netpol([unknown, {"to": [{"ipBlock": unknown}], "ports": [unknown]}]),
        z2jh({"hub": {"networkPolicy": unknown}, "proxy": unknown}),
        z2jh(unknown),  # type: ignore[arg-type]
        Resource("gcp:compute/subnetwork:Subnetwork", "s", {"secondaryIpRanges": [unknown]}),
    ]
    for rule in (PODS, METADATA):
        assert flagged(rule, *resources) == [], rule
    # what is known is still judged: z2jh's singleuser defaults are there
    assert any("singleuser" in m for m in flagged(DNS, *resources))


# --- the model of z2jh's policies against the chart's own render ---------------------------

# z2jh 4.4.0's NetworkPolicy names (fullnameOverride "") and the values key of each.
Z2JH_NAMES = {"hub": "hub", "proxy": "proxy.chp", "autohttps": "proxy.traefik"}
Z2JH_NAMES["singleuser"] = "singleuser"
HTTPS = {"enabled": True, "hosts": ["hub.example.org"], "letsencrypt": {"contactEmail": "a@b.org"}}


def judged(rules: list[Any]) -> set[str]:
    """What the CNI rules read of a policy's rules: every ipBlock peer, every DNS rule's peers,
    every egress rule without peers; as (direction, peer, ports)."""
    found = set()
    for item in rules:
        ports = sorted(json.dumps(p, sort_keys=True) for p in item.ports)
        dns = any(str(p.get("port")) == "53" for p in item.ports)
        peers = item.peers or ([None] if item.direction == "egress" else [])
        for peer in peers:
            if peer is None or "ipBlock" in peer or dns:
                found.add(json.dumps([item.direction, peer, ports], sort_keys=True))
    return found


def z2jh_value_sets() -> list[dict[str, Any]]:
    mixed = {
        "hub": {
            "networkPolicy": {
                "egressAllowRules": {"privateIPs": False, "dnsPortsPrivateIPs": False},
                "egress": [KUBE_API, {"ports": [{"port": 53, "protocol": "UDP"}]}],
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
            }
        },
        "proxy": {"https": HTTPS, "chp": {"networkPolicy": {"enabled": False}}},
        "singleuser": {
            "cloudMetadata": {"ip": "169.254.169.253", "blockWithIptables": False},
            "networkPolicy": {"egressAllowRules": {"cloudMetadataServer": True}},
        },
    }
    closed = closed_z2jh()
    closed["proxy"] |= {"https": HTTPS, "traefik": closed_z2jh()["proxy"]["chp"]}
    return [{"proxy": {"https": HTTPS}}, closed, mixed, {}]


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("case", range(len(z2jh_value_sets())))
def test_the_z2jh_model_matches_the_charts_own_render(case: int) -> None:
    """The rules read a jupyterhub release's values as z2jh 4.4.0 renders them: the policies
    the real templates render hold the same ipBlock, DNS and port-only rules, and each CNI
    rule gives them the same verdict."""
    from chart_render import find, render
    from pangeo_binder.charts import JUPYTERHUB

    values = {**z2jh_value_sets()[case], "fullnameOverride": ""}
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    rendered = {
        Z2JH_NAMES[o["metadata"]["name"]]: Resource(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            o["metadata"]["name"],
            {"metadata": o["metadata"], "spec": o["spec"]},
        )
        for o in find(objects, "NetworkPolicy")
    }
    modelled = {p.name.split("'s ")[1].split(" ")[0]: p for p in policies_of(z2jh(values))}
    assert set(rendered) == set(modelled)
    for path, resource in rendered.items():
        [policy] = policies_of(resource)
        assert judged(policy.rules) == judged(modelled[path].rules), path
        for rule in (PODS, METADATA, DNS):
            model_says = [m for m in flagged(rule, z2jh(values)) if f": {path}.networkPolicy" in m]
            assert bool(flagged(rule, resource)) == bool(model_says), (path, rule)
