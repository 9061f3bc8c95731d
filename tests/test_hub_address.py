"""HTTPS on the first `pulumi up`: the hub's public address is reserved by the cloud layer
before the hub starts, handed to the proxy Service, exported as `hubAddress`, protected in
prod; with `hub.dns` the hub's A record is written and the hub's release waits for it."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from conftest import HELM, release
from harness import (
    SECRET_KEYS,
    RecordingMonitor,
    Run,
    run_function,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.aws.hub_address import NLB_CROSS_ZONE, NLB_EIPS, NLB_SUBNETS, NLB_TYPE
from pangeo_binder.aws.hub_address import proxy_service_values as aws_piece
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.config import ConfigError, load_config
from pangeo_binder.gcp.hub_address import proxy_service_values as gcp_piece
from pangeo_binder.hub.proxy import proxy_service
from pangeo_binder.outputs import KubernetesServiceAccount, WorkloadServiceAccounts

ADDRESS = "gcp:compute/address:Address"
EIP = "aws:ec2/eip:Eip"
GCP_RECORD = "gcp:dns/recordSet:RecordSet"
AWS_RECORD = "aws:route53/record:Record"
GCP_ZONE = {"zone": "pangeo-binder-example-org", "zoneDomain": "pangeo-binder.example.org"}
AWS_ZONE = {"zone": "Z0EXAMPLE0PANGEO", "zoneDomain": "pangeo-binder.example.org"}


def with_zones(stack: str = "staging") -> dict[str, Any]:
    config = with_value(stack_config(stack), "clouds.gcp.hub.dns", GCP_ZONE)
    return with_value(config, "clouds.aws.hub.dns", AWS_ZONE)


@pytest.fixture(scope="module")
def zoned() -> Run:
    return run_program("staging", with_zones())


# --- the reserved addresses ----------------------------------------------------------------


def test_gcp_reserves_a_regional_external_address_in_the_clusters_region(staging: Run) -> None:
    address = staging.one(ADDRESS, "gcp-hub-address")
    assert address.inputs["region"] == "us-central1"
    assert address.inputs["addressType"] == "EXTERNAL"
    assert address.inputs["networkTier"] == "PREMIUM"
    assert address.inputs["name"] == "pangeo-binder-staging-hub"
    assert address.provider_urn == staging.one("pulumi:providers:gcp", "gcp-provider").urn
    assert staging.stack_outputs["gcp"]["hubAddress"] == address.outputs["address"]


def test_aws_reserves_one_elastic_ip_per_public_subnet(staging: Run) -> None:
    eips = staging.of_type(EIP)
    hub_eips = [e for e in eips if e.name.startswith("aws-hub-address-")]
    public = [s for s in staging.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name]
    assert len(hub_eips) == len(public) == 3
    assert {e.inputs["domain"] for e in hub_eips} == {"vpc"}
    assert staging.stack_outputs["aws"]["hubAddress"] == ",".join(
        e.outputs["publicIp"] for e in sorted(hub_eips, key=lambda e: e.name)
    )


@pytest.mark.parametrize("typ", [ADDRESS, EIP])
def test_addresses_are_protected_and_retained_in_prod_only(
    staging: Run, prod: Run, typ: str
) -> None:
    def hub(run: Run) -> list:
        return [r for r in run.of_type(typ) if "hub-address" in r.name]

    assert hub(staging) and hub(prod)
    assert all(not r.protect and not r.retain_on_delete for r in hub(staging))
    assert all(r.protect and r.retain_on_delete for r in hub(prod))


def test_nothing_that_existed_changes_name(staging: Run) -> None:
    """The new resources are additions: the NAT gateway's Elastic IPs keep their names."""
    nat = [
        e.name
        for e in staging.of_type(EIP)
        if not e.name.startswith(("aws-hub-address-", "aws-public-address-"))
    ]
    prod_nat = [
        e.name for e in run_program("prod").of_type(EIP) if e.name.startswith("aws-network-nat-")
    ]
    assert nat == []  # staging has no NAT gateway
    assert prod_nat == ["aws-network-nat-us-west-2a"]


# --- what the proxy Service gets -----------------------------------------------------------


def test_the_pieces_of_proxy_service_per_cloud() -> None:
    assert gcp_piece("203.0.113.7") == {"loadBalancerIP": "203.0.113.7"}
    assert aws_piece(["eipalloc-1", "eipalloc-2"], ["subnet-a", "subnet-b"]) == {
        "annotations": {
            NLB_TYPE: "nlb",
            NLB_SUBNETS: "subnet-a,subnet-b",
            NLB_EIPS: "eipalloc-1,eipalloc-2",
            NLB_CROSS_ZONE: "true",
        }
    }


@pytest.mark.parametrize(("eips", "subnets"), [(["e1"], ["s1", "s2"]), ([], [])])
def test_an_nlb_with_unmatched_counts_is_refused(eips: list[str], subnets: list[str]) -> None:
    with pytest.raises(ValueError, match="one Elastic IP per subnet"):
        aws_piece(eips, subnets)


def test_proxy_service_keeps_the_builders_keys_and_merges_annotations() -> None:
    base = {"type": "LoadBalancer", "annotations": {"team": "hub"}}
    merged = proxy_service({"annotations": {NLB_TYPE: "nlb"}}, base)
    assert merged == {"type": "LoadBalancer", "annotations": {"team": "hub", NLB_TYPE: "nlb"}}
    assert base == {"type": "LoadBalancer", "annotations": {"team": "hub"}}, "not mutated"
    assert proxy_service({"loadBalancerIP": "203.0.113.7"}) == {
        "type": "LoadBalancer",
        "loadBalancerIP": "203.0.113.7",
    }


def cloud_proxy_service(cloud: str) -> dict[str, Any]:
    """`CloudOutputs.proxy_service` of one cloud stack under the mocks, as the hub sees it."""
    captured: dict[str, Any] = {}

    def program() -> None:
        config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
        if cloud == "gcp":
            from pangeo_binder.gcp.stack import GcpStack as Stack
        else:
            from pangeo_binder.aws.stack import AwsStack as Stack
        accounts = WorkloadServiceAccounts(
            users=KubernetesServiceAccount("binder", "user-sa"),
            builder=KubernetesServiceAccount("binder", "binderhub"),
        )
        stack = Stack(
            cloud,
            getattr(config.clouds, cloud),
            deployment="pangeo-binder-staging",
            environment="staging",
            service_accounts=accounts,
        )
        pulumi.export("proxyService", stack.outputs.proxy_service)
        pulumi.export("hubAddress", stack.outputs.hub_address)

    run = run_function(program, "staging")
    captured.update(run.stack_outputs)
    captured["run"] = run
    return captured


def test_the_aws_piece_names_the_public_subnets_and_their_eips() -> None:
    got = cloud_proxy_service("aws")
    run: Run = got["run"]
    annotations = got["proxyService"]["annotations"]
    subnets = annotations[NLB_SUBNETS].split(",")
    allocations = annotations[NLB_EIPS].split(",")
    assert annotations[NLB_TYPE] == "nlb"
    assert len(subnets) == len(allocations) == 3
    public_ids = {
        f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name
    }
    assert set(subnets) == public_ids
    eips = sorted(run.of_type(EIP), key=lambda e: e.name)
    assert allocations == [e.outputs["allocationId"] for e in eips]
    # Pairs in order: the subnet of zone a with the Elastic IP of zone a.
    assert [s.rsplit("-public-", 1)[1] for s in subnets] == [
        e.name.rsplit("-hub-address-", 1)[1] + "-id" for e in eips
    ]


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_chart_accepts_the_piece_and_puts_it_on_proxy_public(staging: Run, cloud: str) -> None:
    """The real values, with `proxy.service` built as the values builder will build it, pass
    z2jh 4.4.0's schema and reach the rendered `proxy-public` Service."""
    from chart_render import find, render, validate_values

    piece = cloud_proxy_service(cloud)["proxyService"]
    values = release(staging, cloud, "jupyterhub")["values"]
    values["proxy"]["service"] = proxy_service(piece, values["proxy"]["service"])
    validate_values(JUPYTERHUB, values)
    service = find(
        render(JUPYTERHUB, values, release="jupyterhub", namespace="binder"),
        "Service",
        "proxy-public",
    )[0]
    assert service["spec"]["type"] == "LoadBalancer"
    if cloud == "gcp":
        assert service["spec"]["loadBalancerIP"] == piece["loadBalancerIP"]
    else:
        assert piece["annotations"].items() <= service["metadata"]["annotations"].items()
        # One core node, three zones: without cross-zone balancing two of the three Elastic
        # IPs have no target. The in-tree provider parses the value with strconv.ParseBool.
        annotation = service["metadata"]["annotations"][
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled"
        ]
        assert annotation == "true"


# --- the DNS zone --------------------------------------------------------------------------


@pytest.mark.parametrize(("cloud", "typ"), [("gcp", GCP_RECORD), ("aws", AWS_RECORD)])
def test_the_hub_release_waits_for_its_dns_record(zoned: Run, cloud: str, typ: str) -> None:
    record = zoned.one(typ)
    hub = zoned.one(HELM, f"{cloud}-hub-jupyterhub")
    assert record.urn in hub.dependencies


def test_the_records_point_the_domain_at_the_reserved_addresses(zoned: Run) -> None:
    gcp_record = zoned.one(GCP_RECORD).inputs
    assert gcp_record["name"] == "gcp.staging.pangeo-binder.example.org."
    assert gcp_record["type"] == "A"
    assert gcp_record["managedZone"] == GCP_ZONE["zone"]
    assert gcp_record["rrdatas"] == [zoned.stack_outputs["gcp"]["hubAddress"]]
    aws_record = zoned.one(AWS_RECORD).inputs
    assert aws_record["name"] == "aws.staging.pangeo-binder.example.org"
    assert aws_record["zoneId"] == AWS_ZONE["zone"]
    assert ",".join(aws_record["records"]) == zoned.stack_outputs["aws"]["hubAddress"]
    apis = {s.inputs["service"] for s in zoned.of_type("gcp:projects/service:Service")}
    assert "dns.googleapis.com" in apis


def test_without_a_zone_no_record_and_no_dns_api(staging: Run) -> None:
    assert staging.of_type(GCP_RECORD) == staging.of_type(AWS_RECORD) == []
    apis = {s.inputs["service"] for s in staging.of_type("gcp:projects/service:Service")}
    assert "dns.googleapis.com" not in apis


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_a_zone_without_the_hubs_domain_is_refused_at_config_time(cloud: str) -> None:
    zone = {"zone": "other", "zoneDomain": "example.com"}
    with pytest.raises(ConfigError) as error:
        load_config(
            with_value(stack_config("staging"), f"clouds.{cloud}.hub.dns", zone),
            secret_keys=SECRET_KEYS,
        )
    [problem] = error.value.problems
    assert problem.path == f"clouds.{cloud}.hub.dns"
    assert f"{cloud}.staging.pangeo-binder.example.org" in problem.message
    assert "example.com" in problem.message


def test_the_zones_apex_is_in_the_zone() -> None:
    config = with_value(
        stack_config("staging"), "clouds.gcp.hub.domain", "pangeo-binder.example.org"
    )
    config = with_value(config, "clouds.gcp.hub.dns", GCP_ZONE)
    assert load_config(config, secret_keys=SECRET_KEYS).clouds.gcp.hub.dns.zone == GCP_ZONE["zone"]
    lookalike = with_value(config, "clouds.gcp.hub.domain", "notpangeo-binder.example.org")
    with pytest.raises(ConfigError, match="not in zone"):
        load_config(lookalike, secret_keys=SECRET_KEYS)


@pytest.mark.parametrize(
    ("cloud", "zones", "named"),
    [
        ("gcp", {"pangeo-binder-example-org": "example.net."}, "Cloud DNS zone"),
        ("aws", {"Z0EXAMPLE0PANGEO": "example.net"}, "Route 53 hosted zone"),
    ],
)
def test_a_zone_whose_name_differs_is_refused_before_the_address_is_made(
    cloud: str, zones: dict[str, str], named: str
) -> None:
    monitor = RecordingMonitor(zones=zones)
    config = with_value(
        stack_config("staging"),
        f"clouds.{cloud}.hub.dns",
        (GCP_ZONE if cloud == "gcp" else AWS_ZONE),
    )
    with pytest.raises(Exception, match=named) as error:
        run_program("staging", config, monitor)
    assert "example.net" in str(error.value) and "pangeo-binder.example.org" in str(error.value)
    made = [r.type for r in monitor.registrations if r.name.startswith(f"{cloud}-hub-address")]
    assert made == [f"pangeo-binder:{cloud}:HubAddress"], "no address and no record"
