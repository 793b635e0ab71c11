"""A background thread that keeps the server on the registry's aliases without a restart.

Every ``serve.poll_interval_s`` it reads ``Registry.state_token()`` (one primary-key read); only when the
token changed does it read the aliases and load what is new (:meth:`ModelSlots.sync`). Poll failures (a
database restart) are logged and counted; the server keeps serving what it has.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("distill.serve.follower")


class RegistryFollower:
    def __init__(self, open_registry, slots, interval_s: float, metrics=None):
        self._open = open_registry
        self.slots = slots
        self.interval_s = interval_s
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry = None

    def sync_now(self) -> None:
        """One synchronous sync (at start-up, so the server is ready as soon as it listens)."""
        try:
            if self._registry is None:
                self._registry = self._open()
            self.slots.sync(self._registry)
        except Exception as exc:
            log.error("registry sync failed: %s", exc)
            if self.metrics is not None:
                self.metrics.registry_poll_errors.inc()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="registry-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self._registry is None:
                    self._registry = self._open()
                if self._registry.state_token() != self.slots.state.token:
                    self.slots.sync(self._registry)
            except Exception as exc:
                log.error("registry poll failed: %s", exc)
                if self.metrics is not None:
                    self.metrics.registry_poll_errors.inc()
