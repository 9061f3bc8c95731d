"""Check recorded resource inputs against the properties the provider SDKs declare.

The mock engine accepts any key; a real preview does not. Each provider SDK declares its inputs
as `@pulumi.input_type` `*Args` classes, with the engine's camelCase names, so every key the
program sends (nested ones too) can be looked up there.
"""

from __future__ import annotations

import collections.abc
import importlib
import typing
from functools import cache
from typing import Any

from pulumi import _types

PACKAGES = {
    "gcp": "pulumi_gcp",
    "aws": "pulumi_aws",
    "kubernetes": "pulumi_kubernetes",
    "random": "pulumi_random",
    "docker-build": "pulumi_docker_build",
}


@cache
def args_class(token: str) -> type | None:
    """`gcp:container/nodePool:NodePool` -> `pulumi_gcp.container.NodePoolArgs`.

    None for component resources of this project (they have no provider schema).
    """
    pkg, middle, name = token.split(":")
    if pkg == "pulumi" and middle == "providers":
        module = importlib.import_module(PACKAGES[name])
        return module.ProviderArgs
    if pkg not in PACKAGES:
        return None
    mod_path = middle.split("/")[0]
    if pkg == "kubernetes":  # core/v1, helm.sh/v3, rbac.authorization.k8s.io/v1
        group, version = middle.split("/")
        mod_path = f"{group.split('.')[0]}.{version}"
    module_name = PACKAGES[pkg] if mod_path == "index" else f"{PACKAGES[pkg]}.{mod_path}"
    module = importlib.import_module(module_name)
    # Where a nested input type took `<Name>Args` (s3.BucketVersioningArgs belongs to
    # s3.Bucket), the resource's own inputs are `<Name>InitArgs`.
    return getattr(module, f"{name}InitArgs", None) or getattr(module, f"{name}Args")


def _input_classes(hint: Any) -> list[type]:
    """The `@input_type` classes reachable inside a type hint (through Optional, Sequence,
    Mapping values, Awaitable, Output)."""
    if isinstance(hint, type) and _types.is_input_type(hint):
        return [hint]
    found: list[type] = []
    for arg in typing.get_args(hint):
        found += _input_classes(arg)
    return found


def _is_free_form(hint: Any) -> bool:
    """Mapping[str, Any] and the like: any key is valid (labels, Helm values)."""
    origin = typing.get_origin(hint)
    if origin in (collections.abc.Mapping, dict):
        return not _input_classes(typing.get_args(hint)[-1])
    return hint is Any or any(_is_free_form(arg) for arg in typing.get_args(hint))


@cache
def _fields(cls: type) -> dict[str, Any]:
    """Engine (camelCase) name -> type hint, for one `*Args` class."""
    return dict(_types.input_type_types(cls))


def unknown_keys(value: Any, cls: type, path: str) -> list[str]:
    """Paths in `value` that `cls` does not declare, recursively."""
    problems: list[str] = []
    if isinstance(value, list):
        for index, item in enumerate(value):
            problems += unknown_keys(item, cls, f"{path}[{index}]")
        return problems
    if not isinstance(value, dict):
        return problems
    fields = _fields(cls)
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{path}.{key}")
            continue
        hint = fields[key]
        if _is_free_form(hint):
            continue
        nested = _input_classes(hint)
        if nested:
            problems += unknown_keys(item, nested[0], f"{path}.{key}")
    return problems
