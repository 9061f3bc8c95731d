"""Pulumi's mock engine for pangeo-binder programs: public, for adopters and for our tests.

Run a Pulumi program (`__main__.py`) or a single component under Pulumi's mocks, offline,
and get back every resource registration with its type, inputs and options (parent,
provider, protect, retain_on_delete, ignore_changes, dependencies), the stack outputs and
the provider calls: what a real `pulumi preview` would send to the engine. The mocks give
realistic outputs for the types the components read (emails, ARNs, endpoints, ...).

A hub that adopts the library tests its own program with it::

    from pangeo_binder.testing import Project

    run = Project(Path("path/to/project")).run_program("staging")
    assert run.one("gcp:container/cluster:Cluster").inputs["location"] == "us-central1-b"

`Project` is bound to a project directory (the one with `Pulumi.yaml`; the current one by
default) and reads `Pulumi.<stack>.yaml` there, or in `stacks=` (a suite's own stack files:
`Project(root, stacks=root / "tests" / "stacks")`). This repository's `tests/harness.py` binds
it to the checkout and the suite's stack files, and the offline plan
(`python -m pangeo_binder.plan`) evaluates every program with it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

# The config namespace the library reads its keys from (`pangeo-binder:clouds`, ...), and
# the project name when a project's `Pulumi.yaml` gives none.
NAMESPACE = "pangeo-binder"


@dataclass
class Registration:
    """One resource as the engine saw it."""

    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    dependencies: list[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_inputs: set[str] = field(default_factory=set)
    alias_names: list[str] = field(default_factory=list)

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if "::" in self.provider else self.provider


def _mock_outputs(
    args: mocks.MockResourceArgs, aws_account: Callable[[], str] = lambda: AWS_ACCOUNT
) -> tuple[str, dict[str, Any]]:
    """Realistic computed outputs for the types whose outputs the program reads (AWS ones in
    the account `aws_account` gives)."""
    inputs = dict(args.inputs)
    name = inputs.get("name") or args.name
    out: dict[str, Any] = {**inputs}
    typ = args.typ
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@{inputs.get('project', 'p')}.iam.gserviceaccount.com"
        out |= {
            "email": email,
            "member": f"serviceAccount:{email}",
            "name": f"projects/{inputs.get('project')}/serviceAccounts/{email}",
        }
    elif typ == "gcp:storage/bucket:Bucket":
        out |= {"url": f"gs://{name}", "selfLink": f"https://storage/{name}"}
    elif typ == "gcp:container/cluster:Cluster":
        out |= {
            "endpoint": "203.0.113.10",
            "masterAuth": {
                **inputs.get("masterAuth", {}),
                "clusterCaCertificate": "TU9DSyBDQQ==",
            },
        }
    elif typ == "gcp:container/nodePool:NodePool":
        out |= {"name": f"{inputs.get('namePrefix', '')}20261125000000000000000001"}
    elif typ == "gcp:compute/network:Network":
        return f"projects/{inputs.get('project')}/global/networks/{name}", out
    elif typ == "gcp:compute/subnetwork:Subnetwork":
        return (
            f"projects/{inputs.get('project')}/regions/{inputs.get('region')}/subnetworks/{name}",
            out,
        )
    elif (
        typ == "kubernetes:core/v1:Service" and inputs.get("spec", {}).get("type") == "LoadBalancer"
    ):
        # What the cloud reports once it has created the load balancer: the reserved address
        # when the Service asks for one.
        ip = inputs["spec"].get("loadBalancerIP") or "203.0.113.20"
        out |= {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
    elif typ == "gcp:compute/address:Address":
        # GCP picks the address at reservation; a documentation range stands in for it.
        out |= {"address": _example_ip("203.0.113", args.name), "selfLink": f"addresses/{name}"}
    elif typ == "random:index/randomId:RandomId":
        # byteLength random bytes, hex-encoded; derived from the name so runs are repeatable.
        digest = hashlib.sha256(args.name.encode()).hexdigest()
        out |= {"hex": digest[: 2 * int(inputs.get("byteLength", 32))]}
    elif typ == "random:index/randomPassword:RandomPassword":
        # `length` characters, derived from the name so runs are repeatable.
        digest = hashlib.sha256(args.name.encode()).hexdigest() * 4
        out |= {"result": digest[: int(inputs.get("length", 16))]}
    elif typ == "gcp:artifactregistry/repository:Repository":
        out |= {"name": inputs.get("repositoryId")}
    elif typ == "gcp:secretmanager/secret:Secret":
        secret = f"projects/{inputs.get('project')}/secrets/{inputs.get('secretId')}"
        out |= {"name": secret}
        return secret, out
    elif typ == "gcp:secretmanager/secretVersion:SecretVersion":
        # The secret's id, then the version number Secret Manager gives the first version.
        version = f"{inputs.get('secret')}/versions/1"
        out |= {"name": version, "version": "1"}
        return version, out
    elif typ == "gcp:monitoring/notificationChannel:NotificationChannel":
        out |= {"name": f"projects/p/notificationChannels/{args.name}"}
    elif typ == "docker-build:index:Image":
        return _image_outputs(inputs, out)
    elif typ.startswith("aws:"):
        return _aws_mock_outputs(args, name, out, aws_account())
    return f"{args.name}-id", out


def _image_outputs(inputs: dict[str, Any], out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What docker-build reports after a pushed build: the manifest's digest (here derived from
    the tags, so a new tag is a new digest), `ref` the first tag with that digest appended, and
    a hash of the context. A build that pushes nothing has no digest and its `ref` is a tag."""
    tags = list(inputs.get("tags") or [])
    context = str((inputs.get("context") or {}).get("location", ""))
    out |= {"contextHash": hashlib.sha256(context.encode()).hexdigest()}
    if not inputs.get("push"):
        return "image-id", out | {"digest": "", "ref": tags[0] if tags else ""}
    digest = "sha256:" + hashlib.sha256("\n".join(tags).encode()).hexdigest()
    return digest, out | {"digest": digest, "ref": f"{tags[0]}@{digest}" if tags else ""}


# A Google OAuth access token's shape (what getClientConfig returns for the caller).
GCP_ACCESS_TOKEN = "ya29.mock-access-token-of-the-deploying-identity"
# ECR's GetAuthorizationToken: base64 of "AWS:<password>", valid for 12 hours.
ECR_PASSWORD = "eyJwYXlsb2FkIjoibW9jayBFQ1IgdG9rZW4ifQ=="


def _example_ip(prefix: str, name: str) -> str:
    """A repeatable address in a documentation range (RFC 5737), derived from `name`."""
    return f"{prefix}.{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 200 + 30}"


# DNS zones the operator already has, by the name a stack file gives (a Cloud DNS managed
# zone's name, a Route 53 hosted zone id) -> the zone's DNS name as each cloud reports it
# (Cloud DNS with the trailing dot, Route 53 without).
DNS_ZONES = {
    "pangeo-binder-example-org": "pangeo-binder.example.org.",
    "Z0EXAMPLE0PANGEO": "pangeo-binder.example.org",
}


AWS_ACCOUNT = "123456789012"
AWS_REGION = "us-west-2"  # the region of the stack files; invokes do not see the provider's
AWS_DEPLOYER_ROLE = f"arn:aws:iam::{AWS_ACCOUNT}:role/pangeo-deployer"
# CI's preview role with the name ci-identities gives it by default.
AWS_PREVIEW_ROLE = f"arn:aws:iam::{AWS_ACCOUNT}:role/pangeo-binder-ci-preview"


@dataclass(frozen=True)
class AwsCaller:
    """Who runs the program: the role behind the session `aws sts get-caller-identity`
    reports. The default is the deploy role that the stack files' tests run as."""

    role_arn: str = AWS_DEPLOYER_ROLE
    session: str = "ci"

    @classmethod
    def in_account(cls, account: str) -> AwsCaller:
        """The deploy role of the same name in another account."""
        return cls(AWS_DEPLOYER_ROLE.replace(f"::{AWS_ACCOUNT}:", f"::{account}:"))

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def session_arn(self) -> str:
        """The assumed-role ARN STS reports, which names the role without its path."""
        account = self.role_arn.split(":")[4]
        name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{name}/{self.session}"


EKS_ISSUER = f"https://oidc.eks.{AWS_REGION}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


def _aws_mock_outputs(
    args: mocks.MockResourceArgs, name: str, out: dict[str, Any], account: str = AWS_ACCOUNT
) -> tuple[str, dict[str, Any]]:
    """What AWS reports after create in `account`, for the AWS types whose outputs the
    program reads."""
    inputs = dict(args.inputs)
    typ = args.typ
    resource_id = f"{args.name}-id"
    if typ == "aws:iam/role:Role":
        out |= {"arn": f"arn:aws:iam::{account}:role/{name}", "name": name}
        resource_id = name
    elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(inputs.get("url", EKS_ISSUER)).removeprefix("https://")
        out |= {"arn": f"arn:aws:iam::{account}:oidc-provider/{host}"}
    elif typ == "aws:eks/cluster:Cluster":
        out |= {
            "arn": f"arn:aws:eks:{AWS_REGION}:{account}:cluster/{name}",
            "endpoint": f"https://EXAMPLED539D4633E53DE1B71EXAMPLE.gr7.{AWS_REGION}.eks.amazonaws.com",
            "certificateAuthority": {"data": "TU9DSyBDQQ=="},
            "identities": [{"oidcs": [{"issuer": EKS_ISSUER}]}],
        }
        resource_id = name
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        group = f"{inputs.get('nodeGroupNamePrefix', '')}20261125000000000000000001"
        out |= {
            "nodeGroupName": group,
            "resources": [{"autoscalingGroups": [{"name": f"eks-{group}-a1b2c3d4-e5f6"}]}],
        }
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out |= {"latestVersion": 1}
        resource_id = f"lt-{args.name}"
    elif typ == "aws:s3/bucket:Bucket":
        out |= {"arn": f"arn:aws:s3:::{inputs.get('bucket')}"}
        resource_id = str(inputs.get("bucket"))
    elif typ == "aws:ec2/eip:Eip":
        digest = hashlib.sha256(args.name.encode()).hexdigest()
        out |= {
            "allocationId": f"eipalloc-{digest[:17]}",
            "publicIp": _example_ip("198.51.100", args.name),
        }
        resource_id = out["allocationId"]
    elif typ == "aws:secretsmanager/secret:Secret":
        # Secrets Manager appends six random characters to the name in the ARN.
        arn = f"arn:aws:secretsmanager:{AWS_REGION}:{account}:secret:{name}-AbCdEf"
        out |= {"arn": arn}
        resource_id = arn
    elif typ == "aws:ecr/pullThroughCacheRule:PullThroughCacheRule":
        out |= {"registryId": account}
        resource_id = str(inputs.get("ecrRepositoryPrefix"))
    elif typ == "aws:kms/key:Key":
        key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
        out |= {"keyId": key_id, "arn": f"arn:aws:kms:{AWS_REGION}:{account}:key/{key_id}"}
    return resource_id, out


# The default version EKS reports per add-on; kube-proxy's follows the Kubernetes minor.
ADDON_VERSIONS = {
    "vpc-cni": "v1.20.4-eksbuild.2",
    "coredns": "v1.12.4-eksbuild.1",
    "aws-ebs-csi-driver": "v1.52.1-eksbuild.1",
}


def addon_default_version(addon: str, kubernetes_version: str) -> str:
    """What `eks:DescribeAddonVersions` marks as default for this add-on and minor."""
    if addon == "kube-proxy":
        return f"v{kubernetes_version}.2-eksbuild.3"
    return ADDON_VERSIONS[addon]


@dataclass
class LiveEks:
    """What already runs in the account: cluster name -> node group name -> desired size.
    Empty (the default) is a first deploy."""

    clusters: dict[str, dict[str, int]] = field(default_factory=dict)


class ZoneNotFound(Exception):
    """What the provider's zone lookup fails with for a zone that does not exist."""


def _zone(zones: dict[str, str], key: str) -> str:
    if key not in zones:
        raise ZoneNotFound(f"DNS zone {key!r} not found")
    return zones[key]


def _aws_call(
    token: str, call_args: dict[str, Any], live: LiveEks, caller: AwsCaller, zones: dict[str, str]
) -> dict[str, Any]:
    if token == "aws:route53/getZone:getZone":
        zone_id = call_args["zoneId"]
        return {"zoneId": zone_id, "name": _zone(zones, zone_id), "id": zone_id}
    if token == "aws:eks/getAddonVersion:getAddonVersion":
        version = call_args["kubernetesVersion"]
        return {
            "addonName": call_args["addonName"],
            "kubernetesVersion": version,
            "mostRecent": bool(call_args.get("mostRecent")),
            "version": addon_default_version(call_args["addonName"], version),
            "id": call_args["addonName"],
        }
    if token == "aws:eks/getClusters:getClusters":
        return {"names": sorted(live.clusters), "id": AWS_REGION}
    if token == "aws:eks/getNodeGroups:getNodeGroups":
        cluster = call_args["clusterName"]
        return {"clusterName": cluster, "names": sorted(live.clusters[cluster]), "id": cluster}
    if token == "aws:eks/getNodeGroup:getNodeGroup":
        cluster, group = call_args["clusterName"], call_args["nodeGroupName"]
        desired = live.clusters[cluster][group]
        return {
            "clusterName": cluster,
            "nodeGroupName": group,
            "scalingConfigs": [{"desiredSize": desired, "minSize": 0, "maxSize": 100}],
            "id": f"{cluster}:{group}",
        }
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": caller.account,
            "arn": caller.session_arn,
            "userId": f"AROAEXAMPLEEXAMPLE:{caller.session}",
            "id": caller.account,
        }
    if token == "aws:iam/getSessionContext:getSessionContext":
        # The provider looks the role up (iam:GetRole) to give its ARN with the path.
        assert call_args.get("arn") == caller.session_arn, call_args
        return {
            "arn": call_args["arn"],
            "issuerArn": caller.role_arn,
            "issuerName": caller.role_arn.rsplit("/", 1)[-1],
            "issuerId": "AROAEXAMPLEEXAMPLE",
            "sessionName": caller.session,
            "id": call_args["arn"],
        }
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        registry = call_args.get("registryId") or caller.account
        return {
            "authorizationToken": base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode(),
            "expiresAt": "2026-12-04T01:00:00Z",
            "password": ECR_PASSWORD,
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{AWS_REGION}.amazonaws.com",
            "registryId": registry,
            "userName": "AWS",
            "id": AWS_REGION,
        }
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {
            "names": [f"{AWS_REGION}{suffix}" for suffix in "abcd"],
            "zoneIds": [f"usw2-az{n}" for n in range(1, 5)],
            "id": AWS_REGION,
        }
    return {}


def _pinned_account() -> str | None:
    """`clouds.aws.accountId` of the config the program runs with, if any."""
    try:
        clouds = pulumi.Config(pulumi.get_project()).get_object("clouds") or {}
    except Exception:  # no config, or not valid JSON: the program reports it, not the mock
        return None
    aws = clouds.get("aws") if isinstance(clouds, dict) else None
    account = aws.get("accountId") if isinstance(aws, dict) else None
    return account if isinstance(account, str) else None


class Mocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        live: LiveEks | None = None,
        caller: AwsCaller | None = None,
        zones: dict[str, str] | None = None,
    ) -> None:
        self.calls: list[mocks.MockCallArgs] = []
        self.live = live or LiveEks()
        self._caller = caller
        self.zones = DNS_ZONES if zones is None else zones

    @property
    def caller(self) -> AwsCaller:
        """The caller given, else the deploy role in the account the running stack pins
        (`clouds.aws.accountId`: a deploy runs with that account's credentials, and a fork's
        own account plans offline as the project's does), else in AWS_ACCOUNT."""
        return self._caller or AwsCaller.in_account(_pinned_account() or AWS_ACCOUNT)

    @caller.setter
    def caller(self, caller: AwsCaller) -> None:
        self._caller = caller

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _mock_outputs(args, lambda: self.caller.account)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list | None]:
        self.calls.append(args)
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": "123456789012", "projectId": args.args.get("projectId")}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            # The provider's project and region, and the caller's access token.
            return {
                "accessToken": GCP_ACCESS_TOKEN,
                "project": "",
                "region": "",
                "zone": "",
                "defaultLabels": {},
                "id": "2026-12-03 13:00:00 +0000 UTC",
            }, []
        if args.token == "gcp:dns/getManagedZone:getManagedZone":
            zone = args.args["name"]
            return {"name": zone, "dnsName": _zone(self.zones, zone), "id": zone}, []
        if args.token.startswith("aws:"):
            return _aws_call(args.token, dict(args.args), self.live, self.caller, self.zones), []
        return {}, []


SECRET_SIG = rpc._special_sig_key, rpc._special_secret_sig


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def unwrap_secrets(value: Any) -> Any:
    """The plain value under Pulumi's secret wrappers, at any depth."""
    if _is_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, keeping each request's options as well as its inputs."""

    def __init__(
        self,
        live: LiveEks | None = None,
        caller: AwsCaller | None = None,
        zones: dict[str, str] | None = None,
    ) -> None:
        super().__init__(Mocks(live, caller, zones))
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}
        self.secret_outputs: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw_inputs = rpc.deserialize_properties(request.object)
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    custom=request.custom,
                    inputs=unwrap_secrets(raw_inputs),
                    secret_inputs={key for key, value in raw_inputs.items() if _is_secret(value)},
                    alias_names=[
                        alias.spec.name
                        for alias in request.aliases
                        if alias.WhichOneof("alias") == "spec"
                    ],
                    parent=request.parent,
                    provider=request.provider,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                    outputs=self.resources[response.urn].state
                    if response.urn in self.resources
                    else {},
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":  # the root, not a child
            raw = rpc.deserialize_properties(request.outputs)
            self.secret_outputs = {key for key, value in raw.items() if _is_secret(value)}
            self.stack_outputs = unwrap_secrets(raw)
        return super().RegisterResourceOutputs(request)


@dataclass
class Run:
    """Everything one program run registered."""

    registrations: list[Registration]
    stack_outputs: dict[str, Any]
    secret_outputs: set[str]
    calls: list[mocks.MockCallArgs] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def custom(self) -> Iterator[Registration]:
        return (r for r in self.registrations if r.custom)


# A recognisable client secret: tests search every registered input for it in plain text.
PLANTED_SECRET = "planted-github-client-secret-6f1c"
# The keys an operator's stack marks secret after the README's `pulumi config set --secret`.
SECRET_KEYS = ("secrets",)


def with_value(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `config` with the dotted `path` set (or removed when `value` is DELETE)."""
    result = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = result
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return result


DELETE = object()


def run_function(
    fn: Callable[[], Any],
    stack: str = "test",
    config: dict[str, Any] | None = None,
    monitor: RecordingMonitor | None = None,
    secret_keys: tuple[str, ...] = SECRET_KEYS,
    project: str = NAMESPACE,
) -> Run:
    """Run `fn` as a Pulumi program under mocks with `config` as the project's config
    (`<project>:*` keys, as `pulumi config set` writes them), `secret_keys` marked secret as
    `pulumi config set --secret` marks them. `project` names the Pulumi project: the config
    namespace, and part of every URN."""
    pulumi.runtime.set_all_config(
        {
            f"{project}:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in (config or {}).items()
        },
        [f"{project}:{key}" for key in secret_keys if key in (config or {})],
    )
    monitor = monitor or RecordingMonitor()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
    )
    settings.ROOT.set(None)  # set_mocks made a root stack; run_in_stack makes the real one
    _sync_await(run_in_stack(fn))
    return Run(
        monitor.registrations, monitor.stack_outputs, monitor.secret_outputs, monitor.mocks.calls
    )


@dataclass(frozen=True)
class Project:
    """A Pulumi project on disk (the folder with `Pulumi.yaml` and `Pulumi.<stack>.yaml`),
    whose program runs under the mocks. Bound to a folder, not to this repository, so an
    adopter's project (or another git ref of ours) is evaluated with its own files."""

    root: Path = field(default_factory=Path.cwd)
    main: Path | None = None  # the program; default: `<root>/__main__.py`
    # Where the `Pulumi.<stack>.yaml` files are; default: `root`. A test suite points it at
    # stack files of its own (this repository's `tests/stacks/`), so the program it runs is
    # the project's while the config is the suite's, whatever stacks the checkout holds.
    stacks: Path | None = None

    @property
    def program(self) -> Path:
        return self.main or self.root / "__main__.py"

    @property
    def stack_dir(self) -> Path:
        """The folder of the stack files."""
        return self.stacks or self.root

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"

    def stack_names(self) -> list[str]:
        """The stacks that have a stack file, sorted: what a suite checks of a project's own
        stacks, whatever they are called."""
        return sorted(
            path.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for path in self.stack_dir.glob("Pulumi.*.yaml")
        )

    @property
    def name(self) -> str:
        """The project name of `Pulumi.yaml` (it is part of every URN)."""
        manifest = self.root / "Pulumi.yaml"
        data = yaml.safe_load(manifest.read_text()) if manifest.is_file() else None
        return str((data or {}).get("name") or NAMESPACE)

    def stack_config(self, stack: str) -> dict[str, Any]:
        """The stack file's keys, without their namespace, plus the client secret of each
        cloud as an operator sets it (`pulumi config set --secret`, never in the file)."""
        data = yaml.safe_load(self.stack_file(stack).read_text()) or {}
        config = {key.split(":", 1)[1]: value for key, value in (data.get("config") or {}).items()}
        # A file whose `clouds` is missing or misspelt gets no secrets: the program's config
        # model then names the key (`cloud: unknown key ... did you mean 'clouds'?`).
        clouds = config.get("clouds")
        if isinstance(clouds, dict):
            config["secrets"] = {
                cloud: {"githubClientSecret": f"{PLANTED_SECRET}-{cloud}"} for cloud in clouds
            }
        return config

    def run_program(
        self,
        stack: str,
        config: dict[str, Any] | None = None,
        monitor: RecordingMonitor | None = None,
        secret_keys: tuple[str, ...] = SECRET_KEYS,
    ) -> Run:
        """Run the program for `stack` (its stack file, or `config` instead) under mocks.

        Pass `monitor` to inspect what was registered when the program raises."""
        values = self.stack_config(stack) if config is None else config
        program = str(self.program)
        return run_function(
            lambda: runpy.run_path(program, run_name="__main__"),
            stack,
            values,
            monitor,
            secret_keys,
            project=self.name,
        )
