"""The CrossGuard pack (policies/): one policy per rule, of the rule's enforcement, which flags
what the rule flags when CrossGuard hands it a resource (read-only proxies, options), defers a
verdict that rests on a value unknown at preview, and reads the stack's declarations."""

from __future__ import annotations

import json
import runpy
import sys
from typing import Any

import pulumi_policy
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from harness import ROOT, STACKS
from pangeo_binder.policy import adapt
from pangeo_binder.policy.adapt import context_for_stack
from pangeo_binder.policy.rules import RULES

PACK = ROOT / "policies"


def load_pack(monkeypatch: pytest.MonkeyPatch, stack: str | None) -> dict[str, Any]:
    """The pack's policies by name, its PolicyPack captured instead of serving."""
    captured: dict[str, Any] = {}

    class Capture:
        def __init__(self, name: str, enforcement_level: Any, policies: list[Any]) -> None:
            captured.update({p.name: p for p in policies}, _pack=name)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", Capture)
    # the suite's stack files, not the checkout's (tests/stacks/README.md)
    monkeypatch.setattr(adapt, "context_for_stack", lambda _, name: context_for_stack(STACKS, name))
    if stack:
        monkeypatch.setenv("PANGEO_POLICY_STACK", stack)
    else:
        monkeypatch.delenv("PANGEO_POLICY_STACK", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    runpy.run_path(str(PACK / "__main__.py"), run_name="__main__")
    return captured


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def validate(policy: Any, type_: str, props: dict[str, Any], protect: bool = False) -> list[str]:
    reported: list[str] = []
    args = ResourceValidationArgs(
        type_, unknown_checking_proxy(props), f"urn:x::{type_}::r", "r", opts(protect), None
    )
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_the_pack_has_a_policy_per_rule_of_its_enforcement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert config["runtime"]["name"] == "python"
    assert (
        config["runtime"]["options"]["virtualenv"] == "../.venv"
    )  # the project's, with the library
    pack = load_pack(monkeypatch, "staging")
    assert pack.pop("_pack") == "pangeo-binder"
    assert set(pack) == {r.name for r in RULES}
    for r in RULES:
        expected = (
            EnforcementLevel.MANDATORY
            if r.enforcement == "mandatory"
            else (EnforcementLevel.ADVISORY)
        )
        assert pack[r.name].enforcement_level == expected


LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GOOD_LT = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}}


def test_a_resource_policy_reports_what_its_rule_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = load_pack(monkeypatch, "staging")
    assert validate(pack["eks-imdsv2"], LAUNCH_TEMPLATE, GOOD_LT) == []
    bad = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}}
    assert validate(pack["eks-imdsv2"], LAUNCH_TEMPLATE, bad) == [
        "httpPutResponseHopLimit is 2, not 1"
    ]
    # an unknown value defers the verdict to `pulumi up` (CrossGuard reports it as advisory)
    unknown = {"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}}
    with pytest.raises(UnknownValueError):
        validate(pack["eks-imdsv2"], LAUNCH_TEMPLATE, unknown)


def test_protect_comes_from_the_options_and_prod_from_the_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = {"deletionProtection": True, "name": "c"}
    prod = load_pack(monkeypatch, "prod")["prod-protected"]
    assert validate(prod, "gcp:container/cluster:Cluster", cluster, protect=True) == []
    assert validate(prod, "gcp:container/cluster:Cluster", cluster, protect=False)
    staging = load_pack(monkeypatch, "staging")["prod-protected"]
    assert validate(staging, "gcp:container/cluster:Cluster", cluster, protect=False) == []
    # no stack named: the strictest reading, prod
    strict = load_pack(monkeypatch, None)["prod-protected"]
    assert validate(strict, "gcp:container/cluster:Cluster", cluster, protect=False)


def test_the_declared_public_bucket_is_the_stack_files(monkeypatch: pytest.MonkeyPatch) -> None:
    binding = {
        "bucket": "pangeo-binder-staging-public",
        "member": "allUsers",
        "role": "roles/storage.objectViewer",
    }
    kind = "gcp:storage/bucketIAMMember:BucketIAMMember"
    assert validate(load_pack(monkeypatch, "staging")["bucket-not-public"], kind, binding) == []
    assert validate(load_pack(monkeypatch, "prod")["bucket-not-public"], kind, binding)
    assert context_for_stack(STACKS, "staging").is_public_bucket("pangeo-binder-staging-public")


def test_the_public_binder_policy_sees_the_whole_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = load_pack(monkeypatch, "prod")["public-binder-no-cloud-identity"]
    chart = {
        "chart": "jupyterhub",
        "namespace": "pub",
        "values": {
            "hub": {"config": {"JupyterHub": {"authenticator_class": "null"}}},
            "singleuser": {
                "serviceAccountName": "user-sa",
                "extraPodConfig": {"automountServiceAccountToken": False},
            },
        },
    }
    role = {
        "assumeRolePolicy": json.dumps(
            {
                "Statement": [
                    {"Condition": {"StringEquals": {"x:sub": "system:serviceaccount:pub:user-sa"}}}
                ]
            }
        )
    }

    def resource(type_: str, name: str, props: dict[str, Any]) -> PolicyResource:
        return PolicyResource(
            type_, unknown_checking_proxy(props), f"urn:{name}", name, opts(), None, None, [], {}
        )

    def run(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
        reported: list[tuple[str, str | None]] = []
        policy.validate(
            StackValidationArgs(resources),
            lambda message, urn=None: reported.append((message, urn)),
        )
        return reported

    hub = resource("kubernetes:helm.sh/v4:Chart", "public-hub", chart)
    assert run([hub]) == []  # user-sa is bound to nothing here
    found = run([hub, resource("aws:iam/role:Role", "users", role)])
    assert [urn for _, urn in found] == ["urn:public-hub"]
    assert "bound to a cloud identity" in found[0][0]


def test_the_cni_rules_run_in_the_pack_with_the_stacks_ranges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """netpol-pods-by-selector is a stack policy: it reads the pod range off the stack's
    subnet; the DNS rule is a resource policy and flags a port-only DNS rule."""
    pack = load_pack(monkeypatch, "staging")
    internet = {
        "to": [
            {
                "ipBlock": {
                    "cidr": "0.0.0.0/0",
                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                }
            }
        ]
    }
    policy = {
        "metadata": {"name": "web", "namespace": "binder"},
        "spec": {"podSelector": {}, "egress": [internet]},
    }
    subnet = {
        "ipCidrRange": "10.0.0.0/20",
        "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "100.64.0.0/14"}],
    }

    def resource(type_: str, name: str, props: dict[str, Any]) -> PolicyResource:
        return PolicyResource(
            type_, unknown_checking_proxy(props), f"urn:{name}", name, opts(), None, None, [], {}
        )

    def run(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
        reported: list[tuple[str, str | None]] = []
        pack["netpol-pods-by-selector"].validate(
            StackValidationArgs(resources),
            lambda message, urn=None: reported.append((message, urn)),
        )
        return reported

    netpol = resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", "web", policy)
    assert run([netpol]) == []
    found = run([netpol, resource("gcp:compute/subnetwork:Subnetwork", "subnet", subnet)])
    assert [urn for _, urn in found] == ["urn:web"]
    assert "add 100.64.0.0/14 to its except" in found[0][0]
    port_only = {**policy, "spec": {"egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}
    [message] = validate(
        pack["netpol-dns-to-kube-dns"], "kubernetes:networking.k8s.io/v1:NetworkPolicy", port_only
    )
    assert message.startswith("NetworkPolicy binder/web egress[0]: allows DNS to every address")
