"""A name -> implementation table filled by a decorator.

The registries that params.yaml picks from by name (augmentation ops, evaluation suites,
perturbations, ingest readers) are all one of these, so an unknown name fails the same way everywhere:
with the error type of the caller and the list of known names.

    READERS = Registry("ingest.source.kind", DataError)

    @READERS.register("csv")
    def read_csv(cfg, seed): ...

    READERS.get("csv")(cfg, seed)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from pipeline.errors import DistillError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, error: type[Exception] = DistillError) -> None:
        self.what = what
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated function available under ``name``."""

        def wrap(item: T) -> T:
            self._items[name] = item
            return item

        return wrap

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items
