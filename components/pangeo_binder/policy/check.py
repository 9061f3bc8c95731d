"""The rules over an offline plan's JSON (`python -m pangeo_binder.plan --format json`)."""

from __future__ import annotations

from typing import Any

from pangeo_binder.policy.rules import Context, Resource, Violation, check_stack


class NotAPlan(ValueError):
    """The document is not a plan; the message says what is missing."""


def context_as_dict(context: Context) -> dict[str, Any]:
    return {"environment": context.environment, "publicBuckets": list(context.public_buckets)}


def context_of(document: dict[str, Any]) -> Context:
    """The stack's declarations the plan recorded (`policies.context`)."""
    raw = (document.get("policies") or {}).get("context")
    if not isinstance(raw, dict) or "environment" not in raw:
        raise NotAPlan("missing policies.context.environment (the stack's declarations)")
    return Context(
        environment=str(raw["environment"]),
        public_buckets=tuple(str(p) for p in raw.get("publicBuckets") or []),
    )


def resources_of(block: dict[str, Any], where: str) -> list[Resource]:
    """One cloud's resources of a plan, as the rules see them."""
    found = block.get("resources") if isinstance(block, dict) else None
    if not isinstance(found, list):
        raise NotAPlan(f"missing {where}.resources (a list)")
    resources = []
    for index, item in enumerate(found):
        missing = [k for k in ("type", "name", "inputs", "options") if k not in (item or {})]
        if missing:
            raise NotAPlan(f"{where}.resources[{index}] lacks {', '.join(missing)}")
        options = item["options"] or {}
        resources.append(
            Resource(
                type=str(item["type"]),
                name=str(item["name"]),
                inputs=item["inputs"] or {},
                protect=bool(options.get("protect")),
                retain_on_delete=bool(options.get("retainOnDelete")),
                ignore_changes=tuple(options.get("ignoreChanges") or ()),
                provider=str(options.get("provider") or ""),
            )
        )
    return resources


def violations(clouds: dict[str, Any], context: Context) -> list[dict[str, Any]]:
    """Every violation of every cloud, mandatory ones first; each names its cloud."""
    found: list[tuple[str, Violation]] = [
        (cloud, v)
        for cloud, block in clouds.items()
        for v in check_stack(resources_of(block, f"clouds.{cloud}"), context)
    ]
    found.sort(key=lambda item: (item[1].enforcement != "mandatory", item[0], item[1].policy))
    return [{**v.as_dict(), "cloud": cloud} for cloud, v in found]


def check_plan(document: Any) -> list[dict[str, Any]]:
    """The violations of a plan document, recomputed from its resources (never trusted from
    its `policies.violations`, which a hand-edited plan could leave stale)."""
    if not isinstance(document, dict):
        raise NotAPlan("not a JSON object")
    clouds = document.get("clouds")
    if not isinstance(clouds, dict):
        raise NotAPlan("missing clouds (an object of cloud -> resources)")
    return violations(clouds, context_of(document))


def mandatory(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in found if v["enforcement"] == "mandatory"]
