"""Pulumi's flat config values, sorted into one program's keys: pure parsing, no reading.

Each program's `__main__.py` reads Pulumi's runtime config (the only code that does) and hands
the values here; the result is what its typed config model validates.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any


def namespace_keys(
    values: Mapping[str, Any], marked_secret: Collection[str], namespace: str
) -> tuple[dict[str, Any], set[str]]:
    """Every `<namespace>:*` key with objects parsed from their JSON form, and which of those
    keys are marked secret. All keys at once, so unknown ones are reported, not ignored."""
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for full_key, value in values.items():
        prefix, _, key = full_key.partition(":")
        if prefix != namespace:
            continue
        if full_key in marked_secret:
            secret_keys.add(key)
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw, secret_keys
