"""The guard rails: plain functions over one resource's type, inputs and options.

The same functions run in two places: the CrossGuard pack (`policies/__main__.py`, inside a
real `pulumi preview`) and the offline plan (`python -m pangeo_binder.plan`, which any pull
request can run, a fork's included). Each rule names the checkov check or CIS benchmark item it
mirrors and why it is mandatory (blocks a deploy) or advisory (reported only);
docs/reference/policies.md is generated from `RULES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Enforcement = Literal["mandatory", "advisory"]


@dataclass(frozen=True)
class Resource:
    """What a rule sees of one resource: what a preview sends to the engine."""

    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()
    provider: str = ""


@dataclass(frozen=True)
class Context:
    """What the stack declares, that rules cannot see on a resource: its environment, the
    bucket names allowed to be world-readable (regular expressions, matched whole), the
    Kubernetes service accounts (`namespace/name`) bound to a cloud identity, and the address
    ranges (cidr, what) of pods, services and nodes (`network.cluster_ranges`)."""

    environment: str = "prod"
    public_buckets: tuple[str, ...] = ()
    cloud_bound_accounts: frozenset[str] = frozenset()
    cluster_ranges: tuple[tuple[str, str], ...] = ()

    def is_public_bucket(self, bucket: str) -> bool:
        return any(re.fullmatch(pattern, bucket) for pattern in self.public_buckets)


@dataclass(frozen=True)
class Violation:
    """One rule's finding on one resource (`as_dict` is the shape `policy check` prints)."""

    policy: str
    enforcement: Enforcement
    type: str
    name: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "enforcement": self.enforcement,
            "resource": {"type": self.type, "name": self.name},
            "message": self.message,
        }


Check = Callable[[Resource, Context], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    """A guard rail: its check, its enforcement and why, and the checkov/CIS item it mirrors."""

    name: str
    enforcement: Enforcement
    description: str
    mirrors: str  # the checkov ids / CIS benchmark items it follows
    why: str  # why this enforcement level
    check: Check = field(repr=False)
    needs_stack: bool = False  # reads what other resources say (Context's accounts, ranges)


RULES: list[Rule] = []


def rule(
    name: str, enforcement: Enforcement, description: str, mirrors: str, why: str, **kw: Any
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES.append(Rule(name, enforcement, description, mirrors, why, check, **kw))
        return check

    return register


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _json(value: Any) -> Any:
    """An IAM policy document given as a JSON string (as the AWS provider takes it) or a map."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value or {}


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# --- buckets ------------------------------------------------------------------------------

GCS_PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
GCS_READ_ROLES = {"roles/storage.objectViewer", "roles/storage.legacyObjectReader"}
GCS_IAM = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
)
S3_READ_ACTIONS = {"s3:getobject"}
S3_ACL_TYPES = (
    "aws:s3/bucketAclV2:BucketAclV2",
    "aws:s3/bucketAcl:BucketAcl",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
)
S3_PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in _listed(v) for v in principal.values())
    return False


@rule(
    "bucket-not-public",
    "mandatory",
    "No bucket is readable or writable by anyone, except the stack's declared public bucket "
    "(`storage.publicBucket`), which anyone may only read objects of.",
    "CKV_GCP_28, CKV_GCP_114; CKV_AWS_70, CKV_AWS_20, CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, "
    "CKV_AWS_56",
    "A public bucket leaks data or, written to, serves anyone's files and bills us for them; "
    "the one public bucket is declared in the stack file where a reviewer sees it.",
)
def bucket_not_public(r: Resource, ctx: Context) -> Iterator[str]:
    i = r.inputs
    if r.type in GCS_IAM:
        members = set(_listed(i.get("member"))) | set(_listed(i.get("members")))
        public = members & GCS_PUBLIC_MEMBERS
        if public:
            bucket, role = str(i.get("bucket", "")), str(i.get("role", ""))
            if not ctx.is_public_bucket(bucket):
                yield f"grants {role} on bucket {bucket} to {', '.join(sorted(public))}"
            elif role not in GCS_READ_ROLES or "allAuthenticatedUsers" in public:
                yield f"the public bucket {bucket} may only grant allUsers read, not {role}"
    elif r.type == "gcp:storage/bucketIAMPolicy:BucketIAMPolicy":
        for binding in _listed(_json(i.get("policyData")).get("bindings")):
            public = set(_listed(binding.get("members"))) & GCS_PUBLIC_MEMBERS
            if public:
                yield f"policy grants {binding.get('role')} to {', '.join(sorted(public))}"
    elif r.type in (
        "gcp:storage/bucketAccessControl:BucketAccessControl",
        "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
        "gcp:storage/objectAccessControl:ObjectAccessControl",
    ):
        if str(i.get("entity", "")) in GCS_PUBLIC_MEMBERS:
            yield f"an ACL grants {i.get('role')} to {i.get('entity')}"
    elif r.type == "gcp:storage/bucket:Bucket":
        name = str(i.get("name", ""))
        if i.get("publicAccessPrevention") != "enforced" and not ctx.is_public_bucket(name):
            yield f"bucket {name}: publicAccessPrevention is not 'enforced'"
    elif r.type == "aws:s3/bucketPolicy:BucketPolicy":
        bucket = str(i.get("bucket", ""))
        for statement in _listed(_json(i.get("policy")).get("Statement")):
            if statement.get("Effect") != "Allow" or not _public_principal(
                statement.get("Principal")
            ):
                continue
            actions = {str(a).lower() for a in _listed(statement.get("Action"))}
            if not ctx.is_public_bucket(bucket):
                yield f"bucket {bucket}: a statement allows {sorted(actions)} to any principal"
            elif not actions <= S3_READ_ACTIONS:
                yield f"the public bucket {bucket} allows anyone more than s3:GetObject"
    elif r.type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        bucket = str(i.get("bucket", ""))
        relaxable = ("blockPublicPolicy", "restrictPublicBuckets")
        for key in ("blockPublicAcls", "ignorePublicAcls", *relaxable):
            if i.get(key) is not True and not (key in relaxable and ctx.is_public_bucket(bucket)):
                yield f"bucket {bucket}: {key} is not true"
    elif r.type in S3_ACL_TYPES and str(i.get("acl", "")) in S3_PUBLIC_ACLS:
        yield f"bucket {i.get('bucket')}: canned ACL {i.get('acl')}"


@rule(
    "bucket-uniform-access",
    "mandatory",
    "Bucket access is decided by IAM alone: GCS uniform bucket-level access, S3 object "
    "ownership `BucketOwnerEnforced` (ACLs disabled).",
    "CKV_GCP_29; CKV2_AWS_65",
    "Object ACLs grant access that IAM reviews and the other rules cannot see.",
)
def bucket_uniform_access(r: Resource, ctx: Context) -> Iterator[str]:
    if (
        r.type == "gcp:storage/bucket:Bucket"
        and r.inputs.get("uniformBucketLevelAccess") is not True
    ):
        yield f"bucket {r.inputs.get('name')}: uniformBucketLevelAccess is not true"
    if r.type == "aws:s3/bucketOwnershipControls:BucketOwnershipControls":
        ownership = _get(r.inputs, "rule", "objectOwnership")
        if ownership != "BucketOwnerEnforced":
            yield f"bucket {r.inputs.get('bucket')}: objectOwnership is {ownership}"


# --- identities ---------------------------------------------------------------------------

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess")
AWS_POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}


def _admin_statements(document: Any) -> Iterator[str]:
    for statement in _listed(_json(document).get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = {str(a) for a in _listed(statement.get("Action"))}
        resources = {str(a) for a in _listed(statement.get("Resource"))}
        if "*" in resources and ("*" in actions or "iam:*" in actions):
            yield f"allows {sorted(actions)} on every resource"


@rule(
    "no-admin-roles",
    "mandatory",
    "No basic GCP role (`roles/owner`, `roles/editor`, `roles/viewer`) is granted anywhere, no "
    "AWS administrator policy is attached, no policy allows `*` (or `iam:*`) on `*`.",
    "CKV_GCP_117; CKV_AWS_274, CKV_AWS_62, CKV_AWS_63",
    "Every identity the program makes has a narrow role; a broad grant turns any leaked "
    "workload token into control of the whole project or account.",
)
def no_admin_roles(r: Resource, ctx: Context) -> Iterator[str]:
    i = r.inputs
    kind = r.type.rsplit(":", 1)[-1].lower()
    if r.type.startswith("gcp:") and kind.endswith(("iammember", "iambinding")):
        if str(i.get("role", "")) in PRIMITIVE_ROLES:
            yield f"grants the basic role {i.get('role')}"
    elif r.type.startswith("gcp:") and kind.endswith("iampolicy"):
        for binding in _listed(_json(i.get("policyData")).get("bindings")):
            if binding.get("role") in PRIMITIVE_ROLES:
                yield f"grants the basic role {binding.get('role')}"
    elif r.type.startswith("aws:iam/") and "PolicyAttachment" in r.type:
        arn = str(i.get("policyArn", ""))
        if arn.rsplit("/", 1)[-1] in ADMIN_POLICIES:
            yield f"attaches {arn}"
    elif r.type in AWS_POLICY_INPUTS:
        yield from _admin_statements(i.get(AWS_POLICY_INPUTS[r.type]))
    elif r.type == "aws:iam/role:Role":
        for arn in _listed(i.get("managedPolicyArns")):
            if str(arn).rsplit("/", 1)[-1] in ADMIN_POLICIES:
                yield f"attaches {arn}"
        for inline in _listed(i.get("inlinePolicies")):
            yield from _admin_statements(_get(inline, "policy"))


KEY_TYPES = {
    "gcp:serviceaccount/key:Key": "a service-account key",
    "aws:iam/user:User": "an IAM user",
    "aws:iam/accessKey:AccessKey": "an IAM access key",
    "aws:iam/userLoginProfile:UserLoginProfile": "an IAM user's console password",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential": "an IAM user credential",
}


@rule(
    "no-long-lived-keys",
    "mandatory",
    "No service-account keys, IAM users or access keys: workloads use workload identity / "
    "IRSA, CI uses OIDC federation.",
    "CIS GCP 1.4; CKV_AWS_273",
    "A key is a credential that never expires and ends up in a file; nothing here needs one.",
)
def no_long_lived_keys(r: Resource, ctx: Context) -> Iterator[str]:
    if KEY_TYPES.get(r.type):
        yield f"creates {KEY_TYPES[r.type]}"


# --- prod guards --------------------------------------------------------------------------

STATEFUL = {
    "gcp:container/cluster:Cluster": "deletionProtection",
    "aws:eks/cluster:Cluster": "deletionProtection",
    "gcp:storage/bucket:Bucket": "",
    "aws:s3/bucket:Bucket": "",
    "aws:s3/bucketV2:BucketV2": "",
    "gcp:artifactregistry/repository:Repository": "",
    "aws:ecr/repository:Repository": "",
}


@rule(
    "prod-protected",
    "mandatory",
    "In prod, clusters, buckets and registries are `protect`ed, and clusters have "
    "the cloud's deletion protection on.",
    "project rule (Pulumi `protect`, the clouds' deletion protection; no checkov check)",
    "Deleting a prod cluster or data bucket by a refactor (a renamed resource) is not undoable.",
)
def prod_protected(r: Resource, ctx: Context) -> Iterator[str]:
    if ctx.environment != "prod" or r.type not in STATEFUL:
        return
    if r.inputs.get("mode") == "REMOTE_REPOSITORY":
        # An in-region image cache (docs/howto/image-cache.md) holds only copies of images
        # its upstream still serves: deleting it loses nothing a pull cannot fetch again.
        return
    if not r.protect:
        yield "prod resource is not protected (protect=True)"
    flag = STATEFUL[r.type]
    if flag and r.inputs.get(flag) is not True:
        yield f"prod resource has {flag} off"


# --- node pools ---------------------------------------------------------------------------

GPU_TAINT = "nvidia.com/gpu"


def _pool(r: Resource) -> tuple[str, int | None, list[dict[str, Any]], bool] | None:
    """(pool role label, minimum size, taints, has GPUs) of a GKE node pool or an EKS group."""
    i = r.inputs
    if r.type == "gcp:container/nodePool:NodePool":
        config = i.get("nodeConfig") or {}
        scaling = i.get("autoscaling") or {}
        minimum = scaling.get("totalMinNodeCount", scaling.get("minNodeCount"))
        if not scaling:
            minimum = i.get("nodeCount", i.get("initialNodeCount"))
        gpus = bool(config.get("guestAccelerators"))
        return _purpose(config.get("labels")), minimum, config.get("taints") or [], gpus
    if r.type == "aws:eks/nodeGroup:NodeGroup":
        labels = i.get("labels") or {}
        gpus = "NVIDIA" in str(i.get("amiType", "")).upper() or any(
            str(t).split(".")[0][:1] in ("g", "p") for t in _listed(i.get("instanceTypes"))
        )
        minimum = _get(i, "scalingConfig", "minSize")
        return _purpose(labels), minimum, i.get("taints") or [], gpus
    return None


def _purpose(labels: Any) -> str:
    labels = labels or {}
    return str(labels.get("hub.jupyter.org/node-purpose") or labels.get("pangeo-binder.io/pool"))


@rule(
    "pools-scale-to-zero",
    "mandatory",
    "Every node pool but core has a minimum of 0 nodes.",
    "project rule (no checkov equivalent)",
    "An idle node bills all month and nobody sees it until the invoice: a GPU pool at 1 is "
    "hundreds of dollars.",
)
def pools_scale_to_zero(r: Resource, ctx: Context) -> Iterator[str]:
    pool = _pool(r)
    if pool and pool[0] != "core" and pool[1] not in (0, None):
        yield f"pool {pool[0]} keeps {pool[1]} node(s) when idle"


@rule(
    "gpu-pools-tainted",
    "mandatory",
    f"A pool with GPUs carries the `{GPU_TAINT}` NoSchedule taint.",
    "project rule (GKE and EKS GPU guides)",
    "Without it any pod lands on a GPU node and keeps the most expensive node up.",
)
def gpu_pools_tainted(r: Resource, ctx: Context) -> Iterator[str]:
    pool = _pool(r)
    if pool and pool[3]:
        keys = {(t.get("key"), str(t.get("effect", "")).upper()) for t in pool[2]}
        if (GPU_TAINT, "NO_SCHEDULE") not in keys:
            yield f"GPU pool without the {GPU_TAINT} NO_SCHEDULE taint"


# --- EKS ----------------------------------------------------------------------------------


@rule(
    "eks-imdsv2",
    "mandatory",
    "EKS nodes require IMDSv2 (`httpTokens: required`) with a hop limit of 1, from a launch "
    "template; a node group without one gets EKS's default hop limit of 2.",
    "CKV_AWS_79, CKV_AWS_341",
    "With IMDSv1 or 2 hops, every pod can take the node's role credentials.",
)
def eks_imdsv2(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == "aws:ec2/launchTemplate:LaunchTemplate":
        options = r.inputs.get("metadataOptions") or {}
        if options.get("httpTokens") != "required":
            yield f"httpTokens is {options.get('httpTokens')}, not required (IMDSv1 open)"
        if options.get("httpEndpoint", "enabled") != "disabled" and options.get(
            "httpPutResponseHopLimit"
        ) not in (1,):
            yield f"httpPutResponseHopLimit is {options.get('httpPutResponseHopLimit')}, not 1"
    elif r.type == "aws:eks/nodeGroup:NodeGroup" and not r.inputs.get("launchTemplate"):
        yield "node group without a launch template (EKS's default IMDS hop limit is 2)"


@rule(
    "eks-secrets-encryption",
    "mandatory",
    "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
    "CKV_AWS_58; CIS EKS 5.3.1",
    "The hub's secrets (OAuth, proxy token) sit in etcd.",
)
def eks_secrets_encryption(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == "aws:eks/cluster:Cluster":
        resources = _listed(_get(r.inputs, "encryptionConfig", "resources"))
        if "secrets" not in resources or not _get(r.inputs, "encryptionConfig", "provider"):
            yield "secrets are not encrypted with a KMS key (encryptionConfig)"


@rule(
    "eks-audit-logs",
    "mandatory",
    "EKS sends its audit log to CloudWatch.",
    "CKV_AWS_37; CIS EKS 2.1.1",
    "Without it nobody can tell afterwards who did what in the cluster.",
)
def eks_audit_logs(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type == "aws:eks/cluster:Cluster" and "audit" not in _listed(
        r.inputs.get("enabledClusterLogTypes")
    ):
        yield "the audit log is off (enabledClusterLogTypes)"


# --- GKE ----------------------------------------------------------------------------------


@rule(
    "gke-hardening",
    "mandatory",
    "GKE clusters have workload identity and shielded nodes, no legacy ABAC and no client "
    "certificate; node pools use the GKE metadata server.",
    "CKV_GCP_7, CKV_GCP_13, CKV_GCP_71, CKV_GCP_69; CIS GKE 5.2.2, 5.4.2, 5.5.5, 5.8.2, 5.8.4",
    "Each is a way around the cluster's RBAC or to the node's identity.",
)
def gke_hardening(r: Resource, ctx: Context) -> Iterator[str]:
    i = r.inputs
    if r.type == "gcp:container/cluster:Cluster":
        if not _get(i, "workloadIdentityConfig", "workloadPool"):
            yield "workload identity is off (workloadIdentityConfig.workloadPool)"
        if i.get("enableShieldedNodes") is False:
            yield "shielded nodes are off (enableShieldedNodes)"
        if i.get("enableLegacyAbac") is True:
            yield "legacy ABAC is on (enableLegacyAbac)"
        if _get(i, "masterAuth", "clientCertificateConfig", "issueClientCertificate") is True:
            yield "a client certificate is issued (masterAuth.clientCertificateConfig)"
    if r.type in ("gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"):
        config = i.get("nodeConfig")
        if config is not None and _get(config, "workloadMetadataConfig", "mode") != "GKE_METADATA":
            yield "pods reach the node's metadata (workloadMetadataConfig.mode not GKE_METADATA)"


DEFAULT_COMPUTE_ACCOUNT = re.compile(r"^(default|\d+-compute@developer\.gserviceaccount\.com)$")


@rule(
    "nodes-own-service-account",
    "mandatory",
    "GKE nodes run as the stack's own node service account, never the Compute Engine default "
    "one (which has Editor on the project).",
    "CKV_GCP_30; CIS GKE 5.2.1",
    "The default account's Editor role is on every node, so every pod that reaches it.",
)
def nodes_own_service_account(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type in ("gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"):
        config = r.inputs.get("nodeConfig")
        if config is None:
            return
        account = str(config.get("serviceAccount") or "default")
        if DEFAULT_COMPUTE_ACCOUNT.match(account):
            yield f"nodes run as the default compute service account ({account})"


# --- charts -------------------------------------------------------------------------------

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


@rule(
    "helm-chart-pinned",
    "mandatory",
    "Every Helm chart has an exact version and comes from an https (or oci://) repository.",
    "project rule (no checkov equivalent for Pulumi charts)",
    "A range or a missing version changes what runs without a change in review; plain http "
    "lets anyone on the path replace the chart.",
)
def helm_chart_pinned(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type not in HELM_TYPES:
        return
    chart, version = str(r.inputs.get("chart", "")), str(r.inputs.get("version") or "")
    if not EXACT_VERSION.match(version):
        yield f"chart {chart} has no exact version ({version or 'none'})"
    repo = str(_get(r.inputs, "repositoryOpts", "repo") or "")
    if chart.startswith("oci://"):
        return
    if not repo.startswith("https://"):
        yield f"chart {chart} is not from an https repository ({repo or 'none'})"


# --- public Binder ------------------------------------------------------------------------

ANONYMOUS = {
    "null",
    "tmp",
    "dummy",
    "nullauthenticator.NullAuthenticator",
    "tmpauthenticator.TmpAuthenticator",
    "jupyterhub.auth.DummyAuthenticator",
}


def anonymous_hub(values: dict[str, Any]) -> bool:
    """A z2jh hub anyone can use without logging in (null, tmp or dummy authenticator); a chart
    that sets none gets z2jh 4.4.0's default, `dummy`."""
    authenticator = _get(values, "hub", "config", "JupyterHub", "authenticator_class")
    return authenticator is None or str(authenticator) in ANONYMOUS


@rule(
    "public-binder-no-cloud-identity",
    "mandatory",
    "A JupyterHub chart whose hub is anonymous (null, tmp or dummy authenticator) gives user "
    "pods no cloud identity: `singleuser.serviceAccountName` is not a service account bound "
    "to a cloud identity, the service account token is not mounted, and the metadata server "
    "is blocked.",
    "CIS Kubernetes 5.1.6 / CIS EKS 4.1.6 (service account tokens only where necessary); "
    "CIS GKE 5.4.2 (metadata server)",
    "Anyone on the internet runs code there; with a cloud identity they get our buckets and "
    "registry.",
    needs_stack=True,
)
def public_binder_no_cloud_identity(r: Resource, ctx: Context) -> Iterator[str]:
    if r.type not in HELM_TYPES or not str(r.inputs.get("chart", "")).endswith("jupyterhub"):
        return
    values = r.inputs.get("values") or {}
    if not isinstance(values, dict) or not anonymous_hub(values):
        return  # values unknown during a preview: `pulumi up` judges them
    singleuser = values.get("singleuser") or {}
    account = singleuser.get("serviceAccountName")
    namespace = str(r.inputs.get("namespace") or "default")
    if account and f"{namespace}/{account}" in ctx.cloud_bound_accounts:
        yield f"anonymous hub's user pods run as {account}, bound to a cloud identity"
    automount = _get(values, "hub", "config", "KubeSpawner", "automount_service_account_token")
    if (
        automount is not False
        and _get(singleuser, "extraPodConfig", "automountServiceAccountToken") is not False
    ):
        yield "anonymous hub's user pods mount a service account token"
    iptables = _get(singleuser, "cloudMetadata", "blockWithIptables") is not False
    policy = _get(singleuser, "networkPolicy", "enabled") is not False and (
        _get(singleuser, "networkPolicy", "egressAllowRules", "cloudMetadataServer") is not True
    )
    if not (iptables or policy):
        yield "anonymous hub's user pods can reach the cloud metadata server"


# --- the stack ----------------------------------------------------------------------------

WORKLOAD_IDENTITY_MEMBER = re.compile(r"\.svc\.id\.goog\[([^/\]]+)/([^\]]+)\]")
IRSA_SUBJECT = re.compile(r"system:serviceaccount:([^:\"]+):([^\"]+)")


def cloud_bound_accounts(resources: Iterable[Resource]) -> frozenset[str]:
    """`namespace/name` of every Kubernetes service account a cloud identity trusts: GKE
    workload identity bindings and IAM roles' web-identity trust (IRSA)."""
    found: set[str] = set()
    for r in resources:
        if r.type == "gcp:serviceaccount/iAMMember:IAMMember":
            text = str(r.inputs.get("member", ""))
        elif r.type == "gcp:serviceaccount/iAMBinding:IAMBinding":
            text = " ".join(map(str, _listed(r.inputs.get("members"))))
        elif r.type == "aws:iam/role:Role":
            text = json.dumps(_json(r.inputs.get("assumeRolePolicy")))
        elif r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            account = f"{r.inputs.get('namespace')}:{r.inputs.get('serviceAccount')}"
            text = f"system:serviceaccount:{account}"
        else:
            continue
        for pattern in (WORKLOAD_IDENTITY_MEMBER, IRSA_SUBJECT):
            found |= {f"{ns}/{name}" for ns, name in pattern.findall(text)}
    return frozenset(found)


def check_resource(resource: Resource, context: Context) -> list[Violation]:
    """Every rule's violations for one resource."""
    return [
        Violation(rule.name, rule.enforcement, resource.type, resource.name, message)
        for rule in RULES
        for message in rule.check(resource, context)
    ]


def check_stack(resources: list[Resource], context: Context) -> list[Violation]:
    """Every violation in a stack's resources; the cloud-bound accounts and the cluster's
    address ranges come from them."""
    context = replace(
        context,
        cloud_bound_accounts=cloud_bound_accounts(resources) | context.cloud_bound_accounts,
        cluster_ranges=tuple(
            dict.fromkeys(context.cluster_ranges + network.cluster_ranges(resources))
        ),
    )
    return [v for r in resources for v in check_resource(r, context)]


# The CNIs' rules for NetworkPolicies live in their own module, which registers them here.
from pangeo_binder.policy import network  # noqa: E402
