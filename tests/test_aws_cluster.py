"""The EKS control plane, its access, add-ons and Kubernetes provider; the VPC around it; the
provider and outputs of the AWS stack."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pulumi
import pytest

from harness import (
    AWS_DEPLOYER_ROLE,
    EKS_ISSUER,
    SECRET_KEYS,
    RecordingMonitor,
    Run,
    addon_default_version,
    run_function,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.aws.cluster import admin_principals
from pangeo_binder.aws.network import plan_subnets
from pangeo_binder.aws.stack import AwsStack
from pangeo_binder.config import load_config
from pangeo_binder.outputs import CloudOutputs

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
OPS_ROLE = "arn:aws:iam::123456789012:role/ops/HubOperators"


@pytest.fixture(scope="module")
def variant() -> Run:
    """Staging with the options the stack files leave at their defaults."""
    config = stack_config("staging")
    for path, value in {
        "clouds.aws.natGateways": "perAz",
        "clouds.aws.adminRoleArns": [OPS_ROLE, AWS_DEPLOYER_ROLE],
        "clouds.aws.controlPlaneAccess": ["192.0.2.0/24"],
        "clouds.aws.availabilityZones": ["us-west-2b", "us-west-2c"],
    }.items():
        config = with_value(config, path, value)
    return run_program("staging", config)


def cluster(run: Run) -> dict:
    return run.one(CLUSTER, "aws-eks-cluster").inputs


def test_cluster_name_version_and_support_policy(staging: Run, prod: Run) -> None:
    assert cluster(staging)["name"] == "pangeo-binder-staging"
    assert cluster(prod)["name"] == "pangeo-binder-prod"
    assert cluster(staging)["version"] == "1.35"
    assert cluster(staging)["upgradePolicy"] == {"supportType": "STANDARD"}


def test_access_by_api_entries_only(staging: Run) -> None:
    assert cluster(staging)["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }


def test_deployer_role_gets_cluster_admin(staging: Run) -> None:
    """The role behind the deploying session (not its session ARN) gets an entry, named
    after its role like a listed one, adopting the entry once named `deployer`."""
    entry = staging.one(ENTRY, "aws-eks-admin-pangeo-deployer")
    assert entry.inputs["principalArn"] == AWS_DEPLOYER_ROLE
    assert entry.inputs["clusterName"] == "pangeo-binder-staging"
    assert entry.alias_names == ["aws-eks-deployer"]
    association = staging.one(ASSOCIATION, "aws-eks-admin-pangeo-deployer")
    assert association.alias_names == ["aws-eks-deployer"]
    assert association.inputs["policyArn"] == ADMIN_POLICY
    assert association.inputs["accessScope"] == {"type": "cluster"}
    assert association.inputs["principalArn"] == AWS_DEPLOYER_ROLE


def test_listing_the_deployer_keeps_its_entry_as_it_was(staging: Run, variant: Run) -> None:
    """Adding the deploying role to adminRoleArns changes no resource name, so the update
    never creates a second entry for a principal that has one (EKS refuses it)."""
    before = {r.name: r.inputs["principalArn"] for r in staging.of_type(ENTRY)}
    after = {r.name: r.inputs["principalArn"] for r in variant.of_type(ENTRY)}
    assert before.items() <= after.items()


def test_admin_roles_get_entries_and_the_deployer_is_not_doubled(variant: Run) -> None:
    entries = {r.name: r.inputs["principalArn"] for r in variant.of_type(ENTRY)}
    assert entries == {
        "aws-eks-admin-huboperators": OPS_ROLE,
        "aws-eks-admin-pangeo-deployer": AWS_DEPLOYER_ROLE,
    }
    policies = {r.name: r.inputs["policyArn"] for r in variant.of_type(ASSOCIATION)}
    assert policies == dict.fromkeys(entries, ADMIN_POLICY)


def test_control_plane_logs_by_environment_with_bounded_retention(staging: Run, prod: Run) -> None:
    """Prod logs all five types; staging only who did what and who logged in as whom (the
    api log is billed per GB ingested and can cost more than the control plane)."""
    assert sorted(cluster(prod)["enabledClusterLogTypes"]) == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]
    assert sorted(cluster(staging)["enabledClusterLogTypes"]) == ["audit", "authenticator"]
    for run, days in ((staging, 14), (prod, 90)):
        group = run.one("aws:cloudwatch/logGroup:LogGroup")
        assert group.inputs["name"] == f"/aws/eks/{cluster(run)['name']}/cluster"
        assert group.inputs["retentionInDays"] == days
        assert group.urn in run.one(CLUSTER).dependencies


def test_secrets_encrypted_with_a_rotating_key(staging: Run) -> None:
    key = staging.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    (encryption,) = [cluster(staging)["encryptionConfig"]]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"] == key.outputs["arn"]
    grant = json.loads(
        staging.one("aws:iam/rolePolicy:RolePolicy", "aws-eks-role-kms").inputs["policy"]
    )
    (statement,) = grant["Statement"]
    assert statement["Resource"] == key.outputs["arn"]
    assert "kms:Decrypt" in statement["Action"]


def test_public_endpoint_restricted_to_configured_cidrs(staging: Run, variant: Run) -> None:
    assert cluster(staging)["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert cluster(variant)["vpcConfig"]["publicAccessCidrs"] == ["192.0.2.0/24"]
    assert cluster(variant)["vpcConfig"]["endpointPrivateAccess"] is True


def test_deletion_protection_only_in_prod(staging: Run, prod: Run) -> None:
    assert cluster(staging)["deletionProtection"] is False
    assert cluster(prod)["deletionProtection"] is True


def test_oidc_provider_for_irsa(staging: Run) -> None:
    oidc = staging.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == EKS_ISSUER
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_managed_add_ons(staging: Run) -> None:
    addons = {r.inputs["addonName"]: r for r in staging.of_type(ADDON)}
    assert sorted(addons) == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
    assert cluster(staging)["bootstrapSelfManagedAddons"] is False
    for addon in addons.values():
        assert addon.inputs["clusterName"] == "pangeo-binder-staging"
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"


def test_vpc_cni_enforces_network_policy(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        cni = run.one(ADDON, "aws-eks-vpc-cni")
        assert json.loads(cni.inputs["configurationValues"])["enableNetworkPolicy"] == "true"


def test_add_ons_with_irsa_roles(staging: Run) -> None:
    for addon, role in (
        ("vpc-cni", "aws-eks-vpc-cni"),
        ("aws-ebs-csi-driver", "aws-eks-aws-ebs-csi-driver"),
    ):
        arn = staging.one("aws:iam/role:Role", role).outputs["arn"]
        assert staging.one(ADDON, f"aws-eks-{addon}").inputs["serviceAccountRoleArn"] == arn


def test_deployments_wait_for_nodes(staging: Run) -> None:
    groups = [r.urn for r in staging.of_type("aws:eks/nodeGroup:NodeGroup")]
    for addon in ("coredns", "aws-ebs-csi-driver"):
        deps = staging.one(ADDON, f"aws-eks-{addon}").dependencies
        assert set(groups) <= set(deps), addon


def test_gp3_is_the_default_storage_class(staging: Run, prod: Run) -> None:
    for run, reclaim in ((staging, "Delete"), (prod, "Retain")):
        sc = run.one("kubernetes:storage.k8s.io/v1:StorageClass", "aws-eks-gp3")
        assert sc.inputs["metadata"]["annotations"] == {
            "storageclass.kubernetes.io/is-default-class": "true"
        }
        assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
        assert sc.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
        assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
        assert sc.inputs["reclaimPolicy"] == reclaim
        assert sc.provider_urn == run.one("pulumi:providers:kubernetes", "aws-eks-k8s").urn
        assert run.one(ADDON, "aws-eks-aws-ebs-csi-driver").urn in sc.dependencies


def test_kubernetes_provider_uses_exec_auth_and_no_token(staging: Run) -> None:
    provider = staging.one("pulumi:providers:kubernetes", "aws-eks-k8s")
    assert "kubeconfig" in provider.secret_inputs
    config = json.loads(provider.inputs["kubeconfig"])
    (user,) = config["users"]
    assert "token" not in user["user"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"][:2] == ["eks", "get-token"]
    assert exec_["args"][exec_["args"].index("--cluster-name") + 1] == "pangeo-binder-staging"
    assert exec_["args"][exec_["args"].index("--region") + 1] == "us-west-2"
    (entry,) = config["clusters"]
    assert entry["cluster"]["server"].startswith("https://")
    assert entry["cluster"]["certificate-authority-data"] == "TU9DSyBDQQ=="
    # The provider authenticates as the deployer: its access entry must exist first.
    assert staging.one(ASSOCIATION, "aws-eks-admin-pangeo-deployer").urn in provider.dependencies


def test_kubeconfig_output_is_secret(staging: Run) -> None:
    assert "awsKubeconfig" in staging.secret_outputs
    assert json.loads(staging.stack_outputs["awsKubeconfig"])["current-context"] == (
        "pangeo-binder-staging"
    )


def test_outputs_have_the_gcp_shape(staging: Run) -> None:
    aws_out = staging.stack_outputs["aws"]
    assert set(aws_out) == set(staging.stack_outputs["gcp"])
    assert aws_out["scratchBucket"] == "s3://pangeo-binder-staging-123456789012-scratch"
    assert aws_out["registry"] == "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    assert aws_out["usersIdentity"] == "arn:aws:iam::123456789012:role/pangeo-binder-staging-users"


def test_one_explicit_aws_provider_for_everything(staging: Run) -> None:
    provider = staging.one("pulumi:providers:aws", "aws-provider")
    assert provider.inputs["region"] == "us-west-2"
    # Provider inputs reach the engine as JSON strings.
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "managed-by": "pulumi",
        "deployment": "pangeo-binder-staging",
    }
    aws_resources = [r for r in staging.custom() if r.type.startswith("aws:")]
    assert len(aws_resources) > 50
    for resource in aws_resources:
        assert resource.provider_urn == provider.urn, resource.name


def test_aws_resources_hang_off_the_aws_stack(staging: Run) -> None:
    root = staging.one("pangeo-binder:aws:Stack")
    parents = {r.urn: r.parent for r in staging.registrations}
    for resource in staging.registrations:
        if resource.type.startswith(("aws:", "pangeo-binder:aws:")) and resource is not root:
            urn = resource.urn
            while parents.get(urn) and urn != root.urn:
                urn = parents[urn]
            assert urn == root.urn, resource.name


# --- network ---------------------------------------------------------------------------


def test_subnet_plan_splits_the_vpc_in_eighths() -> None:
    plans = plan_subnets(IPv4Network("10.0.0.0/16"), ["a", "b", "c"])
    assert [p.private_cidr for p in plans] == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    assert [p.public_cidr for p in plans] == ["10.0.128.0/19", "10.0.160.0/19", "10.0.192.0/19"]


def test_staging_has_no_nat_and_public_nodes(staging: Run) -> None:
    assert staging.of_type(NAT) == []
    # The only Elastic IPs are the hub's and the public Binder's reserved addresses
    # (docs/howto/https.md, docs/howto/public-binder.md), none for NAT.
    assert sorted(e.name for e in staging.of_type("aws:ec2/eip:Eip")) == [
        f"aws-{site}-address-us-west-2{zone}" for site in ("hub", "public") for zone in "abc"
    ]
    for subnet in staging.of_type(SUBNET):
        public = "-public-" in subnet.name
        assert subnet.inputs["mapPublicIpOnLaunch"] is public, subnet.name
    for table in staging.of_type(ROUTE_TABLE):
        if "-private-" in table.name:
            assert table.inputs.get("routes", []) == [], table.name


def test_prod_has_one_nat_for_private_nodes(prod: Run) -> None:
    (nat,) = prod.of_type(NAT)
    assert nat.inputs["subnetId"] == "aws-network-public-us-west-2a-id"
    for subnet in prod.of_type(SUBNET):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False, subnet.name
    private_tables = [t for t in prod.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len(private_tables) == 3
    for table in private_tables:
        assert table.inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "natGatewayId": "aws-network-nat-us-west-2a-id"}
        ]


def test_nat_per_zone_over_configured_zones(variant: Run) -> None:
    nats = {r.name: r.inputs["subnetId"] for r in variant.of_type(NAT)}
    assert nats == {
        "aws-network-nat-us-west-2b": "aws-network-public-us-west-2b-id",
        "aws-network-nat-us-west-2c": "aws-network-public-us-west-2c-id",
    }
    for zone in "bc":
        table = variant.one(ROUTE_TABLE, f"aws-network-private-us-west-2{zone}")
        assert table.inputs["routes"][0]["natGatewayId"] == f"aws-network-nat-us-west-2{zone}-id"
    assert sorted(s.inputs["availabilityZone"] for s in variant.of_type(SUBNET)) == [
        "us-west-2b",
        "us-west-2b",
        "us-west-2c",
        "us-west-2c",
    ]


def test_subnets_tagged_for_load_balancers_and_the_cluster(staging: Run) -> None:
    for subnet in staging.of_type(SUBNET):
        tags = subnet.inputs["tags"]
        assert tags["kubernetes.io/cluster/pangeo-binder-staging"] == "shared"
        role = (
            "kubernetes.io/role/elb"
            if "-public-" in subnet.name
            else "kubernetes.io/role/internal-elb"
        )
        assert tags[role] == "1", subnet.name


def test_control_plane_in_private_subnets(staging: Run) -> None:
    assert cluster(staging)["vpcConfig"]["subnetIds"] == [
        f"aws-network-private-us-west-2{zone}-id" for zone in "abc"
    ]


def test_nothing_admits_inbound_traffic_from_the_internet(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        default = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
        assert default.inputs.get("ingress", []) == []
        assert default.inputs.get("egress", []) == []
        for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
            for rule in sg.inputs.get("ingress", []):
                assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg.name
        assert run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []
        assert run.of_type("aws:ec2/securityGroupRule:SecurityGroupRule") == []


def test_s3_gateway_endpoint_on_every_route_table(prod: Run) -> None:
    endpoint = prod.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-west-2.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert sorted(endpoint.inputs["routeTableIds"]) == sorted(
        f"{t.name}-id" for t in prod.of_type(ROUTE_TABLE)
    )


def test_component_outputs_for_the_hub_layer() -> None:
    """The hub layer annotates its service accounts from these, without knowing the cloud."""
    captured: dict[str, CloudOutputs] = {}

    def program() -> None:
        config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
        assert config.clouds.aws is not None
        stack = AwsStack(
            "aws",
            config.clouds.aws,
            deployment="pangeo-binder-staging",
            environment="staging",
            service_accounts=config.hub.workload_service_accounts(),
        )
        captured["outputs"] = stack.outputs
        pulumi.export("annotations", stack.outputs.service_account_annotations)
        pulumi.export("identities", stack.outputs.identities)

    run = run_function(program, "staging")
    outputs = captured["outputs"]
    assert outputs.cloud == "aws"
    assert outputs.kubernetes_provider is not None
    role = "arn:aws:iam::123456789012:role/pangeo-binder-staging-"
    assert run.stack_outputs["identities"] == {
        "users": f"{role}users",
        "builder": f"{role}builder",
        "backup": f"{role}backup",
    }
    assert run.stack_outputs["annotations"] == {
        "users": {"eks.amazonaws.com/role-arn": f"{role}users"},
        "builder": {"eks.amazonaws.com/role-arn": f"{role}builder"},
        "backup": {"eks.amazonaws.com/role-arn": f"{role}backup"},
    }


def test_a_listed_arn_never_replaces_the_deployers_entry() -> None:
    """The deployer's role listed under another path is a role that does not exist (IAM
    role names are unique in an account): dropping the deployer's entry for it would lock
    the program out. It is refused, naming the ARN to list."""
    listed = AWS_DEPLOYER_ROLE.replace(":role/", ":role/aws-reserved/sso.amazonaws.com/")
    config = with_value(stack_config("staging"), "clouds.aws.adminRoleArns", [listed])
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match="the deploying role is arn:aws:iam::123456789012:role"):
        run_program("staging", config, monitor)
    assert [r.type for r in monitor.registrations if r.custom and r.type.startswith("aws:")] == []


def test_a_role_of_the_same_name_in_another_account_is_another_entry() -> None:
    other = AWS_DEPLOYER_ROLE.replace("123456789012", "210987654321")
    config = with_value(stack_config("staging"), "clouds.aws.adminRoleArns", [other])
    entries = run_program("staging", config).of_type(ENTRY)
    assert {e.name: e.inputs["principalArn"] for e in entries} == {
        "aws-eks-admin-pangeo-deployer": other,
        "aws-eks-deployer": AWS_DEPLOYER_ROLE,
    }
    assert [e.alias_names for e in entries] == [[], []]


CI = "arn:aws:iam::111111111111:role/ci"
OPS = "arn:aws:iam::111111111111:role/ops/Admin"


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ([], {"admin-ci": CI}),
        ([OPS], {"admin-admin": OPS, "admin-ci": CI}),
        ([CI], {"admin-ci": CI}),
        ([OPS, CI], {"admin-admin": OPS, "admin-ci": CI}),
    ],
)
def test_admin_principals(listed: list[str], expected: dict[str, str]) -> None:
    principals = admin_principals(listed, CI)
    assert principals.entries == expected
    assert principals.deployer == "admin-ci"


def test_admin_principals_refuse_the_deployers_name_under_another_path() -> None:
    sso = (
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/eu-west-1/"
        "AWSReservedSSO_Admin_0123abcd"
    )
    pathless = "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_0123abcd"
    with pytest.raises(ValueError, match=f"deploying role is {sso}"):
        admin_principals([pathless], sso)


def test_add_ons_pinned_to_the_default_version_for_the_cluster_version(
    staging: Run,
) -> None:
    """Each add-on's version is looked up for the cluster's Kubernetes minor, through the
    stack's own provider, so a version change moves the add-ons with the control plane."""
    provider = staging.one("pulumi:providers:aws", "aws-provider").urn
    lookups = {
        c.args["addonName"]: c
        for c in staging.calls
        if c.token == "aws:eks/getAddonVersion:getAddonVersion"
    }
    assert sorted(lookups) == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
    for name, call in lookups.items():
        assert call.args["kubernetesVersion"] == "1.35", name
        assert call.args["mostRecent"] is False, name
        assert call.provider.startswith(provider), name
        addon = staging.one(ADDON, f"aws-eks-{name}")
        assert addon.inputs["addonVersion"] == addon_default_version(name, "1.35"), name


def test_a_new_kubernetes_version_moves_the_add_ons() -> None:
    config = with_value(stack_config("staging"), "clouds.aws.kubernetesVersion", "1.36")
    run = run_program("staging", config)
    assert cluster(run)["version"] == "1.36"
    proxy = run.one(ADDON, "aws-eks-kube-proxy")
    assert proxy.inputs["addonVersion"] == "v1.36.2-eksbuild.3"
    values = run.one("kubernetes:helm.sh/v3:Release", "aws-autoscaler-release").inputs["values"]
    assert values["image"]["tag"] == "v1.36.1"
