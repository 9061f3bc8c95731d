"""Run the real `__main__.py` (or a component) under Pulumi's mock engine and record everything.

Every resource registration is kept with its type, inputs and options (parent, provider,
protect, retain_on_delete, ignore_changes, dependencies), so tests assert on what a real
`pulumi preview` would send to the engine.
"""

from __future__ import annotations

import copy
import json
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
PROJECT = "pangeo-binder"


@dataclass
class Registration:
    """One resource as the engine saw it."""

    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    dependencies: list[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_inputs: set[str] = field(default_factory=set)

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if "::" in self.provider else self.provider


def _mock_outputs(args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
    """Realistic computed outputs for the types whose outputs the program reads."""
    inputs = dict(args.inputs)
    name = inputs.get("name") or args.name
    out: dict[str, Any] = {**inputs}
    typ = args.typ
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@{inputs.get('project', 'p')}.iam.gserviceaccount.com"
        out |= {
            "email": email,
            "member": f"serviceAccount:{email}",
            "name": f"projects/{inputs.get('project')}/serviceAccounts/{email}",
        }
    elif typ == "gcp:storage/bucket:Bucket":
        out |= {"url": f"gs://{name}", "selfLink": f"https://storage/{name}"}
    elif typ == "gcp:container/cluster:Cluster":
        out |= {
            "endpoint": "203.0.113.10",
            "masterAuth": {
                **inputs.get("masterAuth", {}),
                "clusterCaCertificate": "TU9DSyBDQQ==",
            },
        }
    elif typ == "gcp:container/nodePool:NodePool":
        out |= {"name": f"{inputs.get('namePrefix', '')}20261125000000000000000001"}
    elif typ == "gcp:compute/network:Network":
        return f"projects/{inputs.get('project')}/global/networks/{name}", out
    elif typ == "gcp:compute/subnetwork:Subnetwork":
        return (
            f"projects/{inputs.get('project')}/regions/{inputs.get('region')}/subnetworks/{name}",
            out,
        )
    elif typ == "gcp:artifactregistry/repository:Repository":
        out |= {"name": inputs.get("repositoryId")}
    elif typ == "gcp:monitoring/notificationChannel:NotificationChannel":
        out |= {"name": f"projects/p/notificationChannels/{args.name}"}
    return f"{args.name}-id", out


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return _mock_outputs(args)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list | None]:
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": "123456789012", "projectId": args.args.get("projectId")}, []
        return {}, []


SECRET_SIG = rpc._special_sig_key, rpc._special_secret_sig


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def unwrap_secrets(value: Any) -> Any:
    """The plain value under Pulumi's secret wrappers, at any depth."""
    if _is_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, keeping each request's options as well as its inputs."""

    def __init__(self) -> None:
        super().__init__(Mocks())
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}
        self.secret_outputs: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw_inputs = rpc.deserialize_properties(request.object)
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    custom=request.custom,
                    inputs=unwrap_secrets(raw_inputs),
                    secret_inputs={key for key, value in raw_inputs.items() if _is_secret(value)},
                    parent=request.parent,
                    provider=request.provider,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                    outputs=self.resources[response.urn].state
                    if response.urn in self.resources
                    else {},
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if "pulumi:pulumi:Stack" in request.urn:
            raw = rpc.deserialize_properties(request.outputs)
            self.secret_outputs = {key for key, value in raw.items() if _is_secret(value)}
            self.stack_outputs = unwrap_secrets(raw)
        return super().RegisterResourceOutputs(request)


@dataclass
class Run:
    """Everything one program run registered."""

    registrations: list[Registration]
    stack_outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def custom(self) -> Iterator[Registration]:
        return (r for r in self.registrations if r.custom)


def stack_config(stack: str) -> dict[str, Any]:
    """The stack file's `pangeo-binder:*` keys, without the namespace."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in data["config"].items()}


def with_value(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `config` with the dotted `path` set (or removed when `value` is DELETE)."""
    result = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = result
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return result


DELETE = object()


def run_program(
    stack: str, config: dict[str, Any] | None = None, monitor: RecordingMonitor | None = None
) -> Run:
    """Run `__main__.py` for `stack` (its stack file, or `config` instead) under mocks.

    Pass `monitor` to inspect what was registered when the program raises."""
    values = stack_config(stack) if config is None else config
    return run_function(
        lambda: runpy.run_path(str(MAIN), run_name="__main__"), stack, values, monitor
    )


def run_function(
    fn: Callable[[], Any],
    stack: str = "test",
    config: dict[str, Any] | None = None,
    monitor: RecordingMonitor | None = None,
) -> Run:
    """Run `fn` as a Pulumi program under mocks with `config` as the project's config."""
    pulumi.runtime.set_all_config(
        {
            f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in (config or {}).items()
        },
        [],
    )
    monitor = monitor or RecordingMonitor()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor
    )
    settings.ROOT.set(None)  # set_mocks made a root stack; run_in_stack makes the real one
    _sync_await(run_in_stack(fn))
    return Run(monitor.registrations, monitor.stack_outputs, monitor.secret_outputs)
