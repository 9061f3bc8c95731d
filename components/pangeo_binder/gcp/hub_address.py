"""The hub's public address on GCP, reserved before the hub starts, and its DNS record.

A regional static external address, in the cluster's region, that z2jh's proxy Service
(`proxy-public`, type LoadBalancer) asks for through `proxy.service.loadBalancerIP`. GKE's
external passthrough load balancer takes a reserved *regional* address given in
`spec.loadBalancerIP`; a global address is refused ("requested ip ... is neither static nor
assigned to LB"), per GKE's "LoadBalancer Service parameters" page (read 2026-11-27). The address
outlives the Service: a replaced or re-created `proxy-public` gets the same IP, so the hub's DNS
record and its Let's Encrypt certificate stay valid.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.config_shared import check_zone, in_zone
from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.guards import guarded

# Short: a record is re-read by resolvers within this many seconds after a change.
RECORD_TTL = 300


def proxy_service_values(ip: str) -> dict[str, Any]:
    """The piece of z2jh's `proxy.service` values GKE needs: the reserved address."""
    return {"loadBalancerIP": ip}


class HubAddress(pulumi.ComponentResource):
    """A reserved regional address for the hub and, with `hub.dns`, the hub's A record in an
    existing Cloud DNS zone of the stack's project. Protected (and retained) in prod: losing
    the address means a new DNS record and a new certificate."""

    address: pulumi.Output[str]
    proxy_service: pulumi.Output[dict[str, Any]]
    records: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        cloud: GcpCloud,
        *,
        deployment: str,
        prod: bool,
        public: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:gcp:HubAddress", name, None, opts)
        # The hub's, or with `public` the public Binder's (its own domain and zone).
        site = cloud.public_binder if public and cloud.public_binder else cloud.hub
        role = "public" if public else "hub"
        dns = site.dns
        if dns is not None:
            # Looked up before anything is registered below: a wrong zone stops here.
            zone = gcp.dns.get_managed_zone(
                name=dns.zone,
                project=cloud.project,
                opts=pulumi.InvokeOptions(parent=self),
            )
            check_zone(dns, zone.dns_name, cloud="gcp", kind="Cloud DNS zone")
        child = pulumi.ResourceOptions(parent=self)
        reserved = gcp.compute.Address(
            name,
            name=f"{deployment}-{role}",
            project=cloud.project,
            region=cloud.region,
            address_type="EXTERNAL",
            network_tier="PREMIUM",  # the tier GKE's load balancers use by default
            description=f"The JupyterHub proxy's public address ({site.domain})",
            opts=guarded(child, prod=prod, holds_data=True),
        )
        self.address = reserved.address
        self.proxy_service = reserved.address.apply(proxy_service_values)
        self.records = []
        if dns is not None and in_zone(site.domain, dns.zone_domain):
            self.records.append(
                gcp.dns.RecordSet(
                    f"{name}-record",
                    project=cloud.project,
                    managed_zone=dns.zone,
                    name=f"{site.domain}.",
                    type="A",
                    ttl=RECORD_TTL,
                    rrdatas=[reserved.address],
                    opts=child,
                )
            )
        self.register_outputs({"address": self.address})
