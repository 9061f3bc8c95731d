"""The guard rails (pangeo_binder.policy): each rule passes the resources our program really
registers and flags a bad variant of them; the staging and prod plans have no mandatory
violation; `policy check` fails a mutated plan naming the resource; the docs page is generated
from the rules.

The good resources are the real ones from the offline plan of each stack (both clouds), so a
rule that does not match what the program emits fails here."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import ROOT, STACKS
from pangeo_binder.plan import build
from pangeo_binder.plan.render import RENDERERS
from pangeo_binder.policy import __main__ as cli
from pangeo_binder.policy import docs as policy_docs
from pangeo_binder.policy.check import resources_of
from pangeo_binder.policy.context import context_from_stack_file
from pangeo_binder.policy.rules import RULES, Context, Resource, check_stack


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    """Both stacks' plans as `plan --format json` prints them."""
    return {
        stack: json.loads(RENDERERS["json"](build.full_plan(ROOT, stack, stacks=STACKS)))
        for stack in ("staging", "prod")
    }


def resource(plan: dict[str, Any], name: str) -> Resource:
    cloud = name.split("-", 1)[0]
    found = [r for r in resources_of(plan["clouds"][cloud], cloud) if r.name == name]
    assert len(found) == 1, name
    return found[0]


def set_path(mapping: dict[str, Any], path: str, value: Any, sep: str = "__") -> None:
    """Set `mapping[a][b] = value` for the path `a__b` (`sep` between keys), making maps."""
    *parents, last = path.split(sep)
    for key in parents:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def changed(r: Resource, *, protect: bool | None = None, **paths: Any) -> Resource:
    """`r` with inputs set by path (`a__b` is inputs["a"]["b"]) and maybe another protect."""
    inputs = copy.deepcopy(r.inputs)
    for path, value in paths.items():
        set_path(inputs, path, value)
    return Resource(
        r.type, r.name, inputs, r.protect if protect is None else protect, r.retain_on_delete
    )


def flagged(rule: str, r: Resource, context: Context, stack: list[Resource] = ()) -> list[str]:
    return [v.message for v in check_stack([r, *stack], context) if v.policy == rule]


STAGING = Context(environment="staging", public_buckets=(r"pangeo-binder-staging-public",))
PROD = Context(environment="prod")
S3_PUBLIC = r"pangeo-binder-staging-\d{12}-public"
BIND_WI = Resource(
    "gcp:serviceaccount/iAMMember:IAMMember",
    "wi",
    {
        "role": "roles/iam.workloadIdentityUser",
        "member": "serviceAccount:p.svc.id.goog[pub/user-sa]",
    },
)


def public_hub(**values: Any) -> Resource:
    """A synthetic anonymous z2jh release, as the public Binder will register it."""
    base: dict[str, Any] = {
        "hub": {"config": {"JupyterHub": {"authenticator_class": "null"}}},
        "singleuser": {"extraPodConfig": {"automountServiceAccountToken": False}},
    }
    for path, value in values.items():
        set_path(base, path, value)
    return Resource(
        "kubernetes:helm.sh/v4:Chart",
        "gcp-public-jupyterhub",
        {
            "chart": "jupyterhub",
            "version": "4.4.0",
            "namespace": "pub",
            "values": base,
            "repositoryOpts": {"repo": "https://jupyterhub.github.io/helm-chart"},
        },
    )


# rule -> (good, bad, context, other resources of the stack); each is a function of the plans
Contexts = Context | tuple[Context, Context]
Case = Callable[[dict[str, Any]], list[tuple[Resource, Resource, Contexts, list[Resource]]]]
CASES: dict[str, Case] = {
    "bucket-not-public": lambda p: [
        (  # the declared public bucket: allUsers may read
            resource(p["staging"], "gcp-storage-public-anyone"),
            changed(resource(p["staging"], "gcp-storage-persistent-users"), member="allUsers"),
            STAGING,
            [],
        ),
        (
            resource(p["staging"], "gcp-storage-public-anyone"),
            changed(
                resource(p["staging"], "gcp-storage-public-anyone"),
                role="roles/storage.objectAdmin",
            ),
            STAGING,
            [],
        ),
        (
            resource(p["staging"], "gcp-storage-persistent"),
            changed(
                resource(p["staging"], "gcp-storage-persistent"), publicAccessPrevention="inherited"
            ),
            STAGING,
            [],
        ),
        (  # S3: GetObject for anyone on the public bucket only
            resource(p["staging"], "aws-storage-public-public-read"),
            changed(
                resource(p["staging"], "aws-storage-public-public-read"),
                policy=resource(p["staging"], "aws-storage-public-public-read")
                .inputs["policy"]
                .replace('["s3:GetObject"]', '["s3:GetObject", "s3:PutObject"]'),
            ),
            Context("staging", (S3_PUBLIC,)),
            [],
        ),
        (
            resource(p["staging"], "aws-storage-public-public-read"),
            resource(p["staging"], "aws-storage-public-public-read"),
            (Context("staging", (S3_PUBLIC,)), Context("staging", ())),  # undeclared: flagged
            [],
        ),
        (
            resource(p["staging"], "aws-storage-public-public-access"),
            changed(
                resource(p["staging"], "aws-storage-persistent-public-access"),
                blockPublicPolicy=False,
            ),
            Context("staging", (S3_PUBLIC,)),
            [],
        ),
    ],
    "bucket-uniform-access": lambda p: [
        (
            resource(p["prod"], "gcp-storage-persistent"),
            changed(resource(p["prod"], "gcp-storage-persistent"), uniformBucketLevelAccess=False),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "aws-storage-persistent-ownership"),
            changed(
                resource(p["prod"], "aws-storage-persistent-ownership"),
                rule__objectOwnership="ObjectWriter",
            ),
            PROD,
            [],
        ),
    ],
    "no-admin-roles": lambda p: [
        (
            resource(p["staging"], "gcp-gke-nodes-role"),
            changed(resource(p["staging"], "gcp-gke-nodes-role"), role="roles/owner"),
            STAGING,
            [],
        ),
        (
            resource(p["staging"], "aws-eks-nodes-amazoneksworkernodepolicy"),
            changed(
                resource(p["staging"], "aws-eks-nodes-amazoneksworkernodepolicy"),
                policyArn="arn:aws:iam::aws:policy/AdministratorAccess",
            ),
            STAGING,
            [],
        ),
        (  # `ecr:GetAuthorizationToken` on `*` is fine; `*` on `*` is not
            resource(p["staging"], "aws-registry-builder-policy"),
            changed(
                resource(p["staging"], "aws-registry-builder-policy"),
                policy=json.dumps(
                    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
                ),
            ),
            STAGING,
            [],
        ),
    ],
    "no-long-lived-keys": lambda p: [
        (
            resource(p["staging"], "gcp-storage-users"),
            Resource("gcp:serviceaccount/key:Key", "k", {"serviceAccountId": "x"}),
            STAGING,
            [],
        ),
        (
            resource(p["staging"], "aws-storage-users"),
            Resource("aws:iam/accessKey:AccessKey", "k", {"user": "ci"}),
            STAGING,
            [],
        ),
        (
            resource(p["staging"], "aws-storage-users"),
            Resource("aws:iam/user:User", "u", {"name": "ci"}),
            STAGING,
            [],
        ),
    ],
    "prod-protected": lambda p: (
        [
            (
                resource(p["prod"], name),
                changed(resource(p["prod"], name), protect=False),
                PROD,
                [],
            )
            for name in (
                "gcp-gke-cluster",
                "aws-eks-cluster",
                "gcp-storage-persistent",
                "aws-storage-persistent",
                "gcp-registry-repository",
            )
        ]
        + [
            (
                resource(p["prod"], "aws-eks-cluster"),
                changed(resource(p["prod"], "aws-eks-cluster"), deletionProtection=False),
                PROD,
                [],
            ),
            (  # staging's cluster may be destroyed; the same one in prod may not
                resource(p["staging"], "gcp-gke-cluster"),
                resource(p["staging"], "gcp-gke-cluster"),
                (STAGING, PROD),
                [],
            ),
            (  # an image cache holds only copies; the same repository holding images may not
                resource(p["prod"], "gcp-image-cache-quay"),
                changed(resource(p["prod"], "gcp-image-cache-quay"), mode="STANDARD_REPOSITORY"),
                PROD,
                [],
            ),
        ]
    ),
    "pools-scale-to-zero": lambda p: [
        (
            resource(p["staging"], "gcp-gke-pool-core"),  # core keeps its node
            changed(resource(p["staging"], "gcp-gke-pool-gpu"), autoscaling__totalMinNodeCount=1),
            STAGING,
            [],
        ),
        (
            resource(p["prod"], "aws-eks-pool-core-group"),
            changed(resource(p["prod"], "aws-eks-pool-dask-group"), scalingConfig__minSize=2),
            PROD,
            [],
        ),
    ],
    "gpu-pools-tainted": lambda p: [
        (
            resource(p["staging"], "gcp-gke-pool-gpu"),
            changed(resource(p["staging"], "gcp-gke-pool-gpu"), nodeConfig__taints=[]),
            STAGING,
            [],
        ),
        (
            resource(p["prod"], "aws-eks-pool-gpu-group"),
            changed(
                resource(p["prod"], "aws-eks-pool-gpu-group"),
                taints=resource(p["prod"], "aws-eks-pool-gpu-group").inputs["taints"][:1],
            ),
            PROD,
            [],
        ),
    ],
    "eks-imdsv2": lambda p: [
        (
            resource(p["prod"], "aws-eks-pool-user-lt"),
            changed(
                resource(p["prod"], "aws-eks-pool-user-lt"),
                metadataOptions__httpPutResponseHopLimit=2,
            ),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "aws-eks-pool-user-lt"),
            changed(
                resource(p["prod"], "aws-eks-pool-user-lt"), metadataOptions__httpTokens="optional"
            ),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "aws-eks-pool-user-group"),
            changed(resource(p["prod"], "aws-eks-pool-user-group"), launchTemplate=None),
            PROD,
            [],
        ),
    ],
    "eks-secrets-encryption": lambda p: [
        (
            resource(p["prod"], "aws-eks-cluster"),
            changed(resource(p["prod"], "aws-eks-cluster"), encryptionConfig=None),
            PROD,
            [],
        ),
    ],
    "eks-audit-logs": lambda p: [
        (
            resource(p["prod"], "aws-eks-cluster"),
            changed(resource(p["prod"], "aws-eks-cluster"), enabledClusterLogTypes=["api"]),
            PROD,
            [],
        ),
    ],
    "gke-hardening": lambda p: (
        [
            (
                resource(p["prod"], "gcp-gke-cluster"),
                changed(resource(p["prod"], "gcp-gke-cluster"), **change),
                PROD,
                [],
            )
            for change in (
                {"workloadIdentityConfig": None},
                {"enableShieldedNodes": False},
                {"enableLegacyAbac": True},
                {"masterAuth__clientCertificateConfig__issueClientCertificate": True},
            )
        ]
        + [
            (
                resource(p["prod"], "gcp-gke-pool-user"),
                changed(
                    resource(p["prod"], "gcp-gke-pool-user"),
                    nodeConfig__workloadMetadataConfig__mode="GCE_METADATA",
                ),
                PROD,
                [],
            ),
        ]
    ),
    "nodes-own-service-account": lambda p: [
        (
            resource(p["prod"], "gcp-gke-pool-user"),
            changed(
                resource(p["prod"], "gcp-gke-pool-user"),
                nodeConfig__serviceAccount="123456789-compute@developer.gserviceaccount.com",
            ),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "gcp-gke-cluster"),
            changed(resource(p["prod"], "gcp-gke-cluster"), nodeConfig__serviceAccount=None),
            PROD,
            [],
        ),
    ],
    "helm-chart-pinned": lambda p: [
        (
            resource(p["prod"], "gcp-hub-binderhub-service"),  # a pre-release is exact too
            changed(resource(p["prod"], "gcp-hub-jupyterhub"), version="^4.4"),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "aws-autoscaler-release"),
            changed(resource(p["prod"], "aws-autoscaler-release"), version=None),
            PROD,
            [],
        ),
        (
            resource(p["prod"], "aws-autoscaler-release"),
            changed(
                resource(p["prod"], "aws-autoscaler-release"),
                repositoryOpts__repo="http://kubernetes.github.io/autoscaler",
            ),
            PROD,
            [],
        ),
    ],
    "public-binder-no-cloud-identity": lambda p: [
        (  # the authenticated hub may run as the cloud-bound account
            resource(p["prod"], "gcp-hub-jupyterhub"),
            public_hub(singleuser__serviceAccountName="user-sa"),
            PROD,
            [BIND_WI],
        ),
        (
            public_hub(singleuser__serviceAccountName="anonymous"),
            public_hub(singleuser__extraPodConfig={}),
            PROD,
            [BIND_WI],
        ),
        (
            public_hub(singleuser__cloudMetadata__blockWithIptables=False),  # netpol blocks
            public_hub(
                singleuser__cloudMetadata__blockWithIptables=False,
                singleuser__networkPolicy__egressAllowRules__cloudMetadataServer=True,
            ),
            PROD,
            [],
        ),
        (
            public_hub(hub__config__JupyterHub__authenticator_class="tmp"),
            public_hub(
                hub__config__JupyterHub__authenticator_class="tmp",
                singleuser__serviceAccountName="user-sa",
            ),
            PROD,
            [
                Resource(
                    "aws:iam/role:Role",
                    "r",
                    {
                        "assumeRolePolicy": json.dumps(
                            {
                                "Statement": [
                                    {
                                        "Condition": {
                                            "StringEquals": {
                                                "x:sub": "system:serviceaccount:pub:user-sa"
                                            }
                                        }
                                    }
                                ]
                            }
                        )
                    },
                )
            ],
        ),
    ],
    # the CNIs' rules: the good ones are the program's own policies that already pass them
    # (tests/test_policy_network.py has the rest)
    "netpol-pods-by-selector": lambda p: [
        (
            resource(p["staging"], "gcp-hub-dask-clusters-policy"),
            with_egress(
                resource(p["staging"], "gcp-hub-dask-clusters-policy"),
                {"to": [{"ipBlock": {"cidr": "10.16.0.0/14"}}]},  # the GKE pod range
            ),
            STAGING,
            [resource(p["staging"], "gcp-gke-subnet")],
        ),
    ],
    "netpol-metadata-as-cni-sees-it": lambda p: [
        (
            resource(p["staging"], "gcp-hub-dask-clusters-policy"),
            without_egress(
                resource(p["staging"], "gcp-hub-dask-clusters-policy"), "169.254.169.254/32"
            ),
            STAGING,
            [],
        ),
    ],
    "netpol-dns-to-kube-dns": lambda p: [
        (
            resource(p["staging"], "gcp-public-binder-binderhub-egress"),
            with_egress(
                resource(p["staging"], "gcp-public-binder-binderhub-egress"),
                {"ports": [{"port": 53, "protocol": "UDP"}]},  # port-only (the EKS agent's #146)
            ),
            STAGING,
            [],
        ),
    ],
}


def with_egress(r: Resource, rule: dict[str, Any]) -> Resource:
    """A NetworkPolicy `r` with one more egress rule."""
    spec = copy.deepcopy(r.inputs["spec"])
    spec["egress"] = [*spec.get("egress", []), rule]
    return changed(r, spec=spec)


def without_egress(r: Resource, cidr: str) -> Resource:
    """A NetworkPolicy `r` without its egress rules to the ipBlock `cidr`."""
    spec = copy.deepcopy(r.inputs["spec"])
    spec["egress"] = [
        e for e in spec["egress"] if {"ipBlock": {"cidr": cidr}} not in e.get("to", [])
    ]
    return changed(r, spec=spec)


def test_every_rule_has_cases() -> None:
    assert set(CASES) == {r.name for r in RULES}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_passes_good_and_flags_bad(rule: str, plans: dict[str, Any]) -> None:
    for good, bad, context, stack in CASES[rule](plans):
        # one context for both, or (the good one's, the bad one's)
        good_context, bad_context = context if isinstance(context, tuple) else (context, context)
        assert flagged(rule, good, good_context, stack) == [], (rule, good.name)
        assert flagged(rule, bad, bad_context, stack), (rule, bad.name, bad.inputs)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_plans_have_no_mandatory_violation(stack: str, plans: dict[str, Any]) -> None:
    policies = plans[stack]["policies"]
    assert [v for v in policies["violations"] if v["enforcement"] == "mandatory"] == []
    assert policies["context"]["environment"] == stack


def test_the_declared_public_buckets_are_the_staging_plans_own(plans: dict[str, Any]) -> None:
    """Both clouds' public buckets are allowed by name, so the context and the program's
    naming agree; prod declares none."""
    context = context_from_stack_file(STACKS / "Pulumi.staging.yaml")
    names = [
        resource(plans["staging"], "gcp-storage-public").inputs["name"],
        resource(plans["staging"], "aws-storage-public").inputs["bucket"],
    ]
    assert all(context.is_public_bucket(n) for n in names), (names, context)
    assert not context.is_public_bucket(names[0].replace("public", "persistent"))
    assert context_from_stack_file(STACKS / "Pulumi.prod.yaml").public_buckets == ()


def set_input(plan: dict[str, Any], name: str, path: str, value: Any) -> dict[str, Any]:
    plan = copy.deepcopy(plan)
    cloud = name.split("-", 1)[0]
    [item] = [r for r in plan["clouds"][cloud]["resources"] if r["name"] == name]
    set_path(item["inputs"], path, value, sep=".")
    return plan


MUTATIONS = {
    "public-bucket-binding": (
        "gcp-storage-persistent-users",
        "member",
        "allUsers",
        "bucket-not-public",
    ),
    "imds-hop-limit-2": (
        "aws-eks-pool-dask-lt",
        "metadataOptions.httpPutResponseHopLimit",
        2,
        "eks-imdsv2",
    ),
    "unpinned-chart": ("aws-hub-dask-gateway", "version", ">=2026.1", "helm-chart-pinned"),
    "owner-role": ("gcp-gke-nodes-role", "role", "roles/owner", "no-admin-roles"),
    "gpu-pool-min-1": ("aws-eks-pool-gpu-group", "scalingConfig.minSize", 1, "pools-scale-to-zero"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_policy_check_fails_a_mutated_plan_naming_the_resource(
    mutation: str,
    stack: str,
    plans: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, path, value, policy = MUTATIONS[mutation]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plans[stack]))
    assert cli.main(["check", str(plan_file), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    plan_file.write_text(json.dumps(set_input(plans[stack], name, path, value)))
    assert cli.main(["check", str(plan_file), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [(v["policy"], v["enforcement"], v["resource"]["name"]) for v in found] == [
        (policy, "mandatory", name)
    ]
    assert set(found[0]) >= {"policy", "enforcement", "resource", "message"}
    assert cli.main(["check", str(plan_file)]) == 1
    assert f"MANDATORY {policy}:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("document", "missing"),
    [
        ({"stack": "staging"}, "clouds"),
        ([1, 2], "not a JSON object"),
        (
            {"clouds": {"gcp": {"cost": {}}}, "policies": {"context": {"environment": "prod"}}},
            "clouds.gcp.resources",
        ),
        (
            {
                "clouds": {"gcp": {"resources": [{"type": "t", "name": "n"}]}},
                "policies": {"context": {"environment": "prod"}},
            },
            "inputs, options",
        ),
        ({"clouds": {}}, "policies.context"),
    ],
)
def test_policy_check_says_what_a_non_plan_lacks(
    document: Any, missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(document))
    assert cli.main(["check", str(plan_file)]) == 2
    assert missing in capsys.readouterr().err


def test_plan_json_carries_inputs_and_options(plans: dict[str, Any]) -> None:
    prod = plans["prod"]["clouds"]["gcp"]["resources"]
    [cluster] = [r for r in prod if r["name"] == "gcp-gke-cluster"]
    assert cluster["options"] == {
        "protect": True,
        "retainOnDelete": False,
        "ignoreChanges": ["nodeConfig", "initialNodeCount"],
        "provider": "gcp-provider",
    }
    assert cluster["inputs"]["deletionProtection"] is True
    # a setting under a secret-looking key stays readable; real secrets do not
    [lt] = [
        r
        for r in plans["prod"]["clouds"]["aws"]["resources"]
        if r["name"] == "aws-eks-pool-user-lt"
    ]
    assert lt["inputs"]["metadataOptions"]["httpTokens"] == "required"


def test_markdown_lists_violations_above_the_cost(plans: dict[str, Any]) -> None:
    document = set_input(plans["staging"], "gcp-gke-nodes-role", "role", "roles/owner")
    document["policies"]["violations"] = cli_violations(document)
    markdown = RENDERERS["markdown"](document)
    assert markdown.index("no-admin-roles") < markdown.index("### Monthly cost")
    assert "gcp-gke-nodes-role" in markdown
    text = RENDERERS["text"](document)
    assert (
        "mandatory no-admin-roles: gcp gcp:projects/iAMMember:IAMMember gcp-gke-nodes-role" in text
    )
    clean = RENDERERS["markdown"](plans["staging"])
    assert "No policy violations" in clean
    assert clean.index("No policy violations") < clean.index("### Monthly cost")


def cli_violations(document: dict[str, Any]) -> list[dict[str, Any]]:
    from pangeo_binder.policy.check import check_plan

    return check_plan(document)


def test_policies_page_is_generated_from_the_rules() -> None:
    page = (ROOT / policy_docs.PAGE).read_text()
    assert policy_docs.reference() in page, (
        "docs/reference/policies.md is stale: run `python -m pangeo_binder.policy docs`"
    )
    for r in RULES:
        assert r.mirrors and r.why and r.enforcement in ("mandatory", "advisory")
