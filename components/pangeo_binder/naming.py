"""The name a stack's cloud resources derive from, so that two stacks of one environment in
one GCP project or AWS account do not collide.

Cluster, network, bucket, registry, service account and IAM role names are unique in a
project or account (bucket names worldwide), and they all derive from the deployment name.
A stack named after its environment (`staging`, `prod`) keeps `pangeo-binder-<environment>`,
the names every such stack has always had; any other stack (`staging-alice`, `mygcp`) is
`pangeo-binder-<stack>`. Logical names (URNs) never depend on it: Pulumi's URNs carry the
stack already.
"""

from __future__ import annotations

from typing import Any

PREFIX = "pangeo-binder-"


def deployment(environment: str, stack: str | None = None) -> str:
    """`pangeo-binder-<environment>` for the stack named after its environment (or when the
    stack is not known), `pangeo-binder-<stack>` for any other."""
    return f"{PREFIX}{qualifier(environment, stack)}"


def names_stack(resource_names: Any, stack: str | None) -> str | None:
    """The stack name the resource names derive from (`deployment`'s `stack`), from the
    `resourceNames` key: only with `stack`; without it (the default) the stack keeps the
    environment's names, so no stack deployed before the key existed is renamed. The one
    reading of the key: the program, the config check, the policies and ci-identities."""
    return stack if resource_names == "stack" else None


def qualifier(environment: str, stack: str | None = None) -> str:
    """The part of every physical name that tells stacks apart: the environment for the
    stack named after it, the stack's name otherwise."""
    return environment if stack in (None, environment) else stack


def qualifier_of(deployment_name: str) -> str:
    """`staging-alice` of `pangeo-binder-staging-alice`."""
    return deployment_name.removeprefix(PREFIX)
