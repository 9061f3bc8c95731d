"""What the values builders need from the cloud stack, resolved to plain strings.

The hub component resolves `CloudOutputs` and the generated secrets into one `HubContext`
(inside an `apply`), so the builders stay pure functions that tests call with literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pangeo_binder.config_shared import NodePool
from pangeo_binder.machines import Cloud

# Chart release names and the service names they give (fullnameOverride pins them).
JUPYTERHUB_RELEASE = "jupyterhub"
DASK_GATEWAY_RELEASE = "dask-gateway"
DASK_GATEWAY_SERVICE = "dask-gateway"  # the JupyterHub service name and its URL path
DASK_TRAEFIK_SERVICE = f"traefik-{DASK_GATEWAY_RELEASE}"
BINDER_RELEASE = "binderhub-service"
BINDER_SERVICE = (
    "binder"  # the JupyterHub service name; jupyterhub-fancy-profiles calls /services/binder
)
# binderhub-service with fullnameOverride "" names its Deployment, Service and Secret this.
BINDER_K8S_SERVICE = "binderhub"
# The BinderHub pod's labels (binderhub-service templates/deployment.yaml: appLabels + component).
BINDER_POD_LABELS = {
    "app.kubernetes.io/name": "binderhub-service",
    "app.kubernetes.io/component": "binderhub",
}
# The BinderHub pod's http port: the chart's `config.BinderHub.port` default, which the
# Service targets and our values leave alone.
BINDER_POD_PORT = 8585
# Dask Gateway's pods (the chart's labels) and Traefik's web entrypoint, the pod port behind
# its Service: HTTP to the gateway API and, by SNI, the TCP traffic to schedulers.
DASK_LABELS = {"app.kubernetes.io/name": "dask-gateway"}
DASK_TRAEFIK_LABELS = {**DASK_LABELS, "app.kubernetes.io/component": "traefik"}
DASK_TRAEFIK_PORT = 8000
# GKE's metadata server for workload identity, as network policies must allow it under
# Dataplane V2 (GKE docs, "Use Workload Identity Federation for GKE": 169.254.169.252:988).
GKE_METADATA_EGRESS = {
    "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
    "ports": [{"port": 988, "protocol": "TCP"}],
}


# What runs beside notebooks on the shared user pool (see profiles.shared_pool): a Dask
# scheduler per cluster and, with BinderHub, the docker daemon on every node. Their requests
# are taken off that pool's sizes, so the largest size still fits next to them.
SCHEDULER_REQUEST = (0.5, 1.0)  # CPU, GiB
DOCKER_DAEMON_REQUEST = (0.5, 1.0)  # CPU, GiB


def runs_dask(pools: dict[str, NodePool]) -> bool:
    """Dask Gateway is installed only where a pool of purpose `dask` exists: a hub without
    one gets no gateway, and no service, scope, environment or network rule pointing at it."""
    return any(pool.purpose == "dask" for pool in pools.values())


@dataclass(frozen=True)
class HubTokens:
    """Generated secrets: random once, kept in Pulumi state, so they never rotate."""

    proxy_token: str
    cookie_secret: str
    crypt_key: str
    service_tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HubContext:
    """One cloud's facts for the hub: where it runs, its buckets, its secrets."""

    cloud: Cloud
    namespace: str
    domain: str
    scratch_bucket: str
    persistent_bucket: str
    github_client_id: str
    github_client_secret: str
    contact_email: str
    tokens: HubTokens
    # The cloud's registry (CloudOutputs.registry_host, image_prefix) and the annotation that
    # binds a Kubernetes service account to the builder identity; empty when the cloud has none.
    registry_host: str = ""
    image_prefix: str = ""
    builder_annotations: dict[str, str] = field(default_factory=dict)
    # GKE: the builder Google service account's email (CloudOutputs.identities["builder"]), which
    # BinderHub's registry class asks IAM Credentials for push tokens of; empty elsewhere.
    builder_email: str = ""
    # The hub image the program built and pushed (`name:tag@sha256:...`, HubImage.ref); empty
    # when `hub.hubImage` names a prebuilt one, or nothing was built.
    hub_image_ref: str = ""
    # The cloud's piece of z2jh's `proxy.service` (CloudOutputs.proxy_service): the reserved
    # address (GKE `loadBalancerIP`) or the NLB's Elastic IP annotations (EKS); merged into
    # the proxy's Service values with `hub.proxy.proxy_service`. Empty: the cloud picks one.
    proxy_service: dict[str, Any] = field(default_factory=dict)
    # The world-readable bucket (CloudOutputs.public_bucket_url); empty when the cloud has none,
    # and then no PUBLIC_PERSISTENT_BUCKET is set anywhere.
    public_bucket: str = ""
    # The in-region image cache (CloudOutputs.image_cache): upstream registry host -> cache
    # prefix without a trailing slash. Empty: no cache, every image is pulled from upstream.
    image_cache: dict[str, str] = field(default_factory=dict)
