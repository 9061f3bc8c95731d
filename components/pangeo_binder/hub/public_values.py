"""Values for the public Binder's two releases and its network policies: pure functions of the
config and a `HubContext` describing the public side (its namespace, domain, tokens, the
registry prefix of its images, its proxy's reserved address).

The public JupyterHub (z2jh 4.4.0) has no login (`null` authenticator): only the public
BinderHub (binderhub-service, UI on at `/`, auth off) creates its anonymous users and starts
their servers, with images it built from allowed repositories. One domain serves both: the
proxy sends `/hub/` to JupyterHub (`JupyterHub.hub_routespec`), `/user/` to running servers,
and everything else to BinderHub (configurable-http-proxy's `--default-target`, z2jh's
`proxy.chp.defaultTarget`). JupyterHub's
docs for `hub_routespec` describe exactly this, for deployments that register their own
default target. Value names follow z2jh 4.4.0's and binderhub-service's values.schema.yaml.
"""

from __future__ import annotations

import copy
from typing import Any

from pangeo_binder.config_public import PublicBinder
from pangeo_binder.config_shared import NodePool
from pangeo_binder.hub.binderhub_values import (
    binderhub_values,
    build_network_policies,
    restricted_pod_context,
)
from pangeo_binder.hub.config import HubSettings
from pangeo_binder.hub.context import (
    BINDER_K8S_SERVICE,
    BINDER_POD_LABELS,
    BINDER_POD_PORT,
    BINDER_SERVICE,
    DNS_EGRESS,
    KUBE_API_EGRESS,
    NOT_PUBLIC,
    Z2JH_DNS_OFF,
    HubContext,
    egress_outside,
    metadata_egress,
)
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.jupyterhub_values import (
    HUB_RESOURCES,
    PROXY_RESOURCES,
    SECRET_SYNC_RESOURCES,
    hub_ingress_from,
    service_routes,
    to_pods,
)
from pangeo_binder.hub.proxy import letsencrypt_https, proxy_service
from pangeo_binder.machines import Cloud
from pangeo_binder.scheduling import PURPOSE_LABELS, toleration

PUBLIC_JUPYTERHUB_RELEASE = "public-jupyterhub"
PUBLIC_BINDER_RELEASE = "public-binderhub-service"
# Ports a public server may reach on the internet: HTTP, HTTPS and git.
PUBLIC_PORTS = (80, 443, 9418)
# z2jh's egress shortcuts, all closed: each component gets the rules it needs (DNS to kube-dns
# by selector, context.DNS_EGRESS), and nothing reaches a private address (the hub's
# namespace) by default.
CLOSED = {
    "cloudMetadataServer": False,
    **Z2JH_DNS_OFF,
    "nonPrivateIPs": False,
    "privateIPs": False,
}
HUB_ROUTESPEC = "/hub/"


def internet_egress(ports: tuple[int, ...] = PUBLIC_PORTS) -> dict[str, Any]:
    """TCP on `ports` to addresses that are neither private nor link-local (metadata), as
    blocks with no `except` (context.egress_outside says why: KUBE_API_EGRESS sits beside
    it)."""
    return egress_outside(NOT_PUBLIC, ports)


def public_user_network_policy() -> dict[str, Any]:
    """A public server reaches DNS inside the cluster and the internet on 80, 443 and 9418:
    no private address (the hub's namespace, the nodes), no metadata server."""
    return {
        "enabled": True,
        "egressAllowRules": dict(CLOSED),
        "egress": [DNS_EGRESS, internet_egress()],
        "ingress": [],
    }


def _component_policy(egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"enabled": True, "egressAllowRules": dict(CLOSED), "egress": [DNS_EGRESS, *egress]}


def public_jupyterhub_values(
    context: HubContext, public: PublicBinder, settings: HubSettings
) -> dict[str, Any]:
    """The whole values tree of the public jupyterhub release for one cloud."""
    tokens = context.tokens
    cpu, memory = public.cpu, public.memory_gb
    return {
        "fullnameOverride": "",
        "hub": {
            "config": {
                "JupyterHub": {
                    # Nobody logs in: BinderHub (the `binder` service) creates the users.
                    "authenticator_class": "null",
                    "admin_access": False,
                    "allow_named_servers": False,
                    "hub_routespec": HUB_ROUTESPEC,
                },
                "PublicBinderSpawner": {"image_prefix": context.image_prefix},
                "KubeSpawner": {
                    "automount_service_account_token": False,
                    "allow_privilege_escalation": False,
                },
                "CryptKeeper": {"keys": [tokens.crypt_key]},
            },
            "cookieSecret": tokens.cookie_secret,
            "services": {
                BINDER_SERVICE: {
                    "apiToken": tokens.service_tokens[BINDER_SERVICE],
                    "display": False,
                }
            },
            # What BinderHub needs without auth (binderhub's chart grants the same): make a
            # user per launch, start and stop its server.
            "loadRoles": {
                "binder": {
                    "description": "The public BinderHub: anonymous users and their servers.",
                    "services": [BINDER_SERVICE],
                    "scopes": ["servers", "admin:users"],
                }
            },
            "extraConfig": {"10-public-spawner": source("public_spawner")},
            "db": {"type": "sqlite-pvc", "pvc": {"storage": "1Gi"}},
            # The authenticated hub's requests: both hubs live on the core pool.
            "resources": HUB_RESOURCES,
            "networkPolicy": {
                **_component_policy([KUBE_API_EGRESS]),
                "ingress": [hub_ingress_from(BINDER_POD_LABELS)],
            },
        },
        "proxy": {
            "secretToken": tokens.proxy_token,
            "service": proxy_service(context.proxy_service),
            "chp": {
                # The chart's own `--default-target` (the hub, unless this is set).
                "defaultTarget": f"http://{BINDER_K8S_SERVICE}:80",
                "networkPolicy": _component_policy(service_routes(False, True)),
                "resources": PROXY_RESOURCES,
                # configurable-http-proxy never calls the Kubernetes API: no token to steal.
                "extraPodSpec": {
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod_context(),
                },
            },
            # Let's Encrypt over the internet; the certificate is stored through the API.
            "traefik": {
                "networkPolicy": _component_policy([internet_egress((80, 443)), KUBE_API_EGRESS]),
                "resources": PROXY_RESOURCES,
                "extraPodSpec": {"securityContext": restricted_pod_context()},
            },
            "secretSync": {"resources": SECRET_SYNC_RESOURCES},
            "https": letsencrypt_https(public.domain, context.contact_email),
        },
        "singleuser": {
            # BinderHub names the image of each launch; the spawner refuses any other.
            "cmd": "jupyter-notebook",
            "serviceAccountName": None,
            "storage": {"type": "none"},
            "cpu": {"limit": cpu, "guarantee": round(cpu / 2, 3)},
            "memory": {"limit": f"{memory:g}G", "guarantee": f"{memory:g}G"},
            "allowPrivilegeEscalation": False,
            # Belt and braces: the policy below already leaves link-local addresses out.
            "cloudMetadata": {"blockWithIptables": True},
            "networkPolicy": public_user_network_policy(),
            # Not allowed to call the hub's API (its policy admits pods with this label).
            "extraLabels": {"hub.jupyter.org/network-access-hub": "false"},
            "nodeSelector": dict(PURPOSE_LABELS["public"]),
            "extraTolerations": [toleration("public")],
            "extraEnv": {},
            "startTimeout": 600,
        },
        # No user scheduler (its ClusterRole would share a name across releases), no
        # placeholders, no priority classes, no image puller: public images are unknown.
        "scheduling": {
            "userScheduler": {"enabled": False},
            "podPriority": {"enabled": False},
            "userPlaceholder": {"enabled": False},
            "corePods": {"nodeAffinity": {"matchNodePurpose": "require"}},
            "userPods": {
                "nodeAffinity": {"matchNodePurpose": "require"},
                "tolerations": [toleration("public")],
            },
        },
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "cull": {
            "enabled": True,
            "users": True,  # anonymous users go with their servers
            "timeout": public.cull_idle_minutes * 60,
            "every": 60,
            "maxAge": public.max_age_hours * 3600,
        },
    }


def public_binderhub_values(
    context: HubContext,
    public: PublicBinder,
    settings: HubSettings,
    pools: dict[str, NodePool],
) -> dict[str, Any]:
    """binderhub-service for anonymous launches: the hub's build setup (keyless push, builds
    on an ordinary user pool) with the UI on at `/`, auth off, the allow list and quotas."""
    values = copy.deepcopy(binderhub_values(context, settings, pools))
    config = values["config"]
    config["BinderHub"].update(
        {
            "base_url": "/",
            "enable_api_only_mode": False,
            "auth_enabled": False,
            "hub_url": f"https://{public.domain}/",
            "per_repo_quota": public.per_repo_quota,
        }
    )
    # No OAuth: BinderHub is the hub's anonymous front door.
    config.pop("HubOAuth", None)
    config["GitHubRepoProvider"].update(
        {
            "allowed_specs": list(public.allowed_repositories),
            "banned_specs": list(public.banned_repositories),
        }
    )
    # KubernetesLaunchQuota (BinderHub's default) counts the singleuser pods of its own
    # namespace (BUILD_NAMESPACE, the chart's metadata.namespace): this Binder's servers.
    config["LaunchQuota"] = {"total_quota": public.total_quota}
    # The chart's own build and docker-api policies allow `0.0.0.0/0 except RFC 1918`, which
    # leaves 169.254.0.0/16 (the metadata server) open to anonymous build code: off, and
    # public_network_policies fences those pods as public servers are.
    values["networkPolicy"] = {"enabled": False}
    return values


def public_network_policies(cloud: Cloud, namespace: str) -> list[dict[str, Any]]:
    """NetworkPolicies of the public namespace besides the charts' own: every pod's egress
    denied unless a policy allows it (so a pod the charts leave unfenced reaches nothing), the
    builds' (as public servers') and BinderHub's own way out (DNS, the hub, the API, the
    internet on 80/443/9418, and on GKE the metadata server, through which its pushes are
    minted)."""
    binder_egress = [
        DNS_EGRESS,
        to_pods({"component": "hub"}, 8081),
        KUBE_API_EGRESS,
        internet_egress(),
        # Its pushes' tokens are minted through the metadata server on GKE.
        *metadata_egress(cloud),
    ]

    # Builds run anonymous code: fenced as public servers are, DNS and the internet on
    # 80/443/9418 only (binderhub_values.build_network_policies).
    builds = build_network_policies(namespace, PUBLIC_BINDER_RELEASE, internet_egress())

    def policy(name: str, selector: dict[str, Any], egress: list[dict[str, Any]]) -> dict:
        return {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Egress"], "egress": egress},
        }

    def ingress(name: str, selector: dict[str, Any], rules: list[dict[str, Any]]) -> dict:
        return {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": rules},
        }

    # Ingress: the pods the charts leave without an ingress policy (BinderHub, the builds, the
    # docker daemon) would take connections from any namespace, the authenticated hub's
    # included (the flow matrix's `hub-namespace -> public-namespace-private`). BinderHub
    # answers its own proxy (chp's default target) and hub on its port; the builds and the
    # docker daemon answer nobody (build_network_policies).
    own_front = {
        "from": [
            {"podSelector": {"matchLabels": {"component": component}}}
            for component in ("proxy", "hub")
        ],
        "ports": [{"port": BINDER_POD_PORT, "protocol": "TCP"}],
    }
    return [
        ingress("binderhub-ingress", {"matchLabels": dict(BINDER_POD_LABELS)}, [own_front]),
        policy("default-deny-egress", {}, []),
        policy("binderhub-egress", {"matchLabels": dict(BINDER_POD_LABELS)}, binder_egress),
        *builds,
    ]
