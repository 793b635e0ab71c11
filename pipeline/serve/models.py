"""Loaded models and the atomic swap between them.

:class:`ServingState` is an immutable snapshot (stable model, canary model, canary weight). A request
reads ``slots.state`` once and uses that snapshot to the end, and a reload builds a whole new snapshot
and assigns it in one statement, so no request ever sees half a swap. :func:`load_model` only returns a
model that loaded from a verified bundle and answered a smoke prediction with sane probabilities; a
model that fails either never enters a snapshot, and the error is kept for ``GET /v1/models``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


log = logging.getLogger("distill.serve.models")


class ModelLoadError(Exception):
    """A registry version could not become a serving model (missing, corrupt, or failed the smoke test)."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    digest: str
    bundle: Any  # pipeline.bundle.Bundle
    loaded_at: float

    def describe(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest, "labels": len(self.bundle.labels),
                "loaded_at": self.loaded_at}


@dataclass(frozen=True)
class ServingState:
    stable: LoadedModel | None = None
    canary: LoadedModel | None = None
    weight: float = 0.0
    token: int | None = None


def load_model(path: str | Path, version: str, threads: int, smoke_text: str,
               registered_digest: str | None = None) -> LoadedModel:
    """Load a bundle, verified, build its int8 session and run one smoke prediction.

    With ``registered_digest`` (the registry's content address of the version) the folder must hash to
    it, and that number is the model's ``digest``: the server and the registry report the same one.
    """
    from pipeline.bundle import load_bundle, smoke_check
    from pipeline.registry.artifacts import bundle_digest

    try:
        digest = bundle_digest(path)
        if registered_digest is not None and digest != registered_digest:
            raise ModelLoadError(f"{version}: files changed since registration: digest {digest[:12]}, registered "
                                 f"{registered_digest[:12]}")
        bundle = load_bundle(path, threads=threads)
        smoke_check(bundle, smoke_text)
    except ModelLoadError:
        raise
    except Exception as exc:  # any failure of someone else's file is a refused model, never a crash
        raise ModelLoadError(f"{version}: {type(exc).__name__}: {exc}") from exc
    return LoadedModel(version=version, digest=digest, bundle=bundle, loaded_at=time.time())


def settle_heap() -> None:
    """Collect, then freeze what is alive (the app, the loaded models and their featurizer tables): the
    cycle collector's full passes stop walking them. Run when the set of loaded models changes. Without
    it, those passes stalled the event loop often enough to hold the batch-1 p99 at 31-56 ms on one core;
    with it, 14-17 ms (docs/scaling.md). Unfreezing first lets a model that was just replaced be collected
    rather than kept frozen."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelSlots:
    """The server's current :class:`ServingState` plus what went wrong with the last loads."""

    def __init__(self, threads: int, smoke_text: str, metrics=None):
        self.threads = threads
        self.smoke_text = smoke_text
        self.metrics = metrics
        self.state = ServingState()
        self.last_load_error: dict[str, Any] | None = None

    def sync(self, registry) -> ServingState:
        """Make the state match the registry's ``production`` and ``canary`` aliases.

        A version already loaded (in either role) is reused, so a promotion from canary to production
        swaps without reloading. A failed load keeps the working stable model; a failed canary means
        no canary traffic until the alias changes again.
        """
        token = registry.state_token()
        aliases = registry.aliases()
        current = self.state
        loaded = {m.version: m for m in (current.stable, current.canary) if m is not None}
        prod = aliases["production"].version
        can = aliases["canary"]
        stable = current.stable
        if prod is not None and (stable is None or stable.version != prod.id):
            stable = self._get(registry, prod.id, "production", loaded) or current.stable
        canary = None
        weight = 0.0
        if can.version is not None and stable is not None:
            canary = self._get(registry, can.version.id, "canary", loaded)
            weight = float(can.weight or 0.0) if canary is not None else 0.0
        if canary is not None and stable is not None and canary.version == stable.version:
            canary, weight = None, 0.0  # a canary of the serving version is no split at all
        self.state = ServingState(stable=stable, canary=canary, weight=weight, token=token)
        self._report(current, self.state)
        changed = set(loaded) != {m.version for m in (stable, canary) if m is not None}
        del current, loaded  # no reference to a replaced model may outlive this point
        if changed:
            settle_heap()  # a model came or went: what is alive now is the long-lived heap
        return self.state

    def _get(self, registry, version: str, alias: str, loaded: dict[str, LoadedModel]) -> LoadedModel | None:
        if version in loaded:
            return loaded[version]
        try:
            model = load_model(registry.artifact_path(version), version, self.threads, self.smoke_text,
                               registry.get_version(version).bundle_digest)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ModelLoadError) else f"{version}: {type(exc).__name__}: {exc}"
            self.last_load_error = {"alias": alias, "version": version, "error": message, "at": time.time()}
            log.error("refused %s model %s", alias, message)
            if self.metrics is not None:
                self.metrics.model_load_failures.labels(alias=alias).inc()
            return None
        log.info("loaded %s model %s (%s)", alias, version, model.digest[:12])
        if self.metrics is not None:
            self.metrics.model_loads.labels(alias=alias).inc()
        return model

    def _report(self, before: ServingState, after: ServingState) -> None:
        m = self.metrics
        if m is None:
            return
        m.canary_weight.set(after.weight)
        for alias, old, new in (("production", before.stable, after.stable), ("canary", before.canary, after.canary)):
            if old is not None and (new is None or new.version != old.version):
                m.model_info.labels(alias=alias, version=old.version).set(0)  # under workers the file keeps it
                m.model_info.remove(alias, old.version)
            if new is not None:
                m.model_info.labels(alias=alias, version=new.version).set(1)
        if (before.canary.version if before.canary else None) != (after.canary.version if after.canary else None):
            m.reset_agreement()
