"""Typed, frozen configuration sections and readable errors.

Every section of params.yaml is a :class:`Section`: a frozen pydantic model that rejects unknown keys
and wrong types. :func:`format_errors` turns pydantic's errors into one line per problem that names the
full key, e.g. ``distill.temprature: unknown key (did you mean temperature?)``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator


class ConfigError(ValueError):
    """params.yaml (or a section of it) is not valid. The message names every offending key."""


_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _scalar_types(annotation: Any) -> set[type]:
    """The plain scalar types a field accepts (int, float, bool, str) through Optional / Union / Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_types(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_scalar_types(arg) for arg in typing.get_args(annotation)))
    return {annotation} if annotation in (int, float, bool, str) else set()


class Section(BaseModel):
    """Base of every params section: frozen, strict about unknown keys and about numbers.

    pydantic's lax mode would read ``epochs: true`` as 1 and ``epochs: "30"`` as 30; a params file
    that says either means something else, so a number field takes only a number (a float field also
    takes a numeric string, because YAML 1.1 reads ``1e-3`` as a string).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        kinds = _scalar_types(field.annotation)
        if bool in kinds or not kinds & {int, float}:
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
        if isinstance(value, str) and str not in kinds:
            if float not in kinds or not _FLOAT_TEXT.fullmatch(value.strip()):
                raise ValueError(f"expected a number, got the string {value!r}")
        return value


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk ``loc`` through nested models to find the model that owns the last key."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """Return the first BaseModel inside Optional[...] / Union[...] / list[...], or the annotation itself."""
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _unwrap(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def format_errors(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """One line per error, each naming the dotted key and, for typos, the closest valid key."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic puts the union member's tag in loc for tagged unions; keep only real keys
        key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            hint = ""
            if owner is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1, cutoff=0.6)
                if close:
                    hint = f" (did you mean {close[0]}?)"
            lines.append(f"{key}: unknown key{hint}")
        elif err["type"] == "missing":
            lines.append(f"{key}: required value is missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if msg.startswith(key + ".") or msg.startswith(key + ":"):  # a check that names the full key itself
                lines.append(msg)
                continue
            if "got " in msg:  # the message already shows the value
                lines.append(f"{key}: {msg}")
                continue
            got = err.get("input")
            shown = repr(got) if not isinstance(got, dict) else "a mapping"
            if len(shown) > 60:
                shown = shown[:57] + "..."
            lines.append(f"{key}: {msg} (got {shown})")
    return "\n".join(lines)
