"""Run one project's `__main__.py` under Pulumi's mock engine and print what it registered.

Run as a script (`python runtime.py --root DIR --stack NAME`), never imported by the
program it evaluates: the checkout at DIR may be another git ref whose package differs
from ours, so this file imports only the standard library, PyYAML and Pulumi at module
level. The mocks are the evaluated project's own engine (`engine`): a checkout of this
repository brings its `components/pangeo_binder/testing.py`, one from before that module
existed its `tests/harness.py`, and any other project (an adopter's) uses the installed
`pangeo_binder.testing`; so the plan evaluates each ref exactly as its tests do.

Stack config comes from `Pulumi.<stack>.yaml` (in `--root`, or in `--stacks DIR`: a test
suite's own stack files); every `secure:` value is replaced by
PLACEHOLDER before the program sees it, so no passphrase or key is needed and no
ciphertext or secret can reach the output. Values that are Pulumi secrets in the
registered inputs are replaced by SECRET at any depth.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

PROJECT = "pangeo-binder"
PLACEHOLDER = "plan-secret-placeholder"  # a valid identifier, so config rules still pass
SECRET = "[secret]"
# The exit status of a program that stopped with `pulumi.RunError` (its config problems):
# the caller prints its message alone, as `pulumi preview` does, not a traceback.
RUN_ERROR_EXIT = 3
_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pulumi.runtime.rpc._special_secret_sig


def _replace_secure(value: Any, found: list[str]) -> Any:
    """`value` with each `{secure: ...}` leaf replaced by PLACEHOLDER; ciphertexts collected."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            found.append(str(value["secure"]))
            return PLACEHOLDER
        return {key: _replace_secure(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_secure(item, found) for item in value]
    return value


def stack_file_config(path: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """The project's keys of a stack file (namespace dropped), secure values replaced.

    Returns the config, the keys that held a secure value, and the ciphertexts seen
    (so renderers can prove none of them leaks)."""
    data = yaml.safe_load(path.read_text()) or {}
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    ciphertexts: list[str] = []
    for full_key, value in (data.get("config") or {}).items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT or not key:
            continue
        before = len(ciphertexts)
        config[key] = _replace_secure(value, ciphertexts)
        if len(ciphertexts) > before:
            secret_keys.append(key)
    return config, secret_keys, ciphertexts


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def redact_secrets(value: Any) -> Any:
    """`value` with every secret scalar replaced by SECRET, at any depth.

    A secret that is a map or list (a chart's values with one secret leaf become one
    secret on the wire) is kept and walked instead, so the values stay readable; its
    secret leaves are the strings `watching_secrets` saw, which `tree.redact` removes with
    the known secret keys."""
    if _is_secret(value):
        inner = value.get("value")
        return redact_secrets(inner) if isinstance(inner, dict | list) else SECRET
    if isinstance(value, dict):
        return {key: redact_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """JSON-safe: floats that are integers become ints, other objects their string."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def recording_monitor(base: type) -> Any:
    """A subclass of the engine's monitor that also keeps ids and secret-redacted inputs."""
    from pulumi.runtime import rpc

    class PlanMonitor(base):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[dict[str, Any]] = []

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
                self.records.append(
                    {
                        "type": request.type,
                        "name": request.name,
                        "urn": response.urn,
                        "id": getattr(response, "id", "") or "",
                        "parent": request.parent,
                        "custom": bool(request.custom),
                        "inputs": _plain(redact_secrets(raw)),
                        # what the policies read besides inputs (pangeo_binder.policy)
                        "options": {
                            "protect": bool(request.protect),
                            "retainOnDelete": bool(request.retainOnDelete),
                            "ignoreChanges": list(request.ignoreChanges),
                            # a provider reference is `<urn>::<id>`; the urn names it
                            "provider": str(request.provider).rsplit("::", 1)[0]
                            if str(request.provider).count("::") >= 4
                            else str(request.provider),
                        },
                    }
                )
            return response

    return PlanMonitor()


@contextmanager
def watching_secrets() -> Iterator[list[Any]]:
    """Plaintexts the program wraps with `Output.secret` while the block runs.

    A secret nested in an input (a chart's values) makes the whole input a secret on the
    wire, so the leaves that were secret are known only here; the plan redacts them
    wherever they appear."""
    import pulumi

    seen: list[Any] = []
    original = pulumi.Output.secret

    def secret(val: Any) -> Any:
        wrapped = original(val)
        wrapped.apply(seen.append)
        return wrapped

    pulumi.Output.secret = staticmethod(secret)  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        pulumi.Output.secret = staticmethod(original)  # type: ignore[method-assign]


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def secret_strings(values: list[Any], monitor: Any, config_secrets: Any = None) -> list[str]:
    """Secret plaintexts worth scrubbing, four characters or longer: strings the program
    made secret, what `random:` resources generated (their outputs that are not inputs:
    keepers and lengths stay readable) and the values under the config's secret keys."""
    # scalars only: a secret map (a chart's whole values) is walked, not scrubbed wholesale
    found = {v for v in values if isinstance(v, str)}
    found |= _strings(config_secrets)
    inputs = {r["urn"]: r["inputs"] for r in getattr(monitor, "records", [])}
    for urn, resource in getattr(monitor, "resources", {}).items():
        if str(urn).split("::")[2].split("$")[-1].startswith("random:"):
            state = getattr(resource, "state", {}) or {}
            given = inputs.get(urn, {})
            found |= {v for k, v in state.items() if isinstance(v, str) and k not in given}
    return sorted(v for v in found if len(v) >= 4 and v != PLACEHOLDER)


def source_paths(root: Path) -> list[Path]:
    """What goes first on the import path to run `root`'s program with its own package: the
    source root `components/` of a checkout of this repository, or the checkout itself for
    refs from before the rename (their package was `components`); nothing for a project
    without either (an adopter's), which uses the installed package."""
    if (root / "components" / "pangeo_binder").is_dir():
        return [root / "components"]
    if (root / "components" / "__init__.py").is_file():
        return [root]
    return []


def load_engine(root: Path, stacks: Path | None = None) -> Any:
    """The mock engine `root`'s own tests use, as a namespace of what `record` calls:
    `stack_config`, `run_program`, `RecordingMonitor` and `SECRET_KEYS`; its stack files are
    in `stacks` (default: `root`)."""
    own = source_paths(root)
    sys.path[:0] = [str(path) for path in own]
    legacy = root / "tests" / "harness.py"
    if own and legacy.is_file() and not (own[0] / "pangeo_binder" / "testing.py").is_file():
        # a ref of this repository from before the engine was product code: its harness
        # binds its own root
        sys.path.insert(len(own), str(legacy.parent))
        return importlib.import_module("harness")
    testing = importlib.import_module("pangeo_binder.testing")
    if stacks is not None and "stacks" not in inspect.signature(testing.Project).parameters:
        raise SystemExit(f"{root}'s pangeo_binder.testing cannot read stack files from {stacks}")
    project = testing.Project(root, stacks=stacks) if stacks is not None else testing.Project(root)
    return SimpleNamespace(
        stack_config=project.stack_config,
        run_program=project.run_program,
        RecordingMonitor=testing.RecordingMonitor,
        SECRET_KEYS=testing.SECRET_KEYS,
    )


def stack_config(root: Path, stack: str, stack_file: Path | None, engine: Any) -> Any:
    """The config the project's own tests give the program (`stack_config` of its engine: its
    stack file plus the secrets an operator sets with `--secret`, which a repository never
    holds), with the keys of `stack_file` laid over it; `secure:` values replaced."""
    base = engine.stack_config(stack) if hasattr(engine, "stack_config") else {}
    found: list[str] = []
    config = _replace_secure(base, found)
    if stack_file is not None:
        overlay, _, more = stack_file_config(stack_file)
        config.update(overlay)
        found += more
    secret_keys = sorted(
        {key for key in config if _replace_secure(base.get(key), []) != base.get(key)}
        | set(getattr(engine, "SECRET_KEYS", ()))
    )
    if stack_file is not None:
        secret_keys = sorted(set(secret_keys) | set(stack_file_config(stack_file)[1]))
    return config, [k for k in secret_keys if k in config], found


def record(
    root: Path, stack: str, stack_file: Path | None = None, stacks: Path | None = None
) -> dict[str, Any]:
    """Evaluate `root`'s program for `stack` under its own test mocks; the registrations."""
    engine = load_engine(root, stacks)
    config, secret_keys, ciphertexts = stack_config(root, stack, stack_file, engine)
    monitor = recording_monitor(engine.RecordingMonitor)
    accepts_keys = "secret_keys" in inspect.signature(engine.run_program).parameters
    with watching_secrets() as seen:
        if accepts_keys:  # mark them as `pulumi config set --secret` does
            engine.run_program(stack, config, monitor, secret_keys=tuple(secret_keys))
        else:
            engine.run_program(stack, config, monitor)
    # plaintext secrets the engine supplies (a secure leaf is the placeholder already)
    config_secrets = [config[key] for key in getattr(engine, "SECRET_KEYS", ()) if key in config]
    return {
        "stack": stack,
        "secretKeys": secret_keys,
        "ciphertexts": ciphertexts,
        "secretValues": secret_strings(seen, monitor, config_secrets),
        "records": monitor.records,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--stack-file", type=Path)
    parser.add_argument("--stacks", type=Path, help="folder of the stack files (default: --root)")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent  # run as a script: keep its siblings off the path
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from pulumi import RunError

    stacks = args.stacks.resolve() if args.stacks else None
    try:
        result = record(args.root.resolve(), args.stack, args.stack_file, stacks)
    except RunError as error:
        # What Pulumi's own Python runner does with it: the message, no stack trace.
        print(error, file=sys.stderr)
        sys.exit(RUN_ERROR_EXIT)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
