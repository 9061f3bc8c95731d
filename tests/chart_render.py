"""Render the pinned charts offline with their real templates and validate what comes out.

Tests call these on the values the hub builds:

- `render(pin, values, release=..., namespace=...)`: every object Helm would apply, CRDs included.
  Rendering is Helm's own (helm-python-sdk binds Helm v4's Go library), so the chart's
  values.schema.json and its `fail` templates (NOTES.txt checks included) run as in `helm install`.
- `merged_values` / `validate_values`: the chart defaults coalesced with ours as Helm does, checked
  against the chart's schema with jsonschema, every error with its path.
- `validate_objects`: every object against Kubernetes' OpenAPI schemas (kubernetes-validate,
  offline, strict: unknown fields are errors), custom resources against their CRD's schema.

Missing chart files skip the calling test with a message naming the fetch command and the folders
looked in, or fail it when `CI=true`: a test never passes silently without its charts.

Limits of rendering offline (helm-python-sdk 0.2.2, Helm v4.2.3): `lookup` returns nothing (z2jh
then generates its secrets afresh on every render, unless the values set them),
`.Capabilities.KubeVersion` is Helm's built-in default (v1.36.0) and cannot be set through
`Chart.render`, and `.Capabilities.APIVersions` holds only the built-in API groups.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from harness import skip_or_fail
from pangeo_binder.charts import (
    PINS,
    ChartPin,
    chart_dir,
    missing_message,
    schema_dir,
)

# --- chart files present, or skip (fail under CI) --------------------------------------------


def require_chart_files(pins: Sequence[ChartPin] = PINS) -> None:
    """Skip the calling test when the charts or schemas of `pins` are missing; fail under CI."""
    message = missing_message(pins)
    if message is None:
        return
    skip_or_fail(message)


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
        helm_python.validate_release_name(release)  # what `helm install` checks first (<= 53)
        manifests = chart.render(
            json.loads(values_json), name=release, namespace=namespace, is_install=True
        )
    except (
        helm_python.HelmValuesError,
        helm_python.HelmRenderError,
        helm_python.HelmInvalidArgError,
    ) as error:
        raise RenderError(f"{chart.name} {chart.version} as release {release}: {error}") from error
    objects: list[dict] = [doc for crd in chart.crds for doc in _documents(crd["data"])]
    for template in sorted(manifests):
        if template.endswith("NOTES.txt"):
            continue
        objects += _documents(manifests[template])
    return tuple(objects)


# libyaml's loader when PyYAML has it: rendering is mostly YAML parsing (dask-gateway's CRDs).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


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


def hooks(objects: Iterable[dict]) -> list[dict]:
    """The objects Helm runs as hooks (`helm.sh/hook` annotation), which a plain apply does not."""
    return [
        o for o in objects if "helm.sh/hook" in ((o.get("metadata") or {}).get("annotations") or {})
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


def null_paths(values: Any, path: tuple = ()) -> list[str]:
    """Where `values` hold a `null`: Helm deletes those defaults, but Pulumi's Python SDK strips
    nulls from a Chart's `values=` before they reach the provider, so a deletion meant for a
    release must go through `valueYamlFiles` instead (Pulumi docs, "Deleting Helm Chart Default
    Values", pulumi-kubernetes >= 4.30, read 2026-11-26). Tests can assert this is empty."""
    if isinstance(values, dict):
        return [p for key, value in values.items() for p in null_paths(value, (*path, key))]
    return [_path(path)] if values is None else []


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
    if not pin.schema:  # grafana and opencost publish none: objects are still validated
        return []
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


KUBERNETES_VERSION = "1.33"
"""The oldest minor our clusters may run (EKS allows 1.34 and 1.35 in components/pangeo_binder/data/aws.yaml;
GKE follows its release channel): the schemas of the newest version kubernetes-validate ships not
newer than this are used, so a field only newer Kubernetes knows is an error."""


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


# Kubernetes' own name and label rules, which the OpenAPI schemas do not carry: a long release name
# or fullnameOverride breaks these first. Source: kubernetes.io "Object Names and IDs" (DNS-1123
# subdomain names, DNS-1035 label names for Services, path segment names for RBAC) and "Labels and
# Selectors" (names and values of at most 63 characters), read 2026-11-26.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL.pattern}(\.{_DNS_LABEL.pattern})*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_RBAC = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def _name_problem(kind: str, name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "a name is required"
    if kind in _RBAC:  # RBAC names only need to be path segments ("system:..." is fine)
        ok = name not in (".", "..") and not set(name) & {"/", "%"}
        return None if ok else "not a valid path segment name"
    if kind == "Service":
        ok = len(name) <= 63 and _DNS_1035_LABEL.fullmatch(name)
        return None if ok else "a Service name must be a DNS-1035 label (<= 63, [a-z][-a-z0-9])"
    ok = len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name)
    return None if ok else "not a DNS-1123 subdomain (<= 253 chars, [a-z0-9.-])"


def _label_problems(labels: Any, where: str) -> list[str]:
    problems = []
    for key, value in (labels or {}).items():
        prefix, _, name = str(key).rpartition("/")
        if prefix and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
            problems.append(f"{where}: label key {key!r}: prefix is not a DNS subdomain")
        if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
            problems.append(f"{where}: label key {key!r}: not a valid label name (<= 63 chars)")
        if not isinstance(value, str):
            continue  # the schema reports a non-string value
        if value and not (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
            problems.append(f"{where}: label {key}={value!r}: not a valid label value (<= 63)")
    return problems


def _metadata_problems(obj: dict) -> list[str]:
    meta = obj.get("metadata") or {}
    problems = []
    if not meta.get("generateName"):
        problem = _name_problem(str(obj.get("kind")), meta.get("name"))
        if problem:
            problems.append(f"metadata.name: {problem}")
    problems += _label_problems(meta.get("labels"), "metadata.labels")
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels")
        problems += _label_problems(labels, "spec.template.metadata.labels")
    return problems


def _label(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f" (namespace {meta['namespace']})" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{meta.get('name')}{where}"


def object_problems(
    objects: Sequence[dict],
    kubernetes_version: str = KUBERNETES_VERSION,
    *,
    strict: bool = True,
    crds: Iterable[dict] = (),
) -> list[str]:
    """Every problem Kubernetes would find in `objects`, each as `Kind/name: path: message`.

    Built-in kinds are checked against kubernetes-validate's schemas for the newest version it ships
    not newer than `kubernetes_version` (strict: unknown fields are errors). Kinds defined by a
    CustomResourceDefinition among `objects` (or in `crds`) are checked against its schema.
    Names and labels are checked against Kubernetes' own rules, which the schemas lack (a Service
    name is a DNS-1035 label of at most 63 characters, label values at most 63, ...). Duplicate
    objects (same apiVersion group, kind, namespace and name) are problems too.
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
        problems += [f"{label}: {problem}" for problem in _metadata_problems(obj)]
    return problems


def validate_objects(
    objects: Sequence[dict],
    kubernetes_version: str = KUBERNETES_VERSION,
    *,
    strict: bool = True,
    crds: Iterable[dict] = (),
) -> None:
    """Raise ObjectsInvalid listing every problem of `object_problems`."""
    problems = object_problems(objects, kubernetes_version, strict=strict, crds=crds)
    if problems:
        raise ObjectsInvalid(problems)
