"""The stack config interface: a typed, validated model of `pangeo-binder:*` keys.

`load_config` turns the raw config mapping into a `StackConfig` or raises `ConfigError` naming
every problem at once, each with its key path, the value given and what is accepted. Nothing
here calls a cloud API, so a mistake is caught before anything is registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from components.aws.config import AwsCloud
from components.config_shared import Model
from components.gcp.config import GcpCloud

NAMESPACE = "pangeo-binder"
K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# Kubernetes service account of notebook servers, bound to the bucket identity on each cloud.
USER_SERVICE_ACCOUNT = "user-sa"


class Clouds(Model):
    """Which clouds this stack deploys to; each is its own component tree."""

    gcp: GcpCloud | None = None
    aws: AwsCloud | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Clouds:
        if self.gcp is None and self.aws is None:
            raise ValueError("configure at least one cloud; accepted keys: gcp, aws")
        return self


class HubSettings(Model):
    """Hub settings shared by every cloud (the hub layer adds auth, images and profiles)."""

    namespace: str = Field(
        "binder",
        pattern=K8S_NAME,
        description="Kubernetes namespace of JupyterHub, BinderHub and Dask Gateway; the "
        "bucket identity is bound to <namespace>/user-sa.",
    )
    builder_service_account: str = Field(
        "binderhub",
        pattern=K8S_NAME,
        description="Kubernetes service account BinderHub pushes built images with; bound to "
        "the registry-writer identity.",
    )


class StackConfig(Model):
    """Everything under the `pangeo-binder:` namespace of a stack file."""

    environment: Literal["staging", "prod"] = Field(
        description="prod turns on every deletion guard; staging can be destroyed and rebuilt."
    )
    clouds: Clouds
    hub: HubSettings = Field(default_factory=HubSettings)


@dataclass(frozen=True)
class Problem:
    """One config mistake: where it is and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(ValueError):
    """Every problem in a stack config, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the {NAMESPACE} stack config:\n{lines}")


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _accepted_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a model accepts at `loc` (the parent of an unknown key)."""
    model: type[BaseModel] | None = StackConfig
    fields_by_alias: dict[str, Any] = {}
    for part in loc:
        if model is None:
            return []
        fields_by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields_by_alias.get(str(part))
        if field is None:  # a mapping key such as a pool name: stay on the value model
            continue
        model = _model_of(field.annotation)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class inside `X | None` or `dict[str, X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _problem(error: dict[str, Any]) -> Problem:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        accepted = ", ".join(_accepted_keys(loc[:-1]))
        message = f"unknown key; accepted: {accepted}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind not in {"value_error", "core_pool_count", "user_pool_missing", "pool_zones"}:
        message = f"{message}; got {json.dumps(error['input'], default=str)}"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "[key]":
        message = f"pool names are 1-13 lowercase letters, digits or hyphens; {message}"
    return Problem(_path(loc), message)


def load_config(raw: dict[str, Any]) -> StackConfig:
    """Validate raw stack config (keys without the namespace) into a `StackConfig`."""
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_problem(e) for e in exc.errors()]) from None
