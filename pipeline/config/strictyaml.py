"""YAML read strictly: a key given twice in one mapping is an error naming its line, never "last one wins".

PyYAML's ``safe_load`` silently keeps the last of two equal keys, so ``epochs: 3`` further down a file
quietly overrides ``epochs: 30`` above it. Every YAML file distill reads as configuration (params files,
user suites) goes through :func:`load`.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """One mapping names the same key twice."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys."""


def _mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let the constructor report it
            continue
        if first is not None:
            raise DuplicateKeyError(None, None, f"key {key!r} appears twice (first on line {first})",
                                    key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    # checked before merge keys (<<) expand: an explicit key may override a merged one
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """Parse YAML text like ``yaml.safe_load``, but a duplicated key raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
