"""The `clouds.aws` section of the stack config and the rules that need AWS's catalog.

Every rule is a field validator (cross-field rules read earlier fields from `info.data`), so
pydantic reports all problems at once, each at its key path, before anything is registered.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

from pangeo_binder import catalog
from pangeo_binder.config_public import PublicBinder
from pangeo_binder.config_shared import (
    CONTROL_PLANE_ACCESS,
    OPEN_TO_ALL,
    Cidr,
    CloudHub,
    Email,
    Gpu,
    ImageCacheSettings,
    Model,
    NodePool,
    PoolKey,
    RegistrySettings,
    RegistryUser,
    StorageSettings,
    pool_error,
    validate_pools,
)

ROLE_ARN_PATTERN = r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
# IAM Identity Center creates its roles under this path, followed by the Identity Center
# region (absent only for instances created in us-east-1 before regions were added to it).
# EKS refuses an access entry for such a role without its path ("The specified principalArn
# is invalid: invalid principal", terraform-aws-modules/terraform-aws-eks#2969); the path with
# its region segment: aws/sagemaker-hyperpod-cli#303, thoughtbot/cloudformation-terraform-
# state-backend#7 (us-east-1 without a region). Reviewed 2026-11-26.
SSO_ROLE_PREFIX = "AWSReservedSSO_"
SSO_ROLE_PATH = r"aws-reserved/sso\.amazonaws\.com(\.cn)?/([a-z]{2}(-[a-z]+)+-\d/)?"
NatGateways = Literal["none", "single", "perAz"]


def instance_family(instance_type: str) -> str:
    """`r5.xlarge` -> `r5`, `m7i-flex.large` -> `m7i-flex`."""
    return instance_type.split(".", 1)[0]


def instance_size(instance_type: str) -> str:
    """`r5.xlarge` -> `xlarge`."""
    return instance_type.split(".", 1)[1] if "." in instance_type else ""


def instance_class(instance_type: str) -> str:
    """The letters a family starts with (`r6i` -> `r`): memory-to-CPU ratio and purpose."""
    match = re.match(r"[a-z]+", instance_type)
    return match.group(0) if match else ""


def role_name(arn: str) -> str:
    """`arn:aws:iam::123456789012:role/path/Name` -> `Name` (names access entries)."""
    return arn.rsplit("/", 1)[-1]


def role_path(arn: str) -> str:
    """`arn:aws:iam::123456789012:role/path/to/Name` -> `path/to/` ('' without a path)."""
    after_role = arn.split(":role/", 1)[-1]
    return after_role[: -len(role_name(arn))]


def sso_role_without_path(arn: str) -> bool:
    """An Identity Center role (`AWSReservedSSO_...`) written without the path IAM gave it."""
    return role_name(arn).startswith(SSO_ROLE_PREFIX) and not re.fullmatch(
        SSO_ROLE_PATH, role_path(arn)
    )


def same_role(a: str, b: str) -> bool:
    """Two ARNs for one role: IAM role names are unique in an account, whatever the path."""
    return a.split(":")[4] == b.split(":")[4] and role_name(a) == role_name(b)


def _role_arns(arns: list[str]) -> list[str]:
    """IAM role ARNs as EKS accepts them in access entries (Identity Center roles with their
    path), each role name once: entries are named after the role."""
    bad = [arn for arn in arns if not re.fullmatch(ROLE_ARN_PATTERN, arn)]
    if bad:
        raise ValueError(
            f"not IAM role ARNs: {', '.join(bad)}; accepted: arn:aws:iam::<12-digit "
            "account>:role/<name> (for an SSO user, its AWSReservedSSO_... role)"
        )
    pathless = [arn for arn in arns if sso_role_without_path(arn)]
    if pathless:
        raise ValueError(
            f"IAM Identity Center roles need their full path, which EKS requires: "
            f"{', '.join(pathless)}; write arn:aws:iam::<account>:role/aws-reserved/"
            "sso.amazonaws.com/<region>/AWSReservedSSO_<permission set>_<id> (`aws iam "
            "get-role --role-name AWSReservedSSO_...` prints it)"
        )
    if len({role_name(arn) for arn in arns}) != len(arns):
        raise ValueError("two ARNs name the same role name; list each role once")
    return arns


def _known_instance_type(instance_type: str) -> str:
    families = catalog.aws().families
    if "." not in instance_type or instance_family(instance_type) not in families:
        raise ValueError(
            f"unknown instance family in {instance_type!r}; accepted families: "
            f"{', '.join(sorted(families))} (as in r5.xlarge)"
        )
    return instance_type


class AwsNodePool(NodePool):
    """An EKS managed node group; instance types and GPUs are checked against `data/aws.yaml`."""

    instance_types: list[str] | None = Field(
        None,
        min_length=1,
        description="Several instance types of one size for one group (r5.4xlarge, r5a.4xlarge, "
        "r6i.4xlarge): spot capacity is found in more pools. Unset: [machineType]. The cluster "
        "autoscaler plans with the first type, so they must match in size, class and GPUs.",
    )

    @field_validator("machine_type")
    @classmethod
    def _known_family(cls, machine_type: str) -> str:
        return _known_instance_type(machine_type)

    @field_validator("gpu")
    @classmethod
    def _gpu_fits_instance(cls, gpu: Gpu | None, info: ValidationInfo) -> Gpu | None:
        machine_type = info.data.get("machine_type")
        if machine_type is None:  # already reported as a machine type problem
            return gpu
        cat = catalog.aws()
        builtin = cat.gpu_type(instance_family(machine_type))
        count = cat.gpu_counts.get(machine_type)
        if gpu is None:
            if builtin:
                raise ValueError(
                    f"{machine_type} comes with GPUs: declare them as gpu: {{type: {builtin}, "
                    f"count: {count or 1}}} (the group then gets the NVIDIA AMI and GPU taint)"
                )
            return gpu
        if builtin is None:
            gpu_families = sorted(f for f, facts in cat.families.items() if facts.get("gpu"))
            raise ValueError(
                f"{machine_type} has no GPUs; GPU pools need a GPU instance family: "
                f"{', '.join(gpu_families)}"
            )
        if gpu.type != builtin:
            raise ValueError(f"{machine_type} has {builtin} GPUs; got type {gpu.type}")
        if count is None:
            raise ValueError(f"unknown GPU instance size {machine_type!r}; add it to gpuCounts")
        if gpu.count != count:
            raise ValueError(f"{machine_type} has exactly {count} GPUs; got count {gpu.count}")
        return gpu

    @field_validator("instance_types")
    @classmethod
    def _one_size(cls, types: list[str] | None, info: ValidationInfo) -> list[str] | None:
        """Each type known; all interchangeable with machineType, because the autoscaler
        sizes a node it has not started from one type and would misjudge the others."""
        machine_type = info.data.get("machine_type")
        if types is None or machine_type is None:
            return types
        for instance_type in types:
            _known_instance_type(instance_type)
        if machine_type not in types:
            raise ValueError(f"must include machineType ({machine_type}); got {types}")
        cat = catalog.aws()

        def shape(t: str) -> tuple[str, str, bool, str | None, int | None]:
            family = instance_family(t)
            return (
                instance_size(t),
                instance_class(t),
                cat.arm64(family),
                cat.gpu_type(family),
                cat.gpu_counts.get(t),
            )

        odd = [t for t in types if shape(t) != shape(machine_type)]
        if odd:
            raise ValueError(
                f"{', '.join(odd)} differ from {machine_type} in size, class, CPU architecture "
                "or GPUs; list types of one size and kind (r5.4xlarge, r5a.4xlarge, r6i.4xlarge)"
            )
        return types

    @property
    def all_instance_types(self) -> list[str]:
        return self.instance_types or [self.machine_type]

    @property
    def arm64(self) -> bool:
        return catalog.aws().arm64(instance_family(self.machine_type))


class AwsBudget(Model):
    """An AWS Budgets cost budget on the account, emailing at 50/90/100/120% of the amount."""

    monthly_usd: float = Field(gt=0, description="Monthly amount the alerts are relative to.")
    emails: list[Email] = Field(
        min_length=1,
        max_length=10,
        description="Addresses the alerts go to (AWS Budgets allows 10 per notification).",
    )


class AwsStorageSettings(StorageSettings):
    """S3 buckets: the persistent one is versioned in every environment."""

    noncurrent_version_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="An overwritten or deleted object of the persistent bucket stays "
        "recoverable this many days (S3 keeps it as a noncurrent version, billed like any "
        "object): a month to notice a mistaken `rm -r`, without keeping every old version "
        "forever.",
    )


# gp3's included throughput; more is billed per MiB/s-month.
GP3_BASE_THROUGHPUT = 125


class AwsImageCache(ImageCacheSettings):
    """ECR pull-through cache rules, and parallel image pulls on the nodes.

    quay.io, ECR Public and registry.k8s.io are cached without credentials. ECR caches
    Docker Hub and ghcr.io only with credentials (a Secrets Manager secret), so those two are
    cached only when their user name (and its token, secrets.aws.<x>Token) are configured.
    """

    ghcr_username: RegistryUser | None = Field(
        None,
        description="GitHub account the ghcr.io cache logs in as (ECR caches ghcr.io only with "
        "credentials); its token (a classic token with read:packages) is the secret "
        "secrets.aws.ghcrToken.",
    )
    parallel_pull: bool = Field(
        True,
        description="SOCI parallel pull and unpack (nodeadm's FastImagePull) on user and dask "
        "groups whose every instance type has at least 4 vCPUs and 7 GiB (nodeadm ignores "
        "the setting below that, so smaller groups do not get it).",
    )
    pull_throughput_mibps: int = Field(
        600,
        ge=GP3_BASE_THROUGHPUT,
        le=1000,
        description="gp3 root volume throughput of the groups with parallel pull (MiB/s): "
        "parallel pull writes layers as fast as the disk takes them. Above 125 it is billed "
        "per MiB/s-month (priced in the plan); IOPS rise with it above 750 (4 IOPS per MiB/s).",
    )

    @classmethod
    def upstreams_offered(cls) -> tuple[str, ...]:
        return ("dockerHub", "quay", "ghcr", "ecrPublic", "k8s")

    def cached(self) -> list[str]:
        if not self.enabled:
            return []
        logins = {"dockerHub": self.docker_hub_username, "ghcr": self.ghcr_username}
        return [key for key in self.upstreams_offered() if logins.get(key, "anonymous")]


class AwsCloud(Model):
    """Everything deployed on AWS for one stack."""

    region: str = Field(description="Region for the VPC, cluster, buckets and registry.")
    availability_zones: list[str] | None = Field(
        None,
        description="2 or 3 zones of the region. Unset: the first three the account sees "
        "(the control plane needs two; a third gives spot and GPU groups more capacity).",
    )
    kubernetes_version: str = Field(
        "1.35",
        description="EKS minor version. Only versions in standard support are accepted: "
        "extended support costs six times as much per control-plane hour.",
    )
    node_pools: dict[PoolKey, AwsNodePool] = Field(
        description="Node groups by name; the name prefixes the EKS node group name."
    )
    hub: CloudHub
    public_binder: PublicBinder | None = Field(
        None,
        description="An anonymous Binder for allowed repositories beside the hub "
        "(docs/howto/public-binder.md). Unset: none.",
    )
    storage: AwsStorageSettings = Field(default_factory=AwsStorageSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    image_cache: AwsImageCache = Field(default_factory=AwsImageCache)
    nat_gateways: NatGateways | None = Field(
        None,
        description="none: nodes in public subnets (no inbound rules; saves ~$33/month per "
        "gateway plus data charges); single: one gateway, private nodes, one zone's gateway "
        "is a single point of failure for egress; perAz: one per zone. Unset: the "
        "environment decides (staging none, prod single), as `AwsCloud.nat_mode` resolves it.",
    )
    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles given cluster-admin access entries besides the deploying "
        "role (deployerRoleArn, else the role that runs the program), which always keeps "
        "its own. Empty without deployerRoleArn: the only admin is whoever ran the last "
        "`pulumi up` (each deploy by another role moves the entry to it), so list every "
        "role that deploys or runs kubectl (operators). Identity Center roles with their full path "
        "(aws-reserved/sso.amazonaws.com/<region>/AWSReservedSSO_...): EKS refuses them "
        "without it.",
    )
    deployer_role_arn: str | None = Field(
        None,
        description="The role whose access entry is the deployer's, whoever runs the program: "
        "CI's deploy role from `ci-identities`, so that a preview under another role (CI's "
        "preview role) plans no change to it. Whoever runs `pulumi up` by hand then needs "
        "to be in adminRoleArns. Unset: the role that runs the program, so the entry "
        "follows whoever ran the last `pulumi up`. Written like adminRoleArns.",
    )
    account_id: str | None = Field(
        None,
        description="The 12-digit AWS account this stack deploys to. Set: the program stops "
        "before creating anything when the credentials it runs with belong to another "
        "account (a profile left pointing elsewhere). Unset: whichever account the "
        "credentials are in.",
    )
    viewer_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM roles given read-only access entries (AmazonEKSViewPolicy, cluster "
        "wide; no Secrets): CI's preview role from `ci-identities`, so the Kubernetes part "
        "of a pull request's preview can read the cluster. Empty: nobody reads without "
        "being admin. Written like adminRoleArns; a role is listed here or there, not both.",
    )
    control_plane_access: list[Cidr] = Field(
        default_factory=lambda: list(OPEN_TO_ALL),
        min_length=1,
        description=f"{CONTROL_PLANE_ACCESS} EKS: the public endpoint's access CIDRs.",
    )
    vpc_cidr: IPv4Network = Field(
        IPv4Network("10.0.0.0/16"),
        description="VPC range, split into 8 equal subnets (3 private, 3 public, 2 spare): "
        "the VPC CNI gives every pod a VPC address, so subnets are large.",
    )
    scan_on_push: bool = Field(
        False,
        description="Basic vulnerability scan of every image pushed under this deployment's "
        "prefix. Off by default: ECR keeps one scanning configuration per account and "
        "region and this replaces all of it, which turns off Amazon Inspector enhanced "
        "scanning and other stacks' rules in a shared account. Set true in one stack of an "
        "account and region that nothing else scans.",
    )
    budget: AwsBudget | None = None
    cost_allocation_tags: bool = Field(
        False,
        description="Activate the node groups' tags (pangeo-binder.io/hub, /pool, /purpose, on "
        "every instance and volume) as cost allocation tags, so Cost Explorer and the bill break "
        "costs down by them. Turn on once the tags have appeared in the billing data (up to a "
        "day after the first nodes ran): AWS refuses to activate a tag key it has not seen. "
        "Account-wide: one stack per account should own them.",
    )

    @field_validator("node_pools", mode="wrap")
    @classmethod
    def _pools(cls, pools: Any, handler: Any, info: ValidationInfo) -> Any:
        region = info.data.get("region")
        if region is None:  # already reported; zones cannot be checked without it
            return validate_pools(pools, handler)
        vpc_zones = info.data.get("availability_zones")
        return validate_pools(pools, handler, lambda raw: pool_zone_errors(raw, region, vpc_zones))

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_id(cls, account: Any) -> Any:
        # YAML reads an unquoted 12-digit id as a number; a leading zero would be lost.
        if account is None:
            return account
        if not isinstance(account, str) or not re.fullmatch(r"[0-9]{12}", account):
            raise ValueError(
                f"an AWS account id is 12 digits, quoted in YAML ('012345678901'); got {account!r}"
            )
        return account

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        regions = catalog.aws().regions
        if region not in regions:
            raise ValueError(f"unknown AWS region {region!r}; accepted: {', '.join(regions)}")
        return region

    @field_validator("availability_zones")
    @classmethod
    def _zones_in_region(cls, zones: list[str] | None, info: ValidationInfo) -> list[str] | None:
        region = info.data.get("region")
        if zones is None:
            return zones
        if not 2 <= len(zones) <= 3 or len(set(zones)) != len(zones):
            raise ValueError(f"list 2 or 3 distinct zones; got {zones}")
        if region is None:  # already reported
            return zones
        known = catalog.aws().zones(region)
        outside = [zone for zone in zones if zone not in known]
        if outside:
            raise ValueError(
                f"{', '.join(outside)} not in region {region}; accepted: {', '.join(known)}"
            )
        return zones

    @field_validator("admin_role_arns")
    @classmethod
    def _admin_roles(cls, arns: list[str]) -> list[str]:
        return _role_arns(arns)

    @field_validator("deployer_role_arn")
    @classmethod
    def _deployer_role(cls, arn: str | None, info: ValidationInfo) -> str | None:
        """A role ARN, and not an admin role's name under another path: IAM role names are
        unique in an account, so one of the two names a role that does not exist."""
        if arn is None:
            return arn
        _role_arns([arn])
        for admin in info.data.get("admin_role_arns") or []:
            if admin != arn and same_role(admin, arn):
                raise ValueError(
                    f"adminRoleArns lists {admin}, the same role under another path: write "
                    "the role's ARN (`aws iam get-role --role-name NAME`) in both places"
                )
        return arn

    @field_validator("viewer_role_arns")
    @classmethod
    def _viewer_roles(cls, arns: list[str], info: ValidationInfo) -> list[str]:
        """Role ARNs, none an admin's or the deployer's: EKS keeps one access entry per
        principal, and an admin needs no read-only entry."""
        _role_arns(arns)
        admins = info.data.get("admin_role_arns") or []
        deployer = info.data.get("deployer_role_arn")
        both = [arn for arn in arns if any(same_role(arn, admin) for admin in admins)]
        if both:
            raise ValueError(
                f"listed in adminRoleArns too: {', '.join(both)}; an admin reads the cluster "
                "already, and EKS allows one access entry per role: list each role once"
            )
        if deployer is not None and any(same_role(arn, deployer) for arn in arns):
            raise ValueError(
                f"{deployer} is deployerRoleArn, which is cluster admin; list it only there"
            )
        return arns

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str) -> str:
        versions = catalog.aws().kubernetes_versions
        if version not in versions:
            raise ValueError(
                f"Kubernetes {version!r} is not an EKS version in standard support; accepted: "
                f"{', '.join(versions)}"
            )
        return version

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, cidr: IPv4Network) -> IPv4Network:
        if not 16 <= cidr.prefixlen <= 20 or not cidr.is_private:
            raise ValueError(
                f"use a private range from /16 to /20 (subnets are an eighth of it); got {cidr}"
            )
        return cidr

    def pool_zones(self, key: str, vpc_zones: list[str]) -> list[str]:
        """The zones group `key` runs in, among the VPC's `vpc_zones` (configured, or the
        account's first three when `availabilityZones` is unset, known only at deploy time).

        Unset `zones`: the first VPC zone for every group. Core and user groups keep the hub
        database and home directories (EBS volumes, bound to one zone) reachable, as the
        autoscaler cannot choose the zone a multi-zone group starts a node in; dask groups stay
        with them because traffic between zones is billed per GB each way.
        """
        pool = self.node_pools[key]
        if not pool.zones:
            return list(vpc_zones[:1])
        outside = [zone for zone in pool.zones if zone not in vpc_zones]
        if outside:
            raise ValueError(
                f"clouds.aws.nodePools.{key}.zones: {', '.join(outside)} not among the VPC's "
                f"zones ({', '.join(vpc_zones)}); list them in availabilityZones or pick from those"
            )
        return list(pool.zones)

    def nat_mode(self, environment: str) -> NatGateways:
        """`natGateways`, or the environment's default: staging none (cost), prod single."""
        if self.nat_gateways is not None:
            return self.nat_gateways
        return "single" if environment == "prod" else "none"


def pool_zone_errors(
    pools: dict[str, Any], region: str, vpc_zones: list[str] | None
) -> list[InitErrorDetails]:
    """Each pool's zones are zones of the region and, with `availabilityZones` set, of the VPC.

    Which zones offer an instance type is not checked: AWS maps zone letters to physical zones
    per account, so no table can say it; `aws ec2 describe-instance-type-offerings` does.
    """
    known = catalog.aws().zones(region)
    accepted = vpc_zones if vpc_zones is not None else known
    errors = []
    for key, pool in pools.items():
        zones = pool.get("zones") if isinstance(pool, dict) else None
        if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
            continue
        outside = [zone for zone in zones if zone not in accepted]
        if outside:
            where = "availabilityZones" if vpc_zones is not None else f"region {region}"
            errors.append(
                pool_error(
                    key,
                    "zones",
                    "pool_zones",
                    f"{', '.join(outside)} not in {where}; accepted: {', '.join(accepted)}",
                    zones,
                )
            )
    return errors
