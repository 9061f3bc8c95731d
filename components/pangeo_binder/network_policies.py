"""NetworkPolicy manifests (the pure builders' dicts) registered as resources: shared by the
hub, the public Binder and the support stack, so every policy is named the same way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def network_policies(
    prefix: str, manifests: Iterable[dict[str, Any]], opts: pulumi.ResourceOptions
) -> list[k8s.networking.v1.NetworkPolicy]:
    """One resource per manifest, named `<prefix>-<its metadata.name>` (the names every
    stack has had: renaming one would replace the policy)."""
    return [
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-{manifest['metadata']['name']}",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=opts,
        )
        for manifest in manifests
    ]
