"""Name -> implementation tables: every registry that params.yaml picks from by name has this one shape.

Teachers, students, losses, ingest readers, augmentation ops, evaluation suites and perturbations are
each a :class:`Plugins`. An implementation registers itself with the decorator; the table also says in
which module each built-in name lives, so its names are known (and params.yaml is validated against
them) without importing torch, transformers or pandas, and a name's module is imported on first use::

    LOSSES = Plugins("distill.losses", LossConfigError, modules={"kd": "pipeline.losses.kd"})

    @LOSSES.register("kd")          # in pipeline/losses/kd.py
    def build(temperature=4.0): ...

    LOSSES.build("kd", temperature=2.0)   # unknown keyword arguments are an error naming the key

An unknown name fails the same way everywhere: with the table's error type and the known names.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from pipeline.errors import DistillError

T = TypeVar("T")


class Plugins(Generic[T]):
    def __init__(self, what: str, error: type[Exception] = DistillError,
                 modules: Mapping[str, str] | None = None, kwargs_key: str | None = None) -> None:
        self.what = what  # the params key that names an entry, e.g. "teacher.kind"
        self.error = error
        # how an error names the params key of an entry's keyword arguments ({name}: the entry)
        self.kwargs_key = kwargs_key or what + " {name}"
        self._modules = dict(modules or {})
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated function or class available under ``name``."""

        def wrap(item: T) -> T:
            self._items[name] = item
            return item

        return wrap

    def names(self) -> list[str]:
        """Every known name, registered or declared, without importing anything."""
        return sorted(set(self._modules) | set(self._items))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._modules

    def get(self, name: str) -> T:
        """The implementation registered under ``name`` (its module imported on first use)."""
        if name not in self._items and name in self._modules:
            importlib.import_module(self._modules[name])
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}") from None

    def build(self, name: str, *args: Any, fixed: Iterable[str] = (), **kwargs: Any) -> Any:
        """Call ``name``'s implementation; a keyword it does not take is an error naming it.

        ``fixed``: parameters the caller always passes itself, left out of the "it takes" list.
        """
        item = self.get(name)
        params = inspect.signature(item).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            allowed = sorted(set(params) - set(fixed))
            extra = sorted(set(kwargs) - set(params))
            if extra:
                raise self.error(f"{self.kwargs_key.format(name=name)}: {name} does not take {extra}; "
                                 f"it takes {allowed}")
        return item(*args, **kwargs)

    def check_kwargs(self, name: str, kwargs: Mapping[str, Any], fixed: Iterable[str] = ()) -> None:
        """Check ``kwargs`` against ``name``'s signature (names, types, Annotated bounds) without building.

        Raises ``self.error`` with one line per bad argument, each naming its params key
        (``distill.student.kwargs.dim: ...``), so params are refused on load, not deep in a stage.
        """
        from pydantic import ConfigDict, ValidationError, create_model

        from pipeline.config.base import Section

        item = self.get(name)
        params = inspect.signature(item, eval_str=True).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        skip = set(fixed)
        fields = {p.name: (Any if p.annotation is inspect.Parameter.empty else p.annotation,
                           ... if p.default is inspect.Parameter.empty else p.default)
                  for p in params.values() if p.name not in skip
                  and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        extra = sorted(set(kwargs) - set(fields))
        if extra:
            raise self.error(f"{self.kwargs_key.format(name=name)}: {name} does not take {extra}; "
                             f"it takes {sorted(fields)}")
        model = create_model(f"{name}-arguments", __base__=Section, **fields)
        model.model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
        try:
            model(**dict(kwargs))
        except ValidationError as exc:
            prefix = self.kwargs_key.format(name=name)
            lines = []
            for err in exc.errors():
                if err["type"] == "missing":
                    continue  # required arguments the caller passes itself
                key = ".".join([prefix, *map(str, err["loc"])])
                msg = str(err["msg"]).removeprefix("Value error, ")
                lines.append(f"{key}: {msg}" + ("" if "got " in msg else f" (got {err.get('input')!r})"))
            if lines:
                raise self.error("\n".join(lines)) from None

    def check(self, name: str) -> str:
        """``name`` if known, else ValueError listing the known names (for config validators)."""
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}")
        return name
