"""Generate the configuration reference (docs/configuration.md) from the typed params models.

    python -m pipeline.config.reference > docs/configuration.md

The document is derived from the same pydantic models that validate params.yaml, so it cannot drift:
a test regenerates it and compares it with the committed file.
"""

from __future__ import annotations

import json
import sys
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

HEADER = """# Configuration reference

Generated from the typed params models by `python -m pipeline.config.reference`; do not edit by hand.
Every key of params.yaml is listed with its type, default and meaning. Unknown keys and wrong types are
rejected when params.yaml is loaded, with a message that names the key.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list[{', '.join(_type_name(a) for a in args)}]"
    if origin is dict:
        return f"dict[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return "section" if issubclass(annotation, BaseModel) else annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    try:
        text = json.dumps(value, default=str)
    except TypeError:
        text = repr(value)
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _doc_lines(model: type[BaseModel]) -> list[str]:
    import inspect

    doc = inspect.getdoc(model) or ""
    return [doc, ""] if doc and not doc.startswith(("Create a new model", "Base of every")) else []


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment lines just above its declaration (or trailing it) in the model's source."""
    import inspect
    import re

    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"\s+([a-z_][a-z0-9_]*)\s*:", line)
        if match:
            trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            found[match.group(1)] = " ".join(pending + ([trailing] if trailing else []))
        pending = []
    return found


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    rows, nested = [], []
    comments = {}
    for klass in reversed(model.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseModel):
            comments.update(_comments(klass))
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub = _model_of(field.annotation)
        if sub is not None and not (typing.get_origin(field.annotation) in (list, dict)):
            nested.append((f"{prefix}.{key}" if prefix else key, sub, field))
            continue
        desc = (field.description or comments.get(name, "")).replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    if rows:
        out += [f"## `{prefix}`" if prefix else "## top level", ""] + _doc_lines(model)
        out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    for path, sub, _field in nested:
        _section(sub, path, out)


def render() -> str:
    from pipeline.config import Params

    out = [HEADER]
    _section(Params, "", out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
