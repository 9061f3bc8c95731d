"""pangeo-binder: Pulumi components for an authenticated BinderHub with JupyterHub and Dask
Gateway on GKE and EKS.

This module is the public API: every name in `__all__` below is supported and versioned (see
CHANGELOG.md); every other module path is private and may change in any release. Import from
here (`from pangeo_binder import GcpStack, Hub`) and never from a submodule. The one other public
module is `pangeo_binder.testing`, the mock engine that evaluates a program offline.

The layers, in the order a program composes them:

- config model: `load_config` turns a stack's raw keys into a `StackConfig` (or one
  `ConfigError` listing every problem with its key path); the parts are typed models
  (`GcpCloud`, `AwsCloud`, node pools, `HubSettings`, `CloudHub`);
- cloud stacks: `GcpStack` / `AwsStack` build the cluster with its pools, buckets, registry and
  keyless identities, bound to the Kubernetes service accounts the caller names
  (`WorkloadServiceAccounts`), and hand back a `CloudOutputs` of the same shape on both clouds;
- their parts, for a stack of another shape: clusters and pools, storage, registries and
  identity bindings per cloud;
- the hub: `Hub` installs JupyterHub (and Dask Gateway where a dask pool exists, and BinderHub
  unless disabled) on any cloud's `CloudOutputs`; its values are built by pure functions that
  take the config model and a `HubContext`;
- monitoring: `Support` installs Prometheus, Grafana, OpenCost and alert rules on a cluster;
  `hub_values_piece` / `dask_values_piece` are what the hub's releases add for them;
- chart pins: the exact chart versions the hub and the support stack install;
- guard rails: the policy rules (`POLICY_RULES`) over a stack's resources (`check_policies`),
  which this project's CrossGuard pack and offline plan run (docs/reference/policies.md).

Nothing here reads Pulumi config: a program's `__main__.py` does, and passes typed models in.
Names are resolved on first use, so `import pangeo_binder` stays cheap and a GCP-only program
never loads the AWS SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# The public names by layer: name -> (private module, attribute there). Four names are
# aliases: the storage and registry components are `HubStorage` and `ImageRegistry` on both
# clouds. docs/reference/api.md is generated from this table and the docstrings.
_LAYERS: dict[str, dict[str, tuple[str, str]]] = {
    "Config model": {
        "load_config": ("pangeo_binder.config", "load_config"),
        "StackConfig": ("pangeo_binder.config", "StackConfig"),
        "ConfigError": ("pangeo_binder.config", "ConfigError"),
        "Problem": ("pangeo_binder.config", "Problem"),
        "NodePool": ("pangeo_binder.config_shared", "NodePool"),
        "CloudHub": ("pangeo_binder.config_shared", "CloudHub"),
        "HubDns": ("pangeo_binder.config_shared", "HubDns"),
        "GcpCloud": ("pangeo_binder.gcp.config", "GcpCloud"),
        "GcpNodePool": ("pangeo_binder.gcp.config", "GcpNodePool"),
        "AwsCloud": ("pangeo_binder.aws.config", "AwsCloud"),
        "AwsNodePool": ("pangeo_binder.aws.config", "AwsNodePool"),
        "HubSettings": ("pangeo_binder.hub.config", "HubSettings"),
        "MenuImage": ("pangeo_binder.hub.config", "MenuImage"),
        "PublicBinderSettings": ("pangeo_binder.config_public", "PublicBinder"),
    },
    "Between the layers": {
        "CloudOutputs": ("pangeo_binder.outputs", "CloudOutputs"),
        "RegistryLogin": ("pangeo_binder.outputs", "RegistryLogin"),
        "WorkloadServiceAccounts": ("pangeo_binder.outputs", "WorkloadServiceAccounts"),
        "KubernetesServiceAccount": ("pangeo_binder.outputs", "KubernetesServiceAccount"),
        "BackupWriter": ("pangeo_binder.outputs", "BackupWriter"),
        "ReservedAddress": ("pangeo_binder.outputs", "ReservedAddress"),
    },
    "Cloud stacks": {
        "GcpStack": ("pangeo_binder.gcp.stack", "GcpStack"),
        "AwsStack": ("pangeo_binder.aws.stack", "AwsStack"),
    },
    "Clusters and pools": {
        "GkeCluster": ("pangeo_binder.gcp.cluster", "GkeCluster"),
        "EksCluster": ("pangeo_binder.aws.cluster", "EksCluster"),
        "EksNodeGroup": ("pangeo_binder.aws.node_groups", "NodeGroup"),
    },
    "Storage and registries": {
        "GcsStorage": ("pangeo_binder.gcp.storage", "HubStorage"),
        "S3Storage": ("pangeo_binder.aws.storage", "HubStorage"),
        "ArtifactRegistry": ("pangeo_binder.gcp.registry", "ImageRegistry"),
        "EcrRegistry": ("pangeo_binder.aws.registry", "ImageRegistry"),
    },
    "Keyless identities": {
        "workload_identity_binding": ("pangeo_binder.gcp.identity", "workload_identity_binding"),
        "irsa_role": ("pangeo_binder.aws.identity", "irsa_role"),
    },
    "The hub and its releases": {
        "Hub": ("pangeo_binder.hub.hub", "Hub"),
        "HubImage": ("pangeo_binder.hub.hub_image", "HubImage"),
        "hub_image_values": ("pangeo_binder.hub.hub_image", "hub_image_values"),
        "HubContext": ("pangeo_binder.hub.context", "HubContext"),
        "jupyterhub_values": ("pangeo_binder.hub.jupyterhub_values", "jupyterhub_values"),
        "dask_gateway_values": ("pangeo_binder.hub.dask_values", "dask_gateway_values"),
        "binderhub_values": ("pangeo_binder.hub.binderhub_values", "binderhub_values"),
        "proxy_service": ("pangeo_binder.hub.proxy", "proxy_service"),
        "PublicBinder": ("pangeo_binder.hub.public_binder", "PublicBinder"),
        "public_jupyterhub_values": (
            "pangeo_binder.hub.public_values",
            "public_jupyterhub_values",
        ),
        "public_binderhub_values": ("pangeo_binder.hub.public_values", "public_binderhub_values"),
    },
    "Monitoring": {
        "Support": ("pangeo_binder.support.support", "Support"),
        "MonitoringSettings": ("pangeo_binder.support.config", "MonitoringSettings"),
        "hub_values_piece": ("pangeo_binder.support.values", "hub_values_piece"),
        "dask_values_piece": ("pangeo_binder.support.values", "dask_values_piece"),
    },
    "Chart pins": {
        "ChartPin": ("pangeo_binder.charts", "ChartPin"),
        "CHART_PINS": ("pangeo_binder.charts", "PINS"),
    },
    "Guard rails": {
        "POLICY_RULES": ("pangeo_binder.policy.rules", "RULES"),
        "PolicyRule": ("pangeo_binder.policy.rules", "Rule"),
        "PolicyResource": ("pangeo_binder.policy.rules", "Resource"),
        "PolicyContext": ("pangeo_binder.policy.rules", "Context"),
        "PolicyViolation": ("pangeo_binder.policy.rules", "Violation"),
        "check_policies": ("pangeo_binder.policy.rules", "check_stack"),
    },
}
_EXPORTS = {name: where for layer in _LAYERS.values() for name, where in layer.items()}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pangeo_binder' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers see: the same names, imported eagerly
    from pangeo_binder.aws.cluster import EksCluster
    from pangeo_binder.aws.config import AwsCloud, AwsNodePool
    from pangeo_binder.aws.identity import irsa_role
    from pangeo_binder.aws.node_groups import NodeGroup as EksNodeGroup
    from pangeo_binder.aws.registry import ImageRegistry as EcrRegistry
    from pangeo_binder.aws.stack import AwsStack
    from pangeo_binder.aws.storage import HubStorage as S3Storage
    from pangeo_binder.charts import PINS as CHART_PINS
    from pangeo_binder.charts import ChartPin
    from pangeo_binder.config import ConfigError, Problem, StackConfig, load_config
    from pangeo_binder.config_public import PublicBinder as PublicBinderSettings
    from pangeo_binder.config_shared import CloudHub, HubDns, NodePool
    from pangeo_binder.gcp.cluster import GkeCluster
    from pangeo_binder.gcp.config import GcpCloud, GcpNodePool
    from pangeo_binder.gcp.identity import workload_identity_binding
    from pangeo_binder.gcp.registry import ImageRegistry as ArtifactRegistry
    from pangeo_binder.gcp.stack import GcpStack
    from pangeo_binder.gcp.storage import HubStorage as GcsStorage
    from pangeo_binder.hub.binderhub_values import binderhub_values
    from pangeo_binder.hub.config import HubSettings, MenuImage
    from pangeo_binder.hub.context import HubContext
    from pangeo_binder.hub.dask_values import dask_gateway_values
    from pangeo_binder.hub.hub import Hub
    from pangeo_binder.hub.hub_image import HubImage, hub_image_values
    from pangeo_binder.hub.jupyterhub_values import jupyterhub_values
    from pangeo_binder.hub.proxy import proxy_service
    from pangeo_binder.hub.public_binder import PublicBinder
    from pangeo_binder.hub.public_values import public_binderhub_values, public_jupyterhub_values
    from pangeo_binder.outputs import (
        BackupWriter,
        CloudOutputs,
        KubernetesServiceAccount,
        RegistryLogin,
        ReservedAddress,
        WorkloadServiceAccounts,
    )
    from pangeo_binder.policy.rules import RULES as POLICY_RULES
    from pangeo_binder.policy.rules import Context as PolicyContext
    from pangeo_binder.policy.rules import Resource as PolicyResource
    from pangeo_binder.policy.rules import Rule as PolicyRule
    from pangeo_binder.policy.rules import Violation as PolicyViolation
    from pangeo_binder.policy.rules import check_stack as check_policies
    from pangeo_binder.support.config import MonitoringSettings
    from pangeo_binder.support.support import Support
    from pangeo_binder.support.values import dask_values_piece, hub_values_piece
