"""One Helm release as a `helm.v4.Chart` at its pinned version: shared by the hub and the
support stack, so every release is installed the same way."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from pangeo_binder.charts import ChartPin


def pinned_chart(
    name: str,
    pin: ChartPin,
    release: str,
    namespace: str,
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    *,
    skip_crds: bool = False,
) -> k8s.helm.v4.Chart:
    """`pin`'s chart from its repository with an explicit release name (hooks are skipped by
    helm.v4.Chart: every object shows in a preview). `skip_crds` leaves out the chart's
    `crds/`, for a second release of a chart whose CRDs another release already owns."""
    return k8s.helm.v4.Chart(
        name,
        chart=pin.name,
        version=pin.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=pin.repository),
        name=release,
        namespace=namespace,
        values=values,
        skip_crds=skip_crds or None,
        opts=opts,
    )
