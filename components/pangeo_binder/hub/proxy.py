"""z2jh's `proxy.service` values with the cloud's reserved address: a pure function.

The cloud layer reserves the hub's public address and says, as `CloudOutputs.proxy_service`,
which keys of z2jh's `proxy.service` make the proxy's load balancer use it (GKE:
`loadBalancerIP`; EKS: NLB annotations). Both keys exist in z2jh 4.4.0's values schema
(`proxy.service.loadBalancerIP`: string or null; `proxy.service.annotations`: string values);
the chart copies them onto the `proxy-public` Service (templates/proxy/service.yaml).
"""

from __future__ import annotations

from typing import Any

# The proxy's Service as the hub has always asked for it: one cloud load balancer.
BASE_SERVICE: dict[str, Any] = {"type": "LoadBalancer"}


def proxy_service(
    cloud_piece: dict[str, Any], base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`proxy.service` values: `base` (the builder's own keys, type LoadBalancer by default)
    with the cloud's piece laid over it. Annotations are merged key by key, so neither side's
    annotations are lost; any other key of the cloud's piece wins (the address is the cloud's
    to give)."""
    merged = dict(BASE_SERVICE if base is None else base)
    for key, value in cloud_piece.items():
        if key == "annotations":
            merged["annotations"] = {**merged.get("annotations", {}), **value}
        else:
            merged[key] = value
    return merged


def letsencrypt_https(domain: str, contact_email: str) -> dict[str, Any]:
    """`proxy.https`: autohttps asks Let's Encrypt for `domain`'s certificate (HTTP-01 over
    the proxy's load balancer), the same way for the hub and the public Binder."""
    return {
        "enabled": True,
        "type": "letsencrypt",
        "hosts": [domain],
        "letsencrypt": {"contactEmail": contact_email},
    }
