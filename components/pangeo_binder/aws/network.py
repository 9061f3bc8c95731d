"""The VPC: public and private subnets over 2-3 zones, NAT as configured, no inbound paths.

Subnet layout is a plain function (`plan_subnets`) so its arithmetic is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.config import NatGateways

# Eighths of the VPC range: private subnets first, public after, two spare for later needs.
PRIVATE_SLOTS = (0, 1, 2)
PUBLIC_SLOTS = (4, 5, 6)


@dataclass(frozen=True)
class SubnetPlan:
    zone: str
    public_cidr: str
    private_cidr: str


def plan_subnets(vpc_cidr: IPv4Network, zones: list[str]) -> list[SubnetPlan]:
    """One public and one private subnet per zone, each an eighth of the VPC."""
    eighths = list(vpc_cidr.subnets(prefixlen_diff=3))
    return [
        SubnetPlan(zone, str(eighths[PUBLIC_SLOTS[i]]), str(eighths[PRIVATE_SLOTS[i]]))
        for i, zone in enumerate(zones)
    ]


def subnet_tags(cluster_name: str, *, public: bool) -> dict[str, str]:
    """Where Kubernetes puts load balancers: internet-facing ones in public subnets, internal
    ones in private subnets; `shared` lets other clusters use the VPC too."""
    role = "kubernetes.io/role/elb" if public else "kubernetes.io/role/internal-elb"
    return {role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}


def nat_zones(mode: NatGateways, zones: list[str]) -> list[str]:
    """Zones that get a NAT gateway."""
    return {"none": [], "single": zones[:1], "perAz": list(zones)}[mode]


class Network(pulumi.ComponentResource):
    """A VPC for one EKS cluster.

    With `natGateways: none` the private subnets have no route out and nodes go in the public
    subnets with public addresses; they carry only the EKS cluster security group, which admits
    traffic from itself alone, so nothing on the internet can open a connection to them. The
    VPC's default security group is emptied so nothing can use it by accident. A free S3
    gateway endpoint keeps bucket and image-layer traffic off the NAT gateways.
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: dict[str, pulumi.Output[str]]
    private_subnet_ids: dict[str, pulumi.Output[str]]
    nodes_public: bool

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        region: str,
        vpc_cidr: IPv4Network,
        zones: list[str],
        nat: NatGateways,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.nodes_public = nat == "none"
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(vpc_cidr),
            enable_dns_hostnames=True,  # EKS nodes and the private endpoint need both
            enable_dns_support=True,
            tags={"Name": cluster_name},
            opts=child,
        )
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": f"{cluster_name}-default-unused"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": cluster_name}, opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{cluster_name}-public"},
            opts=child,
        )

        self.public_subnet_ids = {}
        self.private_subnet_ids = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        for plan in plan_subnets(vpc_cidr, zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{plan.zone}",
                vpc_id=vpc.id,
                availability_zone=plan.zone,
                cidr_block=plan.public_cidr,
                # Nodes placed here need an address to reach the internet without NAT.
                map_public_ip_on_launch=self.nodes_public,
                tags={
                    "Name": f"{cluster_name}-public-{plan.zone}",
                    **subnet_tags(cluster_name, public=True),
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{plan.zone}",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            private_subnets[plan.zone] = aws.ec2.Subnet(
                f"{name}-private-{plan.zone}",
                vpc_id=vpc.id,
                availability_zone=plan.zone,
                cidr_block=plan.private_cidr,
                map_public_ip_on_launch=False,
                tags={
                    "Name": f"{cluster_name}-private-{plan.zone}",
                    **subnet_tags(cluster_name, public=False),
                },
                opts=child,
            )
            self.public_subnet_ids[plan.zone] = public.id
            self.private_subnet_ids[plan.zone] = private_subnets[plan.zone].id

        gateways: dict[str, aws.ec2.NatGateway] = {}
        for zone in nat_zones(nat, zones):
            address = aws.ec2.Eip(
                f"{name}-nat-{zone}",
                domain="vpc",
                tags={"Name": f"{cluster_name}-nat-{zone}"},
                opts=child,
            )
            gateways[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=address.id,
                subnet_id=self.public_subnet_ids[zone],
                connectivity_type="public",
                tags={"Name": f"{cluster_name}-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )

        route_tables = [public_rt]
        for zone, subnet in private_subnets.items():
            gateway = gateways.get(zone) or next(iter(gateways.values()), None)
            routes = (
                [aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=gateway.id)]
                if gateway is not None
                else []
            )
            table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=routes,
                tags={"Name": f"{cluster_name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            route_tables.append(table)

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in route_tables],
            tags={"Name": f"{cluster_name}-s3"},
            opts=child,
        )

        self.vpc_id = vpc.id
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def node_subnet_ids(self, zones: list[str]) -> list[pulumi.Output[str]]:
        """Subnets for nodes in `zones`: public when there is no NAT, else private."""
        subnets = self.public_subnet_ids if self.nodes_public else self.private_subnet_ids
        return [subnets[zone] for zone in zones]
