"""The Google APIs a stack needs, enabled by the program so a fresh project's first `pulumi up`
does not stop halfway (the node pools were first to fail: the container API enables late).

Every resource of the GCP stack waits for them: `after_apis` is a transformation that the stack
puts on its child components, and Pulumi hands a component's transformations to every resource
beneath it, so resources added later wait too without anyone remembering to.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.gcp.config import GcpCloud

# What each API is for, as the README's fallback `gcloud services enable` lists them.
APIS = {
    "compute.googleapis.com": "network, subnet, node VMs",
    "container.googleapis.com": "the GKE cluster and its pools",
    "containerfilesystem.googleapis.com": "image streaming on user and dask pools",
    "iam.googleapis.com": "service accounts for nodes, users and builds",
    "iamcredentials.googleapis.com": "workload identity tokens, BinderHub's hour-long push tokens",
    "cloudresourcemanager.googleapis.com": "project IAM bindings and the project lookup",
    "storage.googleapis.com": "scratch and persistent buckets",
    "artifactregistry.googleapis.com": "the image registry",
}
BUDGET_APIS = {
    "billingbudgets.googleapis.com": "the billing budget",
    "monitoring.googleapis.com": "the budget's email channels",
}


DNS_APIS = {"dns.googleapis.com": "the hub's A record in an existing zone (hub.dns)"}
SECRET_APIS = {"secretmanager.googleapis.com": "the Docker Hub cache's login token"}


def required_apis(cloud: GcpCloud) -> list[str]:
    """The APIs this cloud section uses; the budget's and Cloud DNS only when configured."""
    return [
        *APIS,
        *(BUDGET_APIS if cloud.budget is not None else {}),
        *(DNS_APIS if cloud.hub.dns is not None else {}),
        *(SECRET_APIS if docker_hub_login(cloud) else {}),
    ]


def docker_hub_login(cloud: GcpCloud) -> bool:
    """Whether the Docker Hub cache logs in (its token is kept in Secret Manager)."""
    cache = cloud.image_cache
    return "dockerHub" in cache.cached() and cache.docker_hub_username is not None


def service_name(api: str) -> str:
    """`container.googleapis.com` -> `container` (resource names stay short)."""
    return api.split(".", 1)[0]


class ProjectApis(pulumi.ComponentResource):
    """One `gcp.projects.Service` per API. Never disabled on destroy: other stacks and people
    in the same project rely on them, and disabling the compute API deletes what uses it."""

    services: dict[str, gcp.projects.Service]

    def __init__(
        self, name: str, cloud: GcpCloud, *, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pangeo-binder:gcp:ProjectApis", name, None, opts)
        self.services = {
            api: gcp.projects.Service(
                f"{name}-{service_name(api)}",
                project=cloud.project,
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in required_apis(cloud)
        }
        self.register_outputs({"apis": list(self.services)})


def after_apis(apis: Sequence[pulumi.Resource]) -> pulumi.ResourceTransformation:
    """A transformation making every resource it reaches depend on `apis`."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        return pulumi.ResourceTransformationResult(
            props=args.props,
            opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=apis)),
        )

    return transform
