"""The `clouds.aws` section of the stack config (rules filled in by the AWS issue)."""

from __future__ import annotations

from pydantic import Field

from components.config_shared import (
    CloudHub,
    Model,
    NodePool,
    PoolKey,
    RegistrySettings,
    StorageSettings,
    validate_pools,
)
from pydantic import field_validator


class AwsNodePool(NodePool):
    """An EKS managed node group."""


class AwsCloud(Model):
    """Everything deployed on AWS for one stack."""

    region: str
    node_pools: dict[PoolKey, AwsNodePool]
    hub: CloudHub
    storage: StorageSettings = Field(default_factory=StorageSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)

    _pools = field_validator("node_pools", mode="wrap")(validate_pools)
