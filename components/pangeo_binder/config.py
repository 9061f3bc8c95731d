"""The stack config interface: a typed, validated model of `pangeo-binder:*` keys.

`load_config` turns the raw config mapping into a `StackConfig` or raises `ConfigError` naming
every problem at once, each with its key path, the value given and what is accepted. Nothing
here calls a cloud API, so a mistake is caught before anything is registered.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from pangeo_binder import machines, naming
from pangeo_binder.aws.config import AwsCloud
from pangeo_binder.config_public import public_binder_problems
from pangeo_binder.config_shared import Model, missing_client_id, secret_command
from pangeo_binder.gcp.config import GcpCloud
from pangeo_binder.hub.config import (
    DEFAULT_IMAGES,
    BinderSettings,
    HubSettings,
    MenuImage,
    Secrets,
    menu_gap,
)
from pangeo_binder.support.config import CHANNEL_SECRET, MonitoringSettings

NAMESPACE = "pangeo-binder"


class Clouds(Model):
    """Which clouds this stack deploys to; each is its own component tree."""

    gcp: GcpCloud | None = None
    aws: AwsCloud | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Clouds:
        if self.gcp is None and self.aws is None:
            raise ValueError("configure at least one cloud; accepted keys: gcp, aws")
        return self


class StackConfig(Model):
    """Everything under the `pangeo-binder:` namespace of a stack file."""

    environment: Literal["staging", "prod"] = Field(
        description="prod turns on every deletion guard; staging can be destroyed and rebuilt."
    )
    clouds: Clouds
    hub: HubSettings
    secrets: Secrets = Field(
        default_factory=Secrets,
        description="Secret values, each set with `pulumi config set --secret --path` (the "
        "GitHub client secret of each cloud's hub); never written in plain text.",
    )
    monitoring: MonitoringSettings | None = Field(
        None,
        description="Prometheus, Grafana (at /services/grafana/ of each hub), OpenCost and "
        "alerts on every cluster; absent: none of them.",
    )
    resource_names: Literal["stack", "environment"] = Field(
        "environment",
        alias="resourceNames",
        description="What cloud resource names derive from. `environment` (the default): "
        "`pangeo-binder-<environment>`, the names every stack deployed so far has, so an "
        "upgrade renames nothing. `stack`: the stack's name where it is not its "
        "environment's (`pangeo-binder-staging-alice`), so that two stacks of one environment "
        "can share a GCP project or AWS account; init writes it for every stack not named "
        "after its environment. Changing it on a deployed stack replaces its cluster, buckets "
        "and accounts.",
    )


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


# Where a cloud's hub lacks its OAuth app's client id (init leaves it for later).
CLIENT_ID_LOCS = (("hub", "github"), ("github", "clientId"))


def suggestion(key: str, accepted: list[str]) -> str | None:
    """The accepted key `key` is most likely a typo of (`cloud` for `clouds`, `machinetype`
    for `machineType`), if one is close enough."""
    by_lower = {name.lower(): name for name in accepted}
    found = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[found[0]] if found else None


def _typo_of(error: dict[str, Any]) -> str | None:
    """For an unknown key, the accepted key it is most likely a typo of."""
    if error["type"] != "extra_forbidden":
        return None
    loc = tuple(error["loc"])
    return suggestion(str(loc[-1]), _accepted_keys(loc[:-1]))


def _problem(error: dict[str, Any]) -> Problem:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        keys = _accepted_keys(loc[:-1])
        near = _typo_of(error)
        hint = f" (did you mean {near!r}?)" if near else ""
        message = f"unknown key {str(loc[-1])!r}{hint}; accepted: {', '.join(keys)}"
    elif kind == "missing" and loc[:1] == ("clouds",) and loc[-2:] in CLIENT_ID_LOCS:
        message = missing_client_id(str(loc[1]))
    elif kind == "missing":
        message = "required key is missing"
    elif kind not in {"value_error", "core_pool_count", "user_pool_missing", "pool_zones"}:
        given = (
            "(a secret value, not shown)"
            if loc[:1] == ("secrets",)
            else json.dumps(error["input"], default=str)
        )
        message = f"{message}; got {given}"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "[key]":
        if "images" in loc:
            message = f"image slugs are lowercase letters, digits or hyphens; {message}"
        else:
            message = f"pool names are 1-13 lowercase letters, digits or hyphens; {message}"
    return Problem(_path(loc), message)


def _cross_problems(
    raw: dict[str, Any], secret_keys: Collection[str], stack: str | None = None
) -> list[Problem]:
    """Rules across sections, read from the raw mapping so they are reported even when a
    section has mistakes of its own (every problem at once)."""
    problems: list[Problem] = []
    flat = _flat_key_problems(raw)
    problems += flat
    for key in sorted(set(secret_keys) - {"secrets"}):
        if key in raw and "." not in key:
            problems.append(
                Problem(
                    key,
                    "is set as a secret, but only `secrets` holds secret values: run "
                    f"pulumi config rm {key}, then set it in plain text "
                    f"(pulumi config set --path '{key}' ...)",
                )
            )
    if "secrets" in raw and "secrets" not in secret_keys:
        problems.append(
            Problem(
                "secrets",
                "holds secret values but was not set with --secret: run "
                f"pulumi config rm secrets, then {secret_command('<cloud>')} for each cloud",
            )
        )
    clouds = _section(raw, "clouds")
    secrets = _section(raw, "secrets")
    named = naming.names_stack(raw.get("resourceNames"), stack)
    for cloud, settings in clouds.items():
        if not isinstance(settings, dict) or cloud not in ("gcp", "aws"):
            continue
        cloud_secrets = _section(secrets, cloud)
        path = f"secrets.{cloud}.githubClientSecret"
        if not cloud_secrets.get("githubClientSecret") and path not in {p.path for p in flat}:
            problems.append(
                Problem(
                    path,
                    "missing: the hub on "
                    f"{cloud} needs its GitHub OAuth app's client secret; set it with "
                    f"{secret_command(cloud)}",
                )
            )
        problems += _pool_group_problems(cloud, settings)
        problems += _image_cache_problems(
            cloud, settings, cloud_secrets, raw.get("environment"), named
        )
    return problems + _monitoring_problems(raw)


def _flat_key_problems(raw: dict[str, Any]) -> list[Problem]:
    """A dotted key set without `--path` is one key named `secrets.gcp.githubClientSecret`
    (Pulumi reads the dots as part of the name), not a value under `secrets`: one message
    per key, the command that removes it, then the one that sets it where it belongs."""
    problems = []
    for key in sorted(k for k in raw if "." in k):
        secret = "--secret " if key.split(".", 1)[0] == "secrets" else ""
        problems.append(
            Problem(
                key,
                f"was set without --path, so Pulumi stored one key named {key!r}: "
                f"run pulumi config rm '{key}', then "
                f"pulumi config set {secret}--path '{key}' VALUE",
            )
        )
    return problems


# The cache logins each cloud supports: GCP's ghcr.io cache pulls anonymously.
CACHE_LOGINS = {"gcp": ("dockerHub",), "aws": ("dockerHub", "ghcr")}


def build_repository(cloud: str, environment: str, stack: str | None = None) -> str:
    """The build registry's repository (GCP) or prefix (ECR) the stack names after the
    deployment; gcp/stack.py and aws/stack.py name it the same way."""
    deployment = naming.deployment(environment, stack)
    return f"{deployment}-images" if cloud == "gcp" else deployment


def _image_cache_problems(
    cloud: str,
    settings: dict[str, Any],
    secrets: dict[str, Any],
    environment: Any,
    stack: str | None = None,
) -> list[Problem]:
    """A cache login needs both its user name and its token, and a cache that is on; no
    cache repository may take the build registry's name."""
    cache = _section(settings, "imageCache")
    base = f"clouds.{cloud}.imageCache"
    problems = []
    for key in ("dockerHub", "ghcr"):
        user, token = cache.get(f"{key}Username"), secrets.get(f"{key}Token")
        user_path, token_path = f"{base}.{key}Username", f"secrets.{cloud}.{key}Token"
        if key not in CACHE_LOGINS[cloud]:
            if token:
                problems.append(
                    Problem(token_path, f"{cloud} caches {key} without a login; remove it")
                )
            continue
        if user and not token:
            problems.append(
                Problem(
                    token_path,
                    f"missing: {user_path} is set, and the cache logs in with this token; set "
                    f"it with pulumi config set --secret --path '{token_path}' VALUE",
                )
            )
        elif token and not user:
            problems.append(
                Problem(user_path, f"missing: {token_path} is set; name the account it is for")
            )
        if (user or token) and cache.get("enabled") is False:
            problems.append(
                Problem(f"{base}.enabled", f"is false, but a {key} login is configured for it")
            )
    names = _section(cache, "repositories")
    if environment in ("staging", "prod"):
        build = build_repository(cloud, environment, stack)
        for key, name in names.items():
            if name == build:
                problems.append(
                    Problem(
                        f"{base}.repositories.{key}",
                        f"{name!r} is the build registry's repository; choose another name",
                    )
                )
    return problems


def _monitoring_problems(raw: dict[str, Any]) -> list[Problem]:
    """Grafana needs somebody who may log in; an alert channel needs its secret."""
    if "monitoring" not in raw:
        return []
    monitoring = _section(raw, "monitoring")
    problems = []
    grafana = _section(monitoring, "grafana")
    admins = _section(raw, "hub").get("adminUsers")
    if not admins and not grafana.get("viewers"):
        problems.append(
            Problem(
                "monitoring.grafana.viewers",
                "nobody could log in to Grafana: the hub has no adminUsers; name at least one "
                "hub user here (or add hub.adminUsers)",
            )
        )
    channel = _section(_section(monitoring, "alerts"), "channel")
    key = CHANNEL_SECRET.get(str(channel.get("type")))
    if key and not _section(_section(raw, "secrets"), "monitoring").get(key):
        problems.append(
            Problem(
                f"secrets.monitoring.{key}",
                f"missing: the {channel['type']} alert channel needs it; set it with "
                f"pulumi config set --secret --path 'secrets.monitoring.{key}' VALUE",
            )
        )
    return problems


def _shape_problems(raw: dict[str, Any], reported: list[Problem]) -> list[Problem]:
    """User and dask pools need a known machine shape: profiles and worker sizes are cut
    from it (pangeo_binder/data/machine_shapes.yaml). Pools with a problem of their own are
    skipped: a machine type the cloud's rules refuse is reported once, by them."""
    clouds = _section(raw, "clouds")
    problems = []
    for cloud, settings in clouds.items():
        if cloud not in ("gcp", "aws") or not isinstance(settings, dict):
            continue
        pools = _section(settings, "nodePools")
        for key, pool in pools.items():
            path = f"clouds.{cloud}.nodePools.{key}"
            machine = pool.get("machineType") if isinstance(pool, dict) else None
            if (
                _purpose(pool) in ("user", "dask", "public")
                and isinstance(machine, str)
                and not any(p.path.startswith(f"{path}.") for p in reported)
                and machines.shape(cloud, machine) is None
            ):
                problems.append(
                    Problem(
                        f"{path}.machineType",
                        f"the hub cannot size servers or Dask workers for {machine!r}: its "
                        "vCPUs and memory are not in pangeo_binder/data/machine_shapes.yaml; "
                        "choose a listed family or add the type there",
                    )
                )
    return problems


def _pool_group_problems(cloud: str, settings: dict[str, Any]) -> list[Problem]:
    """`hub.poolGroups` may only name user pools of the same cloud."""
    hub = _section(settings, "hub")
    pools = _section(settings, "nodePools")
    groups = _section(hub, "poolGroups")
    user_pools = sorted(key for key, pool in pools.items() if _purpose(pool) == "user")
    problems = []
    for key in groups:
        if key not in user_pools:
            kind = "is not a user pool" if key in pools else "is not a pool of this cloud"
            problems.append(
                Problem(
                    f"clouds.{cloud}.hub.poolGroups.{key}",
                    f"{key!r} {kind}; accepted: {', '.join(user_pools) or 'none'}",
                )
            )
    return problems


def _gpu_menu_problems(raw: dict[str, Any]) -> list[Problem]:
    """A GPU pool needs a menu image for GPU machines (its profiles' default); a hub without
    GPU pools needs none. A malformed menu is reported by the model's own rules."""
    images = _section(raw, "hub").get("images", DEFAULT_IMAGES)
    if not isinstance(images, dict) or not all(
        isinstance(i, dict | MenuImage) for i in images.values()
    ):
        return []
    hardware = {
        image.hardware if isinstance(image, MenuImage) else image.get("hardware", "cpu")
        for image in images.values()
    }
    gpu_pools = [
        f"clouds.{cloud}.nodePools.{key}"
        for cloud, settings in sorted(_section(raw, "clouds").items())
        for key, pool in _section(settings, "nodePools").items()
        if _purpose(pool) == "user" and isinstance(pool, dict) and pool.get("gpu")
    ]
    if not gpu_pools or hardware & {"gpu", "any"}:
        return []
    return [Problem("hub.images", f"{menu_gap('gpu')} (GPU pools: {', '.join(gpu_pools)})")]


def _binder_disk_problems(raw: dict[str, Any], reported: list[Problem]) -> list[Problem]:
    """BinderHub's docker cache (`hub.binder.dockerDiskGb`) shares a user node's disk with
    the notebook images and the system: it may take at most half of the smallest user
    pool's disk (builds run on one user pool; which one may change with the pools). A pool
    disk with a problem of its own is reported once, by its own rule."""
    hub = _section(raw, "hub")
    binder = _section(hub, "binder")
    disk = binder.get("dockerDiskGb", BinderSettings.model_fields["docker_disk_gb"].default)
    if binder.get("enabled") is False or not isinstance(disk, int):
        return []
    clouds = _section(raw, "clouds")
    small = []
    for cloud, settings in sorted(clouds.items()):
        for key, pool in _section(settings, "nodePools").items():
            pool_disk = pool.get("diskSizeGb", 100) if _purpose(pool) == "user" else None
            path = f"clouds.{cloud}.nodePools.{key}"
            if any(p.path.startswith(f"{path}.") for p in reported):
                continue
            if isinstance(pool_disk, int) and disk > pool_disk // 2:
                small.append(f"{path} ({pool_disk} GB)")
    if not small:
        return []
    return [
        Problem(
            "hub.binder.dockerDiskGb",
            f"{disk} GB of build cache is more than half the disk of {', '.join(small)}: "
            "the images users run need the rest; lower it or give those pools bigger disks",
        )
    ]


def _section(parent: Any, key: str) -> dict[str, Any]:
    """The mapping under `key` of a raw config mapping; empty when either is not a mapping
    (the model's own rules report that shape problem)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _purpose(pool: Any) -> Any:
    return pool.get("purpose") if isinstance(pool, dict) else None


def load_config(
    raw: dict[str, Any], *, secret_keys: Collection[str], stack: str | None = None
) -> StackConfig:
    """Validate raw stack config (keys without the namespace) into a `StackConfig`.

    `secret_keys`: the keys Pulumi marks secret (set with --secret). Secret values are only
    accepted under `secrets`, and only when marked. `stack`: the stack's name, which the
    resource names derive from (`pangeo_binder.naming`) where it is not the environment.
    """
    problems: list[Problem] = []
    config = None
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # `cloud:` for `clouds:` is one mistake: the unknown key's message names the key it
        # meant, so that key is not also reported missing.
        meant = {(*e["loc"][:-1], _typo_of(e)) for e in errors if _typo_of(e)}
        problems = [
            _problem(e) for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in meant)
        ]
    cross = _cross_problems(raw, secret_keys, stack)
    # One message per key: the cross rule's (with the command to run) wins.
    problems = [p for p in problems if p.path not in {c.path for c in cross}] + cross
    problems += _shape_problems(raw, problems)
    problems += [p for p in _gpu_menu_problems(raw) if p.path not in {q.path for q in problems}]
    problems += [
        p for p in _binder_disk_problems(raw, problems) if p.path not in {q.path for q in problems}
    ]
    problems += _stack_name_problems(raw, naming.names_stack(raw.get("resourceNames"), stack))
    if config is not None:
        problems += _placeholder_problems(config)
    problems += [
        Problem(path, message)
        for path, message in public_binder_problems(raw)
        if path not in {q.path for q in problems}
    ]
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _stack_name_problems(raw: dict[str, Any], stack: str | None) -> list[Problem]:
    """A stack not named after its environment gives the resources their names
    (`pangeo_binder.naming`): bucket names and Google service account ids (`pb-<stack>-builder`,
    at most 30 characters) take lowercase letters, digits and hyphens only."""
    environment = raw.get("environment")
    if stack is None or environment not in ("staging", "prod") or stack == environment:
        return []
    qualifier = naming.qualifier(environment, stack)
    why = f"the stack {stack!r} (environment {environment}) names its cloud resources"
    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", qualifier):
        return [Problem("(stack name)", f"{why}: use lowercase letters, digits and hyphens")]
    if "gcp" in _section(raw, "clouds") and len(f"pb-{qualifier}-builder") > 30:
        return [
            Problem(
                "(stack name)",
                f"{why}: Google service account ids (pb-{qualifier}-builder) take at most 30 "
                "characters; choose a stack name of at most 19",
            )
        ]
    return []


def _placeholder_problems(config: StackConfig) -> list[Problem]:
    """User placeholders may hold at most the default user pool's `maxNodes` nodes: more
    would wait forever for nodes the autoscaler may not add (and be paid for nothing).
    Checked on the valid model, as the sizes are cut from it."""
    from pangeo_binder.hub.placeholders import placeholders

    problems = []
    for cloud in ("gcp", "aws"):
        settings = getattr(config.clouds, cloud)
        if settings is None or not settings.hub.user_placeholders:
            continue
        held = placeholders(cloud, settings.node_pools, config.hub, settings.hub)
        pool = settings.node_pools[held.pool]
        if held.nodes > pool.max_nodes:
            problems.append(
                Problem(
                    f"clouds.{cloud}.hub.userPlaceholders",
                    f"{held.count} placeholders need {held.nodes} nodes of pool {held.pool} "
                    f"({held.per_node} per node), more than its maxNodes ({pool.max_nodes}); "
                    f"at most {held.per_node * pool.max_nodes}",
                )
            )
    return problems
