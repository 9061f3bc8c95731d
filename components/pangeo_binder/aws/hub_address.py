"""The hub's public addresses on AWS, reserved before the hub starts, and its DNS records.

One Elastic IP per public subnet, handed to the proxy Service (`proxy-public`, type
LoadBalancer) through annotations that EKS's built-in service controller (the legacy AWS cloud
provider, which handles every LoadBalancer Service without a `loadBalancerClass`) reads when it
creates the load balancer:

- `service.beta.kubernetes.io/aws-load-balancer-type: nlb`: a Network Load Balancer instead of
  a Classic one; only an NLB can take Elastic IPs.
- `service.beta.kubernetes.io/aws-load-balancer-subnets`: the subnets the NLB uses, listed so
  that their count is known. cloud-provider-aws (pkg/providers/v1/aws_loadbalancer.go,
  `ensureLoadBalancerv2`, read 2026-11-27) refuses to create the NLB unless there are exactly as
  many allocation ids as subnets ("Must have same number of EIP AllocationIDs (%d) and SubnetIDs
  (%d)") and pairs them in order, one subnet mapping each. The in-tree controller reads this
  annotation from Kubernetes 1.21 (kubernetes/kubernetes#97431), backported to EKS 1.19
  (kubernetes-sigs/aws-load-balancer-controller#1821).
- `service.beta.kubernetes.io/aws-load-balancer-eip-allocations`: the allocation ids, comma
  separated (the constant's own comment in the same provider: "Only supported on elbv2 (NLB)").
- `service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled: "true"`:
  every zone's address reaches the proxy. An NLB node forwards only to targets in its own zone
  unless cross-zone balancing is on, and the core group may keep a single node: without this,
  the Elastic IPs of the other zones answer nothing, and Let's Encrypt's HTTP-01 check (which
  may resolve to any of the A record's addresses) can fail. The same provider's
  `reconcileLBAttributes` (aws_loadbalancer.go, read 2026-12-08) sets the NLB attribute
  `load_balancing.cross_zone.enabled` from this annotation, "false" when it is absent, on
  creation and on every later sync, so an existing NLB picks it up without being re-created.

The same source notes that an NLB's subnets cannot be changed after creation: these annotations
take effect when the Service's load balancer is created, so on a cluster whose `proxy-public`
already has a Classic load balancer, that Service must be re-created once (docs/howto/https.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from pangeo_binder.config_shared import HubDns, check_zone, in_zone
from pangeo_binder.guards import guarded

RECORD_TTL = 300
NLB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
NLB_SUBNETS = "service.beta.kubernetes.io/aws-load-balancer-subnets"
NLB_EIPS = "service.beta.kubernetes.io/aws-load-balancer-eip-allocations"
NLB_CROSS_ZONE = "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"


def proxy_service_values(
    allocation_ids: Sequence[str], subnet_ids: Sequence[str]
) -> dict[str, Any]:
    """The piece of z2jh's `proxy.service` values EKS needs: an NLB on exactly these subnets,
    one Elastic IP each (the controller pairs them in order), balancing across zones so that
    every address reaches the proxy wherever its pod runs."""
    if not subnet_ids or len(allocation_ids) != len(subnet_ids):
        raise ValueError(
            f"an NLB needs one Elastic IP per subnet; got {len(allocation_ids)} allocation ids "
            f"for {len(subnet_ids)} subnets"
        )
    return {
        "annotations": {
            NLB_TYPE: "nlb",
            NLB_SUBNETS: ",".join(subnet_ids),
            NLB_EIPS: ",".join(allocation_ids),
            NLB_CROSS_ZONE: "true",
        }
    }


class HubAddress(pulumi.ComponentResource):
    """One Elastic IP per public subnet for the hub's NLB and, with `hub.dns`, the hub's A
    record in an existing Route 53 hosted zone. The Elastic IPs are protected (and retained)
    in prod: losing them means a new DNS record and a new certificate."""

    address: pulumi.Output[str]
    proxy_service: pulumi.Output[dict[str, Any]]
    records: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        deployment: str,
        domain: str,
        dns: HubDns | None,
        public_subnet_ids: dict[str, pulumi.Output[str]],
        prod: bool,
        role: str = "hub",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:HubAddress", name, None, opts)
        if dns is not None:
            zone = aws.route53.get_zone(zone_id=dns.zone, opts=pulumi.InvokeOptions(parent=self))
            check_zone(dns, zone.name, cloud="aws", kind="Route 53 hosted zone")
        child = pulumi.ResourceOptions(parent=self)
        zones = sorted(public_subnet_ids)
        eips = [
            aws.ec2.Eip(
                f"{name}-{zone}",
                domain="vpc",
                tags={"Name": f"{deployment}-{role}-{zone}"},
                opts=guarded(child, prod=prod, holds_data=True),
            )
            for zone in zones
        ]
        ips = pulumi.Output.all(*[eip.public_ip for eip in eips])
        self.address = ips.apply(lambda values: ",".join(values))
        self.proxy_service = pulumi.Output.all(
            pulumi.Output.all(*[eip.allocation_id for eip in eips]),
            pulumi.Output.all(*[public_subnet_ids[zone] for zone in zones]),
        ).apply(lambda pair: proxy_service_values(pair[0], pair[1]))
        self.records = []
        if dns is not None and in_zone(domain, dns.zone_domain):
            self.records.append(
                aws.route53.Record(
                    f"{name}-record",
                    zone_id=dns.zone,
                    name=domain,
                    type="A",
                    ttl=RECORD_TTL,
                    records=ips,
                    opts=child,
                )
            )
        self.register_outputs({"address": self.address})
