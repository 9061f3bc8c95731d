"""The CrossGuard pack: pangeo_binder.policy's rules inside a real `pulumi preview`.

Each rule becomes a policy of the same name and enforcement. Rules over one resource are
resource policies; the ones that need the whole stack (which service accounts a cloud identity
trusts, the address ranges the cluster's network resources give pods and services) are stack
policies. The stack's declarations come from `Pulumi.<stack>.yaml`, the stack
named by PANGEO_POLICY_STACK; without it the pack reads the strictest context (prod, no public
bucket)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "components"))  # the library of this checkout

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError  # noqa: E402

from pangeo_binder.policy.adapt import (  # noqa: E402
    context_for_stack,
    has_unknown,
    resource_of,
    stack_violations,
)
from pangeo_binder.policy.rules import RULES, Rule, check_resource  # noqa: E402

CONTEXT = context_for_stack(PROJECT, os.environ.get("PANGEO_POLICY_STACK"))


def described(rule: Rule) -> dict[str, Any]:
    """What every policy of the pack takes from its rule: name, description, enforcement."""
    mandatory = rule.enforcement == "mandatory"
    return {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": EnforcementLevel.MANDATORY if mandatory else EnforcementLevel.ADVISORY,
    }


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = resource_of(args.resource_type, args.name, args.props, args.opts)
        messages = [v.message for v in check_resource(resource, CONTEXT) if v.policy == rule.name]
        if messages and has_unknown(resource.inputs):
            # maybe only because a value is not known yet: `pulumi up` decides
            raise UnknownValueError(UNKNOWN_STRING_VALUE, [])
        for message in messages:
            report(message, None)

    return ResourceValidationPolicy(**described(rule), validate=validate)


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [(r.urn, r.resource_type, r.name, r.props, r.opts) for r in args.resources]
        for urn, message in stack_violations(rule.name, resources, CONTEXT):
            report(message, urn)

    return StackValidationPolicy(**described(rule), validate=validate)


def policies() -> list[Any]:
    return [stack_policy(r) if r.needs_stack else resource_policy(r) for r in RULES]


PolicyPack(name="pangeo-binder", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
