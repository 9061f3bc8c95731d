"""Render the pinned charts offline with their real templates and validate what comes out.

Tests call these on the values the hub builds:

- `render(pin, values, release=..., namespace=...)`: every object Helm would apply, CRDs included.
  Rendering is Helm's own (helm-python-sdk binds Helm v4's Go library), so the chart's
  values.schema.json and its `fail` templates (NOTES.txt checks included) run as in `helm install`.
- `merged_values` / `validate_values`: the chart defaults coalesced with ours as Helm does, checked
  against the chart's schema with jsonschema, every error with its path.
- `validate_objects`: every object against Kubernetes' OpenAPI schemas (kubernetes-validate,
  offline, strict: unknown fields are errors), custom resources against their CRD's schema.

Missing chart files skip the calling test with a message naming the fetch command, or fail it when
`CI=true`: a test never passes silently without its charts.

Limits of rendering offline (helm-python-sdk 0.2.2, Helm v4.2.3): `lookup` returns nothing (z2jh
then generates its secrets afresh on every render, unless the values set them),
`.Capabilities.KubeVersion` is Helm's built-in default (v1.36.0) and cannot be set through
`Chart.render`, and `.Capabilities.APIVersions` holds only the built-in API groups.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from components.charts import (
    FETCH_COMMAND,
    PINS,
    ChartPin,
    chart_dir,
    missing_files,
    schema_dir,
)

# --- chart files present, or skip (fail under CI) --------------------------------------------


def require_chart_files(pins: Sequence[ChartPin] = PINS) -> None:
    """Skip the calling test when the charts or schemas of `pins` are missing; fail under CI."""
    missing = missing_files(pins)
    if not missing:
        return
    shown = ", ".join(str(p) for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
    message = (
        f"chart sources or schemas missing ({shown}); run `{FETCH_COMMAND}` "
        "(needs helm and internet), or point PANGEO_BINDER_CHARTS / PANGEO_BINDER_CHART_SCHEMAS "
        "at them"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- rendering --------------------------------------------------------------------------------


class RenderError(RuntimeError):
    """Helm refused the values (schema) or a template failed (`fail`, a nil pointer, bad YAML)."""


@functools.cache
def _chart(path: str) -> helm_python.Chart:
    return helm_python.Chart.load(path)


@functools.lru_cache(maxsize=64)
def _render_cached(path: str, values_json: str, release: str, namespace: str) -> tuple[dict, ...]:
    chart = _chart(path)
    try:
        manifests = chart.render(
            json.loads(values_json), name=release, namespace=namespace, is_install=True
        )
    except (helm_python.HelmValuesError, helm_python.HelmRenderError) as error:
        raise RenderError(f"{chart.name} {chart.version} as release {release}: {error}") from error
    objects: list[dict] = [doc for crd in chart.crds for doc in _documents(crd["data"])]
    for template in sorted(manifests):
        if template.endswith("NOTES.txt"):
            continue
        objects += _documents(manifests[template])
    return tuple(objects)


def _documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(pin: ChartPin, values: dict, *, release: str, namespace: str) -> list[dict]:
    """Every object an install of `pin` with `values` applies: CRDs first, then the templates.

    Raises RenderError when Helm rejects the values against the chart schema or a template fails.
    Results are cached per (chart, values, release, namespace); callers get their own copy.
    """
    require_chart_files((pin,))
    key = json.dumps(values, sort_keys=True)
    return copy.deepcopy(list(_render_cached(str(chart_dir(pin)), key, release, namespace)))


def find(objects: Iterable[dict], kind: str, name: str | None = None) -> list[dict]:
    """The objects of `kind` (and `name`, when given)."""
    return [
        o
        for o in objects
        if o.get("kind") == kind and (name is None or o.get("metadata", {}).get("name") == name)
    ]


# --- values -----------------------------------------------------------------------------------


def coalesce(defaults: Any, values: Any) -> Any:
    """Helm's merge of user values over chart defaults, as Helm v4's `CoalesceValues` does it.

    Maps merge key by key; lists and scalars replace; a `null` of ours deletes the key when the
    defaults have it (a `null` for a key the defaults lack stays); `null`s in the defaults' maps
    are dropped. Checked against Helm's own merge in tests/test_chart_render.py.
    """
    if not (isinstance(defaults, dict) and isinstance(values, dict)):
        return copy.deepcopy(values)
    merged = _without_nulls(defaults)
    for key, value in values.items():
        if value is None and key in defaults:
            merged.pop(key, None)
        elif isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = coalesce(defaults[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _without_nulls(defaults: dict) -> dict:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else copy.deepcopy(value)
        for key, value in defaults.items()
        if value is not None
    }


@functools.cache
def _yaml_file(path: str) -> Any:
    return yaml.safe_load(Path(path).read_text())


@functools.cache
def _json_file(path: str) -> Any:
    return json.loads(Path(path).read_text())


def chart_defaults(pin: ChartPin) -> dict:
    """The chart package's values.yaml: the defaults Helm renders with.

    Read from the chart, not from the schemas folder: the shared chart-schemas/*/values.yaml are
    the source repositories' files, whose image tags still say `set-by-chartpress`.
    """
    require_chart_files((pin,))
    return copy.deepcopy(_yaml_file(str(chart_dir(pin) / "values.yaml")) or {})


def values_schema(pin: ChartPin) -> dict:
    """The chart's values.schema.json from the schemas folder."""
    require_chart_files((pin,))
    return copy.deepcopy(_json_file(str(schema_dir(pin) / "values.schema.json")))


def merged_values(pin: ChartPin, values: dict) -> dict:
    """The values a release of `pin` renders with: its defaults coalesced with `values`."""
    return coalesce(chart_defaults(pin), values)


class ValuesInvalid(ValueError):
    """Values that the chart's schema refuses; `errors` holds `path: message` for each."""

    def __init__(self, pin: ChartPin, errors: list[str]):
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{pin.name} {pin.version} values refused by its schema:\n{lines}")


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(root)"


def values_errors(pin: ChartPin, values: dict) -> list[str]:
    """Every schema error of the merged values, as `path: message`, sorted by path."""
    schema = values_schema(pin)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft7Validator
    )
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(merged_values(pin, values)), key=lambda e: list(e.path))
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def validate_values(pin: ChartPin, values: dict) -> None:
    """Raise ValuesInvalid with every error path when the merged values break the chart schema."""
    errors = values_errors(pin, values)
    if errors:
        raise ValuesInvalid(pin, errors)


# --- objects ----------------------------------------------------------------------------------


class ObjectsInvalid(ValueError):
    """Rendered objects that Kubernetes (or their CRD) would refuse; `problems` lists each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} invalid Kubernetes object problem(s):\n{lines}")


def schema_version(kubernetes_version: str) -> str:
    """The newest Kubernetes version kubernetes-validate ships that is not newer than ours."""
    wanted = tuple(int(x) for x in kv.major_minor(kubernetes_version.lstrip("v")).split("."))
    shipped = [v for v in kv.all_versions() if tuple(int(x) for x in v.split(".")[:2]) <= wanted]
    if not shipped:
        raise ValueError(f"kubernetes-validate ships no schema for Kubernetes <= {wanted}")
    return shipped[-1]


@functools.lru_cache(maxsize=8)
def _k8s_registry(schema_dir_name: str, version: str) -> Registry:
    definitions = kv.schema_contents(
        f"kubernetes-json-schema/{schema_dir_name}/_definitions.json", version
    )
    return Resource.from_contents(definitions) @ Registry()


@functools.lru_cache(maxsize=512)
def _k8s_validator(version: str, strict: bool, kind: str, api_version: str):
    folder = f"v{version}-local" + ("-strict" if strict else "")
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/{folder}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _k8s_registry(folder, version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _closed(schema: Any) -> Any:
    """A CRD schema where objects with listed properties refuse unlisted ones (strict fields).

    The API server prunes (or, with strict field validation, refuses) fields a structural schema
    does not list, unless `x-kubernetes-preserve-unknown-fields` says to keep them.
    """
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def _crd_validators(crds: Iterable[dict], strict: bool) -> dict[tuple[str, str, str], Any]:
    """(group, version, kind) -> a validator for that custom resource, from its CRD."""
    validators = {}
    for crd in crds:
        spec = crd.get("spec", {})
        for served in spec.get("versions", []):
            schema = served.get("schema", {}).get("openAPIV3Schema", {})
            if strict:
                schema = _closed(schema)
                props = schema.setdefault("properties", {})
                for field in ("apiVersion", "kind", "metadata"):
                    props.setdefault(field, {})
            key = (spec.get("group"), served.get("name"), spec.get("names", {}).get("kind"))
            validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def _label(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f" (namespace {meta['namespace']})" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{meta.get('name')}{where}"


def object_problems(
    objects: Sequence[dict],
    kubernetes_version: str = "1.33",
    *,
    strict: bool = True,
    crds: Iterable[dict] = (),
) -> list[str]:
    """Every problem Kubernetes would find in `objects`, each as `Kind/name: path: message`.

    Built-in kinds are checked against kubernetes-validate's schemas for the newest version it ships
    not newer than `kubernetes_version` (strict: unknown fields are errors). Kinds defined by a
    CustomResourceDefinition among `objects` (or in `crds`) are checked against its schema.
    Duplicate objects (same apiVersion group, kind, namespace and name) are problems too.
    """
    version = schema_version(kubernetes_version)
    definitions = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    custom = _crd_validators([*definitions, *crds], strict)
    problems: list[str] = []
    seen: set[tuple] = set()
    for obj in objects:
        label = _label(obj)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            problems.append(f"{label}: (root): apiVersion and kind are required")
            continue
        meta = obj.get("metadata") or {}
        identity = (api_version.split("/")[0], kind, meta.get("namespace"), meta.get("name"))
        if identity in seen:
            problems.append(f"{label}: (root): rendered twice")
        seen.add(identity)
        group, _, served = api_version.rpartition("/")
        validator = custom.get((group, served, kind))
        if validator is None:
            validator = _k8s_validator(version, strict, kind, api_version)
        if validator is None:
            problems.append(
                f"{label}: (root): no schema for {api_version} {kind} in Kubernetes {version} "
                "and no CustomResourceDefinition for it among the objects"
            )
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            problems.append(f"{label}: {_path(error.absolute_path)}: {error.message}")
    return problems


def validate_objects(
    objects: Sequence[dict],
    kubernetes_version: str = "1.33",
    *,
    strict: bool = True,
    crds: Iterable[dict] = (),
) -> None:
    """Raise ObjectsInvalid listing every problem of `object_problems`."""
    problems = object_problems(objects, kubernetes_version, strict=strict, crds=crds)
    if problems:
        raise ObjectsInvalid(problems)
