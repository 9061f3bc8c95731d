"""Deletion guards: what prod protects, in one place."""

from __future__ import annotations

import pulumi


def guarded(
    opts: pulumi.ResourceOptions, *, prod: bool, holds_data: bool
) -> pulumi.ResourceOptions:
    """`opts` plus prod's guards: protect everything stateful; keep data-holding resources in the
    cloud even if they leave the program (`retain_on_delete`). Staging stays destroyable."""
    if not prod:
        return opts
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(protect=True, retain_on_delete=holds_data or None)
    )
