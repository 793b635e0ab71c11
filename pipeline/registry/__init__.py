"""Model registry: versions with lineage, aliases (candidate, canary, production), append-only history.

    from pipeline.registry import open_registry
    reg = open_registry(params.registry)
    v = reg.register("models/bundle", "reports/gate.json", metrics, params, actor="retrain-flow", reason="nightly")
    reg.promote(v.id, "canary", actor="canary-flow", reason="gate passed", weight=0.05)

Command line: ``distill registry list|show|promote|rollback|history`` (pipeline/registry/cli.py).
Names are imported lazily so ``distill --help`` does not pay for SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline.registry.errors import (ArtifactMissing, BundleError, NothingToRollBack, RegistryError,
                                      RejectedVersion, SchemaMismatch, UnknownAlias, UnknownVersion)

if TYPE_CHECKING:
    from pipeline.registry.schema import ALIASES
    from pipeline.registry.store import (AliasState, HistoryEntry, Registry, Version, open_registry,
                                         parse_version_id, resolve_url)

_LAZY = {
    "ALIASES": "pipeline.registry.schema",
    "AliasState": "pipeline.registry.store",
    "HistoryEntry": "pipeline.registry.store",
    "Registry": "pipeline.registry.store",
    "Version": "pipeline.registry.store",
    "open_registry": "pipeline.registry.store",
    "parse_version_id": "pipeline.registry.store",
    "resolve_url": "pipeline.registry.store",
}

__all__ = ["ALIASES", "AliasState", "ArtifactMissing", "BundleError", "HistoryEntry", "NothingToRollBack",
           "Registry", "RegistryError", "RejectedVersion", "SchemaMismatch", "UnknownAlias", "UnknownVersion",
           "Version", "open_registry", "parse_version_id", "resolve_url"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline.registry' has no attribute {name!r}")
