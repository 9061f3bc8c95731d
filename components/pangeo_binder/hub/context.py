"""What the values builders need from the cloud stack, resolved to plain strings.

The hub component resolves `CloudOutputs` and the generated secrets into one `HubContext`
(inside an `apply`), so the builders stay pure functions that tests call with literals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, collapse_addresses
from typing import Any

from pangeo_binder.config_shared import NodePool
from pangeo_binder.machines import Cloud

# Chart release names and the service names they give (fullnameOverride pins them).
JUPYTERHUB_RELEASE = "jupyterhub"
DASK_GATEWAY_RELEASE = "dask-gateway"
DASK_GATEWAY_SERVICE = "dask-gateway"  # the JupyterHub service name and its URL path
DASK_TRAEFIK_SERVICE = f"traefik-{DASK_GATEWAY_RELEASE}"
BINDER_RELEASE = "binderhub-service"
BINDER_SERVICE = (
    "binder"  # the JupyterHub service name; jupyterhub-fancy-profiles calls /services/binder
)
# binderhub-service with fullnameOverride "" names its Deployment, Service and Secret this.
BINDER_K8S_SERVICE = "binderhub"
# The BinderHub pod's labels (binderhub-service templates/deployment.yaml: appLabels + component).
BINDER_POD_LABELS = {
    "app.kubernetes.io/name": "binderhub-service",
    "app.kubernetes.io/component": "binderhub",
}
# The BinderHub pod's http port: the chart's `config.BinderHub.port` default, which the
# Service targets and our values leave alone.
BINDER_POD_PORT = 8585
# Dask Gateway's pods (the chart's labels) and Traefik's web entrypoint, the pod port behind
# its Service: HTTP to the gateway API and, by SNI, the TCP traffic to schedulers.
DASK_LABELS = {"app.kubernetes.io/name": "dask-gateway"}
DASK_TRAEFIK_LABELS = {**DASK_LABELS, "app.kubernetes.io/component": "traefik"}
DASK_TRAEFIK_PORT = 8000
# The metadata server, as a pod that needs cloud credentials must be allowed to reach it.
# GKE (workload identity): clients call 169.254.169.254:80. Dataplane V2 (Cilium, which
# gcp/cluster.py turns on: ADVANCED_DATAPATH) evaluates egress policy before the node rewrites
# that to the metadata daemon, so 169.254.169.254/32:80 is the rule that matters there; the
# legacy dataplane evaluates after the rewrite, at 169.254.169.252:988 (GKE docs, "Use Workload
# Identity Federation for GKE"; gke-labs/kube-agents #747 and PR #777). Both, so the policy
# holds on either dataplane. EKS: IRSA (aws/identity.py, the `eks.amazonaws.com/role-arn`
# annotation) exchanges the pod's projected token with STS over the internet on 443, which
# the pods' internet rules already allow; nothing needs IMDS, and EKS Pod Identity (its agent
# at 169.254.170.23:80) is not used, so AWS gets no metadata rule at all.
GKE_METADATA = (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))


def metadata_egress(cloud: Cloud) -> list[dict[str, Any]]:
    """The egress rules every pod that needs cloud credentials must have on `cloud`."""
    if cloud != "gcp":
        return []
    return [
        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": port, "protocol": "TCP"}]}
        for cidr, port in GKE_METADATA
    ]


# DNS, only to the cluster's DNS pods by selector (kube-dns on GKE, CoreDNS on EKS: both label
# them `k8s-app: kube-dns` in kube-system; neither cluster turns on Cloud DNS or NodeLocal
# DNSCache, which would move the resolver). Never a port-only rule, nor one to an IP range:
# the EKS policy agent drops DNS when a port-only DNS rule sits beside an `0.0.0.0/0 except
# private` rule (aws/amazon-network-policy-controller-k8s #146, open), and an IP-range DNS rule
# beside such an `except` is the class of #121 (one rule's exceptions cut another's CIDR). A
# selector resolves to the DNS pods' and Service's own /32 addresses, more specific than any
# `except` range, so it holds whatever the agent does with exceptions.
DNS_EGRESS: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
# z2jh's DNS shortcuts (`egressAllowRules`), all off wherever z2jh renders a policy: each
# would add an IP-range DNS rule (the metadata server, RFC 1918) or a namespace-wide one;
# DNS_EGRESS in the component's `egress` replaces them.
Z2JH_DNS_OFF = {
    "dnsPortsCloudMetadataServer": False,
    "dnsPortsKubeSystemNamespace": False,
    "dnsPortsPrivateIPs": False,
}

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# What z2jh's `nonPrivateIPs` shortcut leaves out (z2jh 4.4.0 _helpers-netpol.tpl: RFC 1918 and
# `singleuser.cloudMetadata.ip`), and the wider cut for pods running user code: every
# link-local address (both clouds' metadata servers), which they reach only by the
# metadata_egress rules where they need it.
Z2JH_NOT_PUBLIC = (*RFC1918, "169.254.169.254/32")
# The Kubernetes API: EKS serves it from ENIs in the VPC (private addresses), GKE from its
# control plane endpoint; both on 443. No pod of the hubs' namespaces listens on 443, and pods
# are reached by selector (pangeo_binder.policy `netpol-pods-by-selector` allows a private
# ipBlock on TCP 443 alone). The internet rules beside it carry no `except`
# (egress_outside), so nothing another rule excepts can cut this one on any policy agent.
KUBE_API_EGRESS = {
    "to": [{"ipBlock": {"cidr": cidr}} for cidr in RFC1918],
    "ports": [{"port": 443, "protocol": "TCP"}],
}
PRIVATE_AND_LINK_LOCAL = (*RFC1918, "169.254.0.0/16")
# Addresses that are not the public internet: RFC 1918, carrier-grade NAT (RFC 6598), link
# local (both clouds' metadata servers: 169.254.169.254, GKE's 169.254.169.252), loopback and
# "this network".
NOT_PUBLIC = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
)


def addresses_outside(excluded: Iterable[str]) -> list[str]:
    """The IPv4 addresses outside `excluded`, as the fewest CIDR blocks that cover exactly
    them (`0.0.0.0/0` less RFC 1918 is 1.0.0.0/8, 2.0.0.0/7, ...)."""
    remaining: list[IPv4Network] = [IPv4Network("0.0.0.0/0")]
    for cut in (IPv4Network(cidr) for cidr in excluded):
        kept: list[IPv4Network] = []
        for block in remaining:
            if cut.subnet_of(block):
                kept += block.address_exclude(cut)
            elif not block.subnet_of(cut):
                kept.append(block)  # CIDR blocks are nested or apart: this one is apart
        remaining = kept
    return [str(block) for block in collapse_addresses(remaining)]


def egress_outside(excluded: Iterable[str], ports: tuple[int, ...] = ()) -> dict[str, Any]:
    """An egress rule to every address outside `excluded` (TCP on `ports`; any port if none),
    written as the blocks that make it up, with no `except`.

    Why no `except`: the EKS policy agent has let one rule's exceptions cut other rules that
    name overlapping addresses (aws/amazon-network-policy-controller-k8s #121, and #146 for a
    port-only DNS rule beside an `except private` rule): the Kubernetes API rule (RFC 1918 on
    443) beside `0.0.0.0/0 except RFC 1918` is that shape. EKS installs the VPC CNI version it
    marks as default (aws/addons.py), so we cannot know whether its agent has the fix. With
    no `except` anywhere, what we rely on is only the plain union of CIDR rules every
    implementation agrees on; the blocks here and the private ranges are disjoint."""
    rule: dict[str, Any] = {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in addresses_outside(excluded)]
    }
    if ports:
        rule["ports"] = [{"port": port, "protocol": "TCP"} for port in ports]
    return rule


# What runs beside notebooks on the shared user pool (see profiles.shared_pool): a Dask
# scheduler per cluster and, with BinderHub, the docker daemon on every node. Their requests
# are taken off that pool's sizes, so the largest size still fits next to them.
SCHEDULER_REQUEST = (0.5, 1.0)  # CPU, GiB
DOCKER_DAEMON_REQUEST = (0.5, 1.0)  # CPU, GiB


def runs_dask(pools: dict[str, NodePool]) -> bool:
    """Dask Gateway is installed only where a pool of purpose `dask` exists: a hub without
    one gets no gateway, and no service, scope, environment or network rule pointing at it."""
    return any(pool.purpose == "dask" for pool in pools.values())


@dataclass(frozen=True)
class HubTokens:
    """Generated secrets: random once, kept in Pulumi state, so they never rotate."""

    proxy_token: str
    cookie_secret: str
    crypt_key: str
    service_tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HubContext:
    """One cloud's facts for the hub: where it runs, its buckets, its secrets."""

    cloud: Cloud
    namespace: str
    domain: str
    scratch_bucket: str
    persistent_bucket: str
    github_client_id: str
    github_client_secret: str
    contact_email: str
    tokens: HubTokens
    # The cloud's registry (CloudOutputs.registry_host, image_prefix) and the annotation that
    # binds a Kubernetes service account to the builder identity; empty when the cloud has none.
    registry_host: str = ""
    image_prefix: str = ""
    builder_annotations: dict[str, str] = field(default_factory=dict)
    # GKE: the builder Google service account's email (CloudOutputs.identities["builder"]), which
    # BinderHub's registry class asks IAM Credentials for push tokens of; empty elsewhere.
    builder_email: str = ""
    # The hub image the program built and pushed (`name:tag@sha256:...`, HubImage.ref); empty
    # when `hub.hubImage` names a prebuilt one, or nothing was built.
    hub_image_ref: str = ""
    # The cloud's piece of z2jh's `proxy.service` (CloudOutputs.proxy_service): the reserved
    # address (GKE `loadBalancerIP`) or the NLB's Elastic IP annotations (EKS); merged into
    # the proxy's Service values with `hub.proxy.proxy_service`. Empty: the cloud picks one.
    proxy_service: dict[str, Any] = field(default_factory=dict)
    # The world-readable bucket (CloudOutputs.public_bucket_url); empty when the cloud has none,
    # and then no PUBLIC_PERSISTENT_BUCKET is set anywhere.
    public_bucket: str = ""
    # The in-region image cache (CloudOutputs.image_cache): upstream registry host -> cache
    # prefix without a trailing slash. Empty: no cache, every image is pulled from upstream.
    image_cache: dict[str, str] = field(default_factory=dict)
