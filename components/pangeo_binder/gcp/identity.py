"""Workload identity: a Kubernetes service account acts as a Google service account, no keys."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp


def workload_identity_member(project: str, kubernetes_service_account: str) -> str:
    """`namespace/name` -> the principal GKE uses for that Kubernetes service account."""
    return f"serviceAccount:{project}.svc.id.goog[{kubernetes_service_account}]"


def workload_identity_binding(
    name: str,
    *,
    account: gcp.serviceaccount.Account,
    project: str,
    kubernetes_service_account: str,
    opts: pulumi.ResourceOptions,
) -> gcp.serviceaccount.IAMMember:
    """Let exactly one Kubernetes service account impersonate `account`.

    The workload pool exists only once the cluster does, so callers pass the cluster in
    `opts.depends_on`.
    """
    return gcp.serviceaccount.IAMMember(
        name,
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=workload_identity_member(project, kubernetes_service_account),
        opts=opts,
    )
