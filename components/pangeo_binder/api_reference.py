"""Generate the API reference (docs/reference/api.md) from the public names and their docstrings.

The public API is the table in `pangeo_binder/__init__.py`; each entry's signature, docstring,
type token and typed outputs are read from the code, so the page cannot say what the code does
not. `python -m pangeo_binder.api_reference > docs/reference/api.md` rewrites it; a test fails
when the checked-in page and the code disagree.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import pulumi
from pydantic import BaseModel

import pangeo_binder
from pangeo_binder.reference import type_name

HEADER = f"""# API reference (pangeo-binder {pangeo_binder.__version__})

Generated from `pangeo_binder/__init__.py` and the docstrings of the names it exports, by
`python -m pangeo_binder.api_reference`; do not edit by hand. Import every name from the
package (`from pangeo_binder import GcpStack`): module paths are private and may change in any
release (CHANGELOG.md says what changed). The config models' keys, defaults and reasons are in
the [config reference](config.md). `pangeo_binder.testing`, the mock engine that evaluates a
program offline, is the one other public module.
"""

TYPE_TOKEN = re.compile(r'super\(\)\.__init__\(\s*"([^"]+)"')


def _docstring(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "(no docstring)")


def _kind(obj: Any) -> str:
    if isinstance(obj, type) and issubclass(obj, pulumi.ComponentResource):
        return "component"
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        return "config model"
    if isinstance(obj, type) and issubclass(obj, Exception):
        return "exception"
    if dataclasses.is_dataclass(obj):
        return "dataclass"
    if inspect.isfunction(obj):
        return "function"
    return "constant"


def _parameter(parameter: inspect.Parameter) -> str:
    """One parameter as written in the source: `name: annotation = default`."""
    text = parameter.name
    if parameter.annotation is not inspect.Parameter.empty:
        text += f": {parameter.annotation}"
    if parameter.default is not inspect.Parameter.empty:
        text += f" = {parameter.default!r}"
    return text


def _signature(name: str, obj: Any) -> str:
    """`name(arguments)` as declared, keyword-only arguments after `*`."""
    target = obj.__init__ if isinstance(obj, type) else obj
    signature = inspect.signature(target)
    parameters = list(signature.parameters.values())[1 if isinstance(obj, type) else 0 :]
    lines = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "    *," not in lines:
            lines.append("    *,")
        lines.append(f"    {_parameter(parameter)},")
    returns = signature.return_annotation
    tail = "" if isinstance(obj, type) or returns is inspect.Signature.empty else f" -> {returns}"
    return "\n".join([f"{name}(", *lines, f"){tail}"])


def _outputs(obj: type) -> list[str]:
    """A component's typed outputs: its class-level annotations."""
    annotations = inspect.get_annotations(obj)
    return [f"`{field}`: `{kind}`" for field, kind in annotations.items()]


def _fields(obj: Any) -> list[str]:
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        return [
            f"`{name}` (key `{field.alias or name}`): {type_name(field.annotation)}"
            for name, field in obj.model_fields.items()
        ]
    return [f"`{field.name}`: `{field.type}`" for field in dataclasses.fields(obj)]


def _entry(name: str, module: str, attribute: str) -> list[str]:
    obj = getattr(pangeo_binder, name)
    kind = _kind(obj)
    where = f"{module}.{attribute}"
    lines = [f"### `{name}`", "", f"{kind}; defined as `{where}` (private path)", ""]
    if kind == "constant":
        items = obj if isinstance(obj, tuple | list) else [obj]
        return [*lines, *[f"- `{item!r}`" for item in items], ""]
    if kind != "config model":
        lines += ["```python", _signature(name, obj), "```", ""]
    lines += [_docstring(obj), ""]
    if kind == "component":
        token = TYPE_TOKEN.search(inspect.getsource(obj))
        if token:
            lines += [f"Type token: `{token.group(1)}`.", ""]
        outputs = _outputs(obj)
        if outputs:
            lines += ["Outputs:", "", *[f"- {item}" for item in outputs], ""]
    if kind in ("config model", "dataclass"):
        lines += ["Fields:", "", *[f"- {item}" for item in _fields(obj)], ""]
    return lines


def render() -> str:
    """The whole page."""
    lines = [HEADER]
    for layer, names in pangeo_binder._LAYERS.items():
        lines += [f"## {layer}", ""]
        for name, (module, attribute) in names.items():
            lines += _entry(name, module, attribute)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
