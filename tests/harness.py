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

    @property
    def provider_urn(self) -> str:
        return self.provider.split("::", 1)[0] if "::" in self.provider else self.provider


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
        return f"projects/{inputs.get('project')}/regions/{inputs.get('region')}/subnetworks/{name}", out
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
            return {"number": "123456789012", "projectId": args.args.get("projectId")}, None
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, keeping each request's options as well as its inputs."""

    def __init__(self) -> None:
        super().__init__(Mocks())
        self.registrations: list[Registration] = []
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    provider=request.provider,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                    outputs=self.resources[response.urn].state if response.urn in self.resources else {},
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        if "pulumi:pulumi:Stack" in request.urn:
            self.stack_outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class Run:
    """Everything one program run registered."""

    registrations: list[Registration]
    stack_outputs: dict[str, Any]

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


def run_program(stack: str, config: dict[str, Any] | None = None) -> Run:
    """Run `__main__.py` for `stack` (its stack file, or `config` instead) under mocks."""
    values = stack_config(stack) if config is None else config
    return run_function(lambda: runpy.run_path(str(MAIN), run_name="__main__"), stack, values)


def run_function(fn: Callable[[], Any], stack: str = "test", config: dict[str, Any] | None = None) -> Run:
    """Run `fn` as a Pulumi program under mocks with `config` as the project's config."""
    pulumi.runtime.set_all_config(
        {
            f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in (config or {}).items()
        },
        [],
    )
    monitor = RecordingMonitor()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    settings.ROOT.set(None)  # set_mocks made a root stack; run_in_stack makes the real one
    _sync_await(run_in_stack(fn))
    return Run(monitor.registrations, monitor.stack_outputs)
