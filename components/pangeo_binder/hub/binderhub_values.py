"""Values for the `binderhub-service` chart: a pure function of the config and `HubContext`.

BinderHub runs as the JupyterHub service `binder` at /services/binder in API-only mode, behind
the hub's login (`auth_enabled`): jupyterhub-fancy-profiles' spawn form asks it to build an
image from a repository, then starts the server with that image. Images go to the cloud's
registry under the hub's prefix, and are looked up there first, so each commit is built once.

Keyless push: the BinderHub pod runs as `hub.builderServiceAccount`, the Kubernetes account the
cloud layer bound to the builder identity, and its registry class (incluster/binder_registry.py)
mints short-lived credentials for each build. Build pods and the privileged docker daemon run
under the namespace's `default` account, which carries no identity. Value names follow the
chart's values.schema.yaml at 0.1.0-0.dev.git.336.hca79dc0 and BinderHub's traitlets.
"""

from __future__ import annotations

import json
from typing import Any

from pangeo_binder.config_shared import NodePool
from pangeo_binder.hub.config import HubSettings
from pangeo_binder.hub.context import (
    BINDER_SERVICE,
    DNS_EGRESS,
    DOCKER_DAEMON_REQUEST,
    NOT_PUBLIC,
    HubContext,
    egress_outside,
)
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.profiles import shared_pool
from pangeo_binder.scheduling import POOL_LABEL, PURPOSE_LABELS, toleration

# The hub's Service in the namespace (z2jh names it `hub` with fullnameOverride "").
HUB_API = "http://hub:8081"
# The MTU of GKE pods: the VPC network's default (see docker_daemon_args).
GKE_POD_MTU = 1460
# Only users the hub lets use the service may call BinderHub. HubAuth.access_scopes is empty
# unless JUPYTERHUB_SERVICE_NAME or JUPYTERHUB_OAUTH_ACCESS_SCOPES is set (jupyterhub
# services/auth.py, main at 2841153, 2026-08-20), and empty means any hub token passes.
BINDER_ACCESS_SCOPE = f"access:services!service={BINDER_SERVICE}"


def restricted_pod_context() -> dict[str, Any]:
    """A pod securityContext for pods whose containers already run as non-root users: the
    runtime's default seccomp profile (the kubelet's default is Unconfined, and these charts set
    none at pod level) and non-root enforced for every container. A new dict per call, so no
    two releases' values share one."""
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


class RegistryMissing(ValueError):
    """Building is on for a cloud that has no registry to push to."""


def build_node_selector(context: HubContext, settings: HubSettings, pools: dict[str, NodePool]):
    """Build pods and the docker daemon share one ordinary user pool (on-demand, not GPU or
    high-memory): the build pod talks to the daemon on its own node through a host socket."""
    return {**PURPOSE_LABELS["user"], POOL_LABEL: shared_pool(pools, settings, context.cloud)}


def registry_settings(context: HubContext) -> dict[str, Any]:
    """What the registry class reads (PANGEO_BINDER_REGISTRY): the cloud, the registry host;
    on GCP the builder service account's email (push tokens are minted for it), on AWS the
    region (from the ECR host name `<account>.dkr.ecr.<region>.amazonaws.com`)."""
    found: dict[str, Any] = {"cloud": context.cloud, "registryHost": context.registry_host}
    if context.cloud == "gcp":
        found["builderEmail"] = context.builder_email
    if context.cloud == "aws":
        found["region"] = context.registry_host.split(".")[3]
    return found


def docker_daemon_args(cloud: str) -> list[str]:
    """dockerd's extra arguments. On GKE the pod network's MTU is the VPC's, 1460 (the default
    of a VPC network, which pangeo_binder/gcp/cluster.py keeps; Google Cloud "Maximum transmission
    unit", read 2026-11-26), and dockerd's bridge defaults to 1500: packets of a build's
    downloads above 1460 are dropped and the download hangs. On EKS the VPC CNI gives pods 9001
    (POD_MTU defaults to AWS_VPC_ENI_MTU, 9001; amazon-vpc-cni-k8s README), so dockerd's 1500
    already fits and stays the default."""
    return [f"--mtu={GKE_POD_MTU}"] if cloud == "gcp" else []


def binderhub_values(
    context: HubContext, settings: HubSettings, pools: dict[str, NodePool]
) -> dict[str, Any]:
    """The whole values tree of the binderhub-service release for one cloud."""
    if not (context.registry_host and context.image_prefix):
        raise RegistryMissing(
            f"hub.binder.enabled: building images needs the {context.cloud} registry to push "
            "to, and this cloud's stack has none; set hub.binder.enabled to false"
        )
    binder = settings.binder
    base_url = f"/services/{BINDER_SERVICE}/"
    selector = build_node_selector(context, settings, pools)
    literal = json.dumps(json.dumps(registry_settings(context)))
    return {
        # Names without a release prefix: Deployment/Service/Secret `binderhub`, `docker-api`.
        "fullnameOverride": "",
        # The chart's build policies leave the metadata server open: build_network_policies.
        "networkPolicy": {"enabled": False},
        "config": {
            "BinderHub": {
                "base_url": base_url,
                "enable_api_only_mode": True,
                "auth_enabled": True,
                # Without it BinderHub never pushes nor looks up, and the chart renders the
                # push credentials empty.
                "use_registry": True,
                "image_prefix": context.image_prefix,
                "hub_url": f"https://{context.domain}/",
                "hub_url_local": f"{HUB_API}/",
            },
            # GitHub's API answers anonymous callers 60 times an hour per address, so a
            # workshop's builds would fail on "rate limit exceeded". The hub's own OAuth app
            # (its client id and secret, read by GitHubRepoProvider as GITHUB_CLIENT_ID /
            # GITHUB_CLIENT_SECRET would be) raises that to 5,000. These values are a secret
            # input, and the chart renders `config` into its Secret, never a ConfigMap.
            "GitHubRepoProvider": {
                "client_id": context.github_client_id,
                "client_secret": context.github_client_secret,
            },
            # Lookups go to the cloud's registry, so an image built before is reused.
            "DockerRegistry": {"url": f"https://{context.registry_host}"},
            # Requests carry the user's hub token; BinderHub checks it with the hub as the
            # OAuth client of the `binder` service (JupyterHub's default id service-<name>).
            "HubOAuth": {
                "api_url": f"{HUB_API}/hub/api/",
                "base_url": base_url,
                "hub_prefix": "/hub/",
                "oauth_client_id": f"service-{BINDER_SERVICE}",
                # HubOAuth subclasses HubAuth, which defines the trait.
                "access_scopes": [BINDER_ACCESS_SCOPE],
            },
            "KubernetesBuildExecutor": {
                "build_image": binder.build_image,
                "node_selector": selector,
                # The build pod only drives repo2docker; the build itself runs in the daemon.
                "resources": {
                    "requests": {"cpu": "0.2", "memory": "512Mi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
            },
        },
        "extraConfig": {
            "pangeo-binder-00-settings": (
                f"import json\n\nPANGEO_BINDER_REGISTRY = json.loads({literal})\n"
            ),
            "pangeo-binder-10-registry": source("binder_registry"),
        },
        # The service's hub token, from the hub's own Secret (where the jupyterhub release
        # puts hub.services.binder.apiToken): it never appears in these values.
        "extraEnv": [
            {
                "name": "JUPYTERHUB_API_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": "hub",
                        "key": f"hub.services.{BINDER_SERVICE}.apiToken",
                    }
                },
            }
        ],
        "serviceAccount": {
            "create": True,
            "name": settings.builder_service_account,
            "annotations": dict(context.builder_annotations),
        },
        "nodeSelector": PURPOSE_LABELS["core"],
        "resources": {
            "requests": {"cpu": "0.1", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        # Helm merges these into the chart's defaults (uid 1000, non-root, every capability
        # dropped, read-only root): a Python web service needs no setuid and no unusual
        # syscalls.
        "securityContext": {"allowPrivilegeEscalation": False},
        "podSecurityContext": restricted_pod_context(),
        "dockerApi": {
            # Privileged: only on the nodes builds run on, never on core nodes.
            "nodeSelector": selector,
            "tolerations": [toleration("user")],
            "resources": {
                "requests": {
                    "cpu": str(DOCKER_DAEMON_REQUEST[0]),
                    "memory": f"{int(DOCKER_DAEMON_REQUEST[1] * 1024)}Mi",
                },
                "limits": {"memory": f"{binder.build_memory_gb}Gi"},
            },
            "storage": {"emptyDir": {"sizeLimit": f"{binder.docker_disk_gb}Gi"}},
            # No podSecurityContext and the chart's own privileged root container: a
            # privileged container ignores seccomp and AppArmor profiles and keeps every
            # capability, so a pod-level context would only look safer (the checkov baseline
            # says so, CONTRIBUTING.md "The checkov baseline").
            "extraArgs": docker_daemon_args(context.cloud),
        },
    }


def build_network_policies(
    namespace: str, release: str, internet: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The fences of a BinderHub's builds, in place of the chart's own (`networkPolicy`, off in
    our values): its builder and docker-api policies allow `0.0.0.0/0 except` RFC 1918, which
    leaves 169.254.0.0/16, the metadata server, open to the code a build runs (binderhub-service
    templates/builder-network-policy.yaml, docker-api-network-policy.yaml). The build pod
    (repo2docker, labelled `component: binderhub-build` by BinderHub's build.py, the chart's
    selector) and the docker daemon its Dockerfile steps run in reach DNS by selector and
    `internet` (by default every port of the public internet: context.NOT_PUBLIC) and take no
    connection: builds reach the daemon through its socket on the node
    (templates/docker-api/daemonset.yaml), not the network. Pushes need no metadata server:
    BinderHub mints the registry token and hands it to the build."""
    egress = [DNS_EGRESS, internet or egress_outside(NOT_PUBLIC)]
    selectors = {
        "build-pods": {"component": "binderhub-build"},
        "docker-api": {
            "app.kubernetes.io/name": "binderhub-service",
            "app.kubernetes.io/instance": release,
            "app.kubernetes.io/component": "docker-api",
        },
    }
    return [
        {
            "metadata": {"name": f"{key}-{direction.lower()}", "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": dict(labels)},
                "policyTypes": [direction],
                direction.lower(): egress if direction == "Egress" else [],
            },
        }
        for key, labels in selectors.items()
        for direction in ("Egress", "Ingress")
    ]
