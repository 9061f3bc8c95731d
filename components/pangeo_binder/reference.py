"""Generate the config reference (docs/reference/config.md) from the config model.

The model is the single source: every key, type, default and reason is declared once, on its
field. `python -m pangeo_binder.reference > docs/reference/config.md` rewrites the page; a test
fails when the checked-in page and the model disagree.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pangeo_binder.config import NAMESPACE, StackConfig

HEADER = f"""# Stack config reference

Generated from `pangeo_binder/config.py` and the models it uses by
`python -m pangeo_binder.reference`; do not edit by hand. Keys sit under the `{NAMESPACE}:`
namespace of a stack file. Unknown keys are errors, naming the accepted key a typo most likely
meant (`cloud: unknown key 'cloud' (did you mean 'clouds'?)`). A key set without `--path` (one
key named `secrets.gcp.githubClientSecret`) is reported with the `pulumi config rm` that removes
it and the command that sets it. Every problem in a config is reported at once, each with its key
path, before anything is created.
"""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if origin is dict:
        return f"map of name to {type_name(args[1])}"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is typing.Annotated:
        return type_name(args[0])
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
        if isinstance(value, list):  # addresses and such as written in a stack file
            value = [str(item) for item in value]
        return f"`{value!r}`" if value else "empty"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "unset"
    value = field.default
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return f"`{value}`"


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _why(field: FieldInfo) -> str:
    """The field's description, else the summary of the model it holds."""
    nested = _models_in(field.annotation)
    text = field.description or (_summary(nested[0]) if nested else "")
    return text.replace("|", "/")


def _sections(model: type[BaseModel], path: str) -> Iterator[str]:
    rows = [
        f"| `{field.alias or name}` | {type_name(field.annotation)} | {_default(field)} | "
        f"{_why(field)} |"
        for name, field in model.model_fields.items()
    ]
    doc = _summary(model)
    yield (
        f"## `{path}`\n\n{doc}\n\n| key | type | default | why |\n|---|---|---|---|\n"
        + "\n".join(rows)
    )
    for name, field in model.model_fields.items():
        key = field.alias or name
        is_map = typing.get_origin(field.annotation) is dict
        for nested in _models_in(field.annotation):
            yield from _sections(nested, f"{path}.{key}.<name>" if is_map else f"{path}.{key}")


def render() -> str:
    return HEADER + "\n" + "\n\n".join(_sections(StackConfig, NAMESPACE)) + "\n"


if __name__ == "__main__":
    print(render(), end="")
