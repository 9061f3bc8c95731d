"""From what CrossGuard hands a policy (`policies/__main__.py`) to what the rules read.

Kept here, without importing pulumi_policy, so it is tested like the rules. A value not known
during a preview (an output of a resource not created yet) becomes UNKNOWN; a rule that flags a
resource with such a value may be wrong, so the pack defers it (CrossGuard reports "can't run
during preview") and `pulumi up --policy-pack`, which sees every value, decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pangeo_binder.policy.context import context_from_stack_file
from pangeo_binder.policy.rules import Context, Resource, Violation, check_stack

UNKNOWN = "<unknown during preview>"


def plain(value: Any) -> Any:
    """CrossGuard's read-only proxies as dicts and lists; unknown values as UNKNOWN (its proxy
    raises on reading one, and its sentinels are strings)."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[str(key)] = plain(value[key])
            except Exception:  # pulumi_policy's UnknownValueError
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except Exception:  # pulumi_policy's UnknownValueError
                items.append(UNKNOWN)
        return items
    return value


def has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return value == UNKNOWN or (isinstance(value, str) and _is_sentinel(value))


def _is_sentinel(value: str) -> bool:
    """pulumi_policy's unknown sentinels (UUIDs in its proxy module), when a value is read
    without its proxy."""
    try:
        from pulumi_policy import proxy
    except ImportError:
        return False
    return value in {v for k, v in vars(proxy).items() if k.startswith("UNKNOWN_")}


def resource_of(type_: str, name: str, props: Any, opts: Any) -> Resource:
    """A Resource of a CrossGuard resource (its props and PolicyResourceOptions)."""
    return Resource(
        type=type_,
        name=name,
        inputs=plain(props) or {},
        protect=bool(getattr(opts, "protect", False)),
        ignore_changes=tuple(getattr(opts, "ignore_changes", None) or ()),
    )


def stack_violations(
    rule: str, resources: Iterable[tuple[str, str, str, Any, Any]], context: Context
) -> list[tuple[str, str]]:
    """(urn, message) of `rule`'s violations over a stack's (urn, type, name, props, opts)."""
    urns: dict[tuple[str, str], str] = {}
    converted: dict[tuple[str, str], Resource] = {}
    for urn, type_, name, props, opts in resources:
        urns[(type_, name)] = urn
        converted[(type_, name)] = resource_of(type_, name, props, opts)
    found: list[Violation] = [
        v for v in check_stack(list(converted.values()), context) if v.policy == rule
    ]
    return [
        (urns[(v.type, v.name)], v.message)
        for v in found
        if not has_unknown(converted[(v.type, v.name)].inputs)
    ]


def context_for_stack(project: Path, stack: str | None) -> Context:
    """The declarations of `Pulumi.<stack>.yaml`; the strictest context without a stack."""
    path = project / f"Pulumi.{stack}.yaml"
    return context_from_stack_file(path) if stack and path.is_file() else Context()
