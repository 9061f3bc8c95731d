"""Values for the z2jh `jupyterhub` chart: a pure function of the config and `HubContext`.

Everything a user touches is decided here: GitHub login with nobody in by default, the
profile list, bucket environment, network reach, HTTPS, culling and the Dask Gateway client
settings. Chart value names follow z2jh 4.4.0's values.schema.yaml.
"""

from __future__ import annotations

from typing import Any

from pangeo_binder.config_shared import CloudHub, NodePool
from pangeo_binder.hub.autosave import autosave_singleuser, autosave_spawner
from pangeo_binder.hub.binderhub_values import restricted_pod_context
from pangeo_binder.hub.config import USER_SERVICE_ACCOUNT, HubSettings, images_for
from pangeo_binder.hub.context import (
    BINDER_K8S_SERVICE,
    BINDER_POD_LABELS,
    BINDER_POD_PORT,
    BINDER_SERVICE,
    DASK_GATEWAY_SERVICE,
    DASK_LABELS,
    DASK_TRAEFIK_LABELS,
    DASK_TRAEFIK_PORT,
    DASK_TRAEFIK_SERVICE,
    DNS_EGRESS,
    KUBE_API_EGRESS,
    PRIVATE_AND_LINK_LOCAL,
    Z2JH_DNS_OFF,
    Z2JH_NOT_PUBLIC,
    HubContext,
    egress_outside,
    metadata_egress,
    runs_dask,
)
from pangeo_binder.hub.hub_image import hub_image_values
from pangeo_binder.hub.image_cache import jupyterhub_image_cache
from pangeo_binder.hub.incluster import source
from pangeo_binder.hub.placeholders import user_placeholder_values
from pangeo_binder.hub.profiles import profile_list
from pangeo_binder.hub.proxy import letsencrypt_https, proxy_service
from pangeo_binder.hub.sharing import (
    push_app_environment,
    sharing_server_token_scopes,
    sharing_spawner_config,
    sharing_user_scopes,
)
from pangeo_binder.scheduling import toleration

# Requests (and memory limits) of the pods on core nodes. z2jh 4.4.0 leaves every
# `resources` empty, which makes them BestEffort: the first pods the kubelet evicts when the
# core node runs short, the hub among them. No upstream figures exist for these pods (z2jh's
# values.yaml and docs give none); these are estimates for a hub of a few hundred users, with
# memory limits well above the request so a leak is stopped before it starves the node, and no
# CPU limits (throttling the proxy would slow every request). Their sum is checked against the
# core node's allocatable in tests/test_core_fit.py.
HUB_RESOURCES = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
PROXY_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
SECRET_SYNC_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"memory": "128Mi"},
}
PRE_PULLER_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
USER_SCHEDULER_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


def _split_image(ref: str) -> tuple[str, str] | None:
    """`name:tag` -> (name, tag); None for digests, which the pre-puller cannot name."""
    if "@" in ref:
        return None
    name, _, tag = ref.rpartition(":")
    return name, tag


def server_token_scopes(dask: bool = True) -> list[str]:
    """Scopes of the token each notebook gets: JupyterHub's defaults plus Dask Gateway access
    (when the hub runs Dask) and the user's own name and groups. The `user` role below holds
    all of them (`self`)."""
    gateway = [f"access:services!service={DASK_GATEWAY_SERVICE}"] if dask else []
    return [
        "users:activity!user",
        "access:servers!server",
        *gateway,
        "read:users:name!user",
        "read:users:groups!user",
    ]


def user_environment(context: HubContext, dask: bool = True) -> dict[str, str]:
    """Environment of every notebook: per-user bucket prefixes and, when the hub runs Dask,
    the Dask Gateway client settings, so `Gateway()` needs no arguments."""
    buckets = {
        "SCRATCH_BUCKET": f"{context.scratch_bucket}/$(JUPYTERHUB_USER)",
        "PERSISTENT_BUCKET": f"{context.persistent_bucket}/$(JUPYTERHUB_USER)",
        **(
            {"PUBLIC_PERSISTENT_BUCKET": f"{context.public_bucket}/$(JUPYTERHUB_USER)"}
            if context.public_bucket
            else {}
        ),
    }
    if not dask:
        return buckets
    namespace = context.namespace
    return {
        **buckets,
        "DASK_GATEWAY__ADDRESS": f"http://{DASK_TRAEFIK_SERVICE}.{namespace}/services/"
        f"{DASK_GATEWAY_SERVICE}",
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{DASK_TRAEFIK_SERVICE}.{namespace}:80",
        "DASK_GATEWAY__PUBLIC_ADDRESS": f"https://{context.domain}/services/{DASK_GATEWAY_SERVICE}/",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        # KubeSpawner formats every value with the user's name ({username}): doubled braces
        # reach the pod as {JUPYTER_IMAGE_SPEC}, which the dask-gateway client then fills from
        # the notebook's environment, so workers run the notebook's own image by default.
        "DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE": "{{JUPYTER_IMAGE_SPEC}}",
    }


def user_network_policy(context: HubContext, dask: bool = True) -> dict[str, Any]:
    """Notebooks reach the internet and Dask Gateway's proxy, not the rest of the cluster.
    GKE workload identity needs the metadata server (context.metadata_egress: its port 80
    and the daemon's 988, not z2jh's every-port `cloudMetadataServer`); EKS (IRSA) does not,
    so it stays blocked."""
    # Traefik's web entrypoint; scheduler traffic shares it (the chart's tcp port is `web`).
    egress = [to_pods(DASK_TRAEFIK_LABELS, DASK_TRAEFIK_PORT)] if dask else []
    egress += metadata_egress(context.cloud)
    # No link-local address but those rules; not z2jh's every-port metadata shortcut either.
    policy = z2jh_egress(egress, PRIVATE_AND_LINK_LOCAL)
    policy["egressAllowRules"]["cloudMetadataServer"] = False
    return {"enabled": True, **policy}


def z2jh_egress(
    egress: list[dict[str, Any]],
    not_public: tuple[str, ...] = Z2JH_NOT_PUBLIC,
    *,
    kube_api: bool = False,
) -> dict[str, Any]:
    """A z2jh component's `networkPolicy` egress: DNS to kube-dns by selector in place of the
    chart's DNS shortcuts (context.DNS_EGRESS says why), the internet outside `not_public`
    in place of its `nonPrivateIPs` shortcut (the same addresses by default, written without
    `except`: context.egress_outside says why), with `kube_api` the Kubernetes API on 443
    (the hub's spawner and autohttps' secret sync call it; EKS serves it from the VPC), then
    `egress`. z2jh's `privateIPs` is off everywhere: it opens every port of every private
    address, which on EKS is every pod of the VPC and on GKE's Dataplane V2 matches no pod at
    all (the chart's own rules and `egress` reach pods by selector). The hub keeps z2jh's
    `cloudMetadataServer` default; the notebooks' is off (user_network_policy)."""
    return {
        "egressAllowRules": {**Z2JH_DNS_OFF, "nonPrivateIPs": False, "privateIPs": False},
        "egress": [
            DNS_EGRESS,
            egress_outside(not_public),
            *([KUBE_API_EGRESS] if kube_api else []),
            *egress,
        ],
    }


def to_pods(labels: dict[str, str], port: int) -> dict[str, Any]:
    """An egress rule to the pods with `labels` on one TCP port, by pod selector."""
    return {
        "to": [{"podSelector": {"matchLabels": dict(labels)}}],
        "ports": [{"port": port, "protocol": "TCP"}],
    }


def service_routes(dask: bool, binder: bool) -> list[dict[str, Any]]:
    """Egress from the proxy (and the hub) to the services behind `/services/`: BinderHub and
    Dask Gateway's Traefik, by pod selector on both clouds. z2jh's `privateIPs` rule would
    cover them with an IP range, which GKE's Dataplane V2 (Cilium) never matches against pods
    (z2jh 4.4.0 values.schema.yaml, egressAllowRules.privateIPs, citing cilium/cilium#9209):
    there the build form and the Dask dashboards were unreachable."""
    routes = [to_pods(BINDER_POD_LABELS, BINDER_POD_PORT)] if binder else []
    if dask:
        routes.append(to_pods(DASK_TRAEFIK_LABELS, DASK_TRAEFIK_PORT))
    return routes


def hub_ingress_from(labels: dict[str, str]) -> dict[str, Any]:
    """A hub network policy rule: pods with `labels` may reach the hub API (8081)."""
    return {
        "from": [{"podSelector": {"matchLabels": dict(labels)}}],
        "ports": [{"port": 8081, "protocol": "TCP"}],
    }


def jupyterhub_values(
    context: HubContext,
    settings: HubSettings,
    cloud_hub: CloudHub,
    pools: dict[str, NodePool],
) -> dict[str, Any]:
    """The whole values tree of the jupyterhub release for one cloud."""
    url = f"https://{context.domain}"
    tokens = context.tokens
    cpu_image = settings.default_image()
    name, tag = _split_image(cpu_image) or (cpu_image.split("@")[0], "")
    storage: dict[str, Any] = (
        {"type": "dynamic", "capacity": f"{settings.home_volume_gb}Gi"}
        if settings.home_volume_gb
        else {"type": "none"}
    )
    dask = runs_dask(pools)
    # The proxy and the hub open the same routes to the services behind /services/.
    routes = service_routes(dask, settings.binder.enabled)
    services: dict[str, dict[str, Any]] = {}
    user_scopes = ["self", *sharing_user_scopes(settings.sharing)]
    hub_ingress: list[dict[str, Any]] = []
    if dask:
        services[DASK_GATEWAY_SERVICE] = {
            "apiToken": tokens.service_tokens[DASK_GATEWAY_SERVICE],
            "url": f"http://{DASK_TRAEFIK_SERVICE}",
            "display": False,
        }
        user_scopes.append(f"access:services!service={DASK_GATEWAY_SERVICE}")
        hub_ingress.append(
            hub_ingress_from(DASK_LABELS | {"app.kubernetes.io/component": "gateway"})
        )
    if settings.binder.enabled:
        # The spawn form's build requests reach BinderHub through the proxy at
        # /services/binder, with a token the form mints from the user's own (`self`).
        services[BINDER_SERVICE] = {
            "apiToken": tokens.service_tokens[BINDER_SERVICE],
            "url": f"http://{BINDER_K8S_SERVICE}",
            "display": False,
        }
        user_scopes.append(f"access:services!service={BINDER_SERVICE}")
        hub_ingress.append(hub_ingress_from(BINDER_POD_LABELS))
    # The prebuilt image the operator names, else the one `pulumi up` built, by digest (a
    # Dockerfile change is a visible diff here, and a revert rolls the hub back).
    hub_image: dict[str, str] = {}
    if settings.hub_image:
        image_name, _, image_tag = settings.hub_image.rpartition(":")
        hub_image = {"name": image_name, "tag": image_tag}
    elif context.hub_image_ref:
        hub_image = hub_image_values(context.hub_image_ref)
    values: dict[str, Any] = {
        # z2jh's default names (hub, proxy-public, autohttps) without a release prefix.
        "fullnameOverride": "",
        "hub": {
            "config": {
                # public_url: share codes come back as full links on the hub's domain.
                "JupyterHub": {
                    "authenticator_class": "github",
                    "admin_access": False,
                    "public_url": url,
                },
                "Authenticator": {
                    "admin_users": list(settings.admin_users),
                    "enable_auth_state": True,
                    "manage_groups": True,
                },
                "GitHubOAuthenticator": {
                    "client_id": context.github_client_id,
                    "client_secret": context.github_client_secret,
                    "oauth_callback_url": f"{url}/hub/oauth_callback",
                    "allowed_organizations": list(settings.allowed_organizations),
                    "populate_teams_in_auth_state": True,
                    # Teams are only readable with read:org.
                    "scope": ["read:org"],
                },
                "CryptKeeper": {"keys": [tokens.crypt_key]},
                # A notebook's own token must reach Dask Gateway (which accepts only tokens
                # with access to its service) and tell it the user's groups (bigger workers
                # for privileged ones). JupyterHub 5's default server token has neither.
                "KubeSpawner": {
                    "server_token_scopes": server_token_scopes(dask)
                    + sharing_server_token_scopes(settings.sharing),
                    **autosave_spawner(settings.autosave),
                },
                **sharing_spawner_config(settings.sharing),
            },
            "cookieSecret": tokens.cookie_secret,
            "services": services,
            "loadRoles": {
                "user": {
                    "description": "Every user: "
                    + ", ".join(
                        ["their own server"]
                        + (["sharing it"] if settings.sharing else [])
                        + (["Dask Gateway"] if dask else [])
                        + (["BinderHub"] if settings.binder.enabled else [])
                    )
                    + ".",
                    "scopes": user_scopes,
                }
            },
            **({"image": hub_image} if hub_image else {}),
            "extraConfig": {
                "05-fancy-profiles": source("fancy_profiles"),
                "10-hub-access": source("hub_access"),
            },
            # sqlite on a volume of the cluster's default storage class.
            "db": {"type": "sqlite-pvc", "pvc": {"storage": "1Gi"}},
            "resources": HUB_RESOURCES,
            "networkPolicy": {
                "enabled": True,
                "ingress": hub_ingress,
                **z2jh_egress(routes, kube_api=True),
            },
        },
        "proxy": {
            "secretToken": tokens.proxy_token,
            # One load balancer on the address the cloud layer reserved before the hub started
            # (GKE loadBalancerIP, EKS NLB Elastic IPs): it survives the Service's replacement.
            "service": proxy_service(context.proxy_service),
            "chp": {
                "networkPolicy": z2jh_egress(routes),
                "resources": PROXY_RESOURCES,
                # The proxy never calls the Kubernetes API: no token in the pod (CKV_K8S_38).
                "extraPodSpec": {
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod_context(),
                },
            },
            # autohttps: Traefik and the sidecar that keeps its certificate in a Secret.
            "traefik": {
                "networkPolicy": z2jh_egress([], kube_api=True),
                "resources": PROXY_RESOURCES,
                "extraPodSpec": {"securityContext": restricted_pod_context()},
            },
            "secretSync": {"resources": SECRET_SYNC_RESOURCES},
            "https": letsencrypt_https(context.domain, context.contact_email),
        },
        "singleuser": {
            "image": {"name": name, "tag": tag},
            "serviceAccountName": USER_SERVICE_ACCOUNT,
            "storage": storage,
            # No privileged iptables init container in every user pod: the NetworkPolicy
            # (enforced by Dataplane V2 on GKE and the VPC CNI on EKS) keeps notebooks off
            # the metadata server where they must be (EKS; IMDSv2's hop limit 1 as well), as
            # z2jh's security guide recommends when a policy controller runs.
            "cloudMetadata": {"blockWithIptables": False},
            "networkPolicy": user_network_policy(context, dask),
            "extraEnv": user_environment(context, dask)
            | push_app_environment(cloud_hub.github.push_app),
            "profileList": profile_list(context.cloud, pools, settings, cloud_hub),
            # A GPU node scales up and pulls a multi-GB image before the server starts.
            "startTimeout": 900,
            "defaultUrl": "/lab",
            # The working directory goes to $PERSISTENT_BUCKET/autosave/ as the pod stops.
            **autosave_singleuser(settings.autosave),
        },
        "scheduling": {
            "userScheduler": {
                "enabled": True,
                "resources": USER_SCHEDULER_RESOURCES,
                "extraPodSpec": {"securityContext": restricted_pod_context()},
            },
            "podPriority": {"enabled": True},
            # Warm capacity on the default pool (clouds.<cloud>.hub.userPlaceholders).
            "userPlaceholder": user_placeholder_values(context.cloud, pools, settings, cloud_hub),
            "corePods": {"nodeAffinity": {"matchNodePurpose": "require"}},
            "userPods": {
                "nodeAffinity": {"matchNodePurpose": "require"},
                "tolerations": [toleration("user")],
            },
        },
        "prePuller": {
            # The hook would block every upgrade until images are pulled on every node.
            "hook": {"enabled": False},
            # The puller runs on every untainted-for-GPU user node: it pulls the CPU menu images
            # there, not every image in the profile list (the multi-GB CUDA image would fill
            # CPU nodes' disks). GPU nodes, one user each, would gain nothing from it.
            "continuous": {"enabled": True},
            # Its containers only run `echo` and `pause`; the pull itself is the kubelet's.
            "resources": PRE_PULLER_RESOURCES,
            "containerSecurityContext": {"readOnlyRootFilesystem": True},
            "pause": {"containerSecurityContext": {"readOnlyRootFilesystem": True}},
            "pullProfileListImages": False,
            "extraImages": {
                f"menu-{slug}": {"name": split[0], "tag": split[1]}
                for slug, image in images_for(settings.images, "cpu").items()
                if (split := _split_image(image.image))
            },
        },
        "cull": {"enabled": True, "timeout": settings.cull_idle_minutes * 60, "every": 300},
    }
    # Menu, default and pre-puller images by their in-region cache names (when the cloud has
    # one); users and the servers' JUPYTER_IMAGE_SPEC keep the upstream names.
    return jupyterhub_image_cache(values, context.image_cache)
