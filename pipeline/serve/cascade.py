"""The serving cascade: the student answers every request; the teacher takes the texts it is unsure of.

A text whose calibrated top probability is below the cut (``serve.cascade.threshold``, else the cut
the evaluate stage fitted and stored in the bundle) is deferred to the teacher, through the label cache
so a text the teacher already answered costs nothing. The teacher runs on a small thread pool, never on
the event loop, and every way it can let a request down ends in the student's own answer, marked with
why:

- ``busy``: ``max_concurrency`` teacher calls are already in flight (no queueing behind a slow teacher);
- ``budget``: the texts-per-minute budget is spent (a token bucket, refilled continuously);
- ``breaker_open``: the circuit breaker is open after ``breaker_failures`` consecutive failures; after
  ``breaker_reset_s`` one trial call is let through (half-open) and its success closes it again;
- ``timeout``: no answer within ``timeout_s`` (the call finishes in the background and its answer
  still lands in the cache);
- ``error``: the teacher raised or answered something that is not probabilities.

So serving never fails because of the teacher. docs/serving.md, Cascade, describes the params.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.keys import text_key

log = logging.getLogger("distill.serve.cascade")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
BREAKER_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}
OUTCOMES = ("teacher", "busy", "budget", "breaker_open", "timeout", "error")


class BudgetSpent(Exception):
    """The texts-per-minute budget has no room for the texts the cache lacks."""


class Breaker:
    """A circuit breaker: closed -> open after N consecutive failures -> half-open after a pause -> closed.

    Only the event loop calls it, so it needs no lock. ``allow()`` lets every call through when closed,
    none while open, and exactly one trial once the pause is over.
    """

    def __init__(self, failures: int, reset_s: float, clock=time.monotonic, on_change=None):
        self.limit = failures
        self.reset_s = reset_s
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trial_out = False
        self.on_change = on_change or (lambda state: None)

    def _set(self, state: str) -> None:
        if state != self.state:
            log.warning("cascade breaker %s -> %s", self.state, state)
            self.state = state
            self.on_change(state)

    def allow(self) -> bool:
        if self.state == OPEN and self.clock() - self.opened_at >= self.reset_s:
            self._set(HALF_OPEN)
            self.trial_out = False
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self.trial_out:
            self.trial_out = True
            return True
        return False

    def unused_trial(self) -> None:
        """A trial allowed in half-open state never reached the teacher: let the next request try."""
        self.trial_out = False

    def success(self) -> None:
        self.failures = 0
        self.trial_out = False
        self._set(CLOSED)

    def failure(self) -> None:
        self.failures += 1
        self.trial_out = False
        if self.state == HALF_OPEN or self.failures >= self.limit:
            self.opened_at = self.clock()
            self._set(OPEN)


class TokenBucket:
    """``per_minute`` texts a minute, refilled continuously; thread-safe."""

    def __init__(self, per_minute: float, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = float(per_minute)
        self.clock = clock
        self.at = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if n > self.tokens:
                return False
            self.tokens -= n
            return True


@dataclass(frozen=True)
class Deferral:
    """What the teacher said about the deferred texts: probabilities in the student's label order, or why not."""

    outcome: str  # one of OUTCOMES
    probs: np.ndarray | None = None  # [n, k] when outcome == "teacher"
    sent: int = 0  # texts that reached the teacher (the rest came from the cache)


class Cascade:
    """The teacher behind the student, with its limits. Built once per server; ``close()`` on shutdown."""

    def __init__(self, cfg, teacher, cache_dir: str, metrics=None, clock=time.monotonic, share: float = 1.0):
        self.cfg = cfg
        self.teacher = teacher
        self.fingerprint = teacher.fingerprint
        self.cache_dir = cache_dir
        self.metrics = metrics
        self.breaker = Breaker(cfg.breaker_failures, cfg.breaker_reset_s, clock, self._breaker_changed)
        self.budget = TokenBucket(cfg.texts_per_minute * share, clock)  # share: this worker's part of it
        self.slots = threading.BoundedSemaphore(cfg.max_concurrency)
        self.pool = ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="cascade-teacher")
        self._local = threading.local()
        self._columns: dict[tuple[str, ...], np.ndarray] = {}
        self._breaker_changed(CLOSED)

    # -- the answer for one request ---------------------------------------------------------------
    def threshold_for(self, bundle) -> float | None:
        """The cut for this model: ``serve.cascade.threshold``, else the bundle's fitted one (None: never defer)."""
        if self.cfg.threshold is not None:
            return float(self.cfg.threshold)
        fitted = (bundle.manifest.get("cascade") or {}).get("threshold")
        return None if fitted is None else float(fitted)

    async def ask(self, texts: Sequence[str], labels: Sequence[str]) -> Deferral:
        """The teacher's probabilities for ``texts`` in the order of ``labels``, or the reason there are none."""
        if not self.breaker.allow():
            return self._done(Deferral("breaker_open"), len(texts))
        if not self.slots.acquire(blocking=False):
            self.breaker.unused_trial()
            return self._done(Deferral("busy"), len(texts))
        started = time.perf_counter()
        future = self.pool.submit(self._label, list(texts))
        future.add_done_callback(lambda _f: self.slots.release())
        try:
            probs, sent = await asyncio.wait_for(asyncio.wrap_future(future), self.cfg.timeout_s)
        except asyncio.TimeoutError:
            self.breaker.failure()
            return self._done(Deferral("timeout"), len(texts))
        except BudgetSpent:
            self.breaker.unused_trial()
            return self._done(Deferral("budget"), len(texts))
        except Exception as exc:  # any failure of the teacher is the student's answer, never a 5xx
            self.breaker.failure()
            log.warning("cascade teacher failed on %d texts: %s: %s", len(texts), type(exc).__name__,
                        str(exc)[:300])
            return self._done(Deferral("error"), len(texts))
        self.breaker.success()
        if self.metrics is not None and sent:
            self.metrics.cascade_latency.observe(time.perf_counter() - started)
            self.metrics.cascade_sent.inc(sent)
        return self._done(Deferral("teacher", self._in_order(probs, labels), sent), len(texts))

    def _done(self, deferral: Deferral, n: int) -> Deferral:
        if self.metrics is not None:
            self.metrics.cascade_deferrals[deferral.outcome].inc(n)
        return deferral

    # -- the teacher's side, on a pool thread ------------------------------------------------------
    def _cache(self):
        from pipeline.label.cache import LabelCache

        cache = getattr(self._local, "cache", None)
        if cache is None:  # one SQLite connection per pool thread
            cache = self._local.cache = LabelCache(self.cache_dir)
        return cache

    def _label(self, texts: list[str]) -> tuple[np.ndarray, int]:
        from pipeline.teachers.base import check_probabilities

        keys = [text_key(t) for t in texts]
        cache = self._cache()
        have = cache.get_many(self.fingerprint, keys)
        missing = list({k: t for k, t in zip(keys, texts) if k not in have}.items())
        if missing:
            if not self.budget.take(len(missing)):
                raise BudgetSpent(f"{len(missing)} texts over serve.cascade.texts_per_minute")
            answer = self.teacher.predict_proba([t for _, t in missing])
            probs = check_probabilities(answer, len(missing), len(self.teacher.labels))
            got = {k: probs[i] for i, (k, _) in enumerate(missing)}
            cache.put_many(self.fingerprint, got)
            have.update(got)
        return np.stack([have[k] for k in keys]), len(missing)

    def _in_order(self, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Teacher columns reordered to the student's labels (a student may list them in another order)."""
        key = tuple(labels)
        cols = self._columns.get(key)
        if cols is None:
            index = {name: i for i, name in enumerate(self.teacher.labels)}
            missing = [name for name in labels if name not in index]
            if missing:
                raise ValueError(f"the cascade teacher has no label(s) {missing[:5]} of the student")
            cols = self._columns[key] = np.array([index[name] for name in labels])
        out = probs[:, cols].astype(np.float32)
        return out / np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)

    def _breaker_changed(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.cascade_breaker.set(BREAKER_CODES[state])

    def describe(self) -> dict[str, Any]:
        return {"enabled": True, "teacher": self.fingerprint, "breaker": self.breaker.state,
                "threshold_override": self.cfg.threshold, "max_concurrency": self.cfg.max_concurrency,
                "timeout_s": self.cfg.timeout_s, "texts_per_minute": self.cfg.texts_per_minute}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def build_cascade(params, metrics=None, share: float = 1.0) -> tuple[Cascade | None, str | None]:
    """The cascade of ``params.serve.cascade`` and None, or (None, why not). The teacher is built here, once.

    ``share``: this process's part of ``texts_per_minute`` (1 / serve.workers), so the workers together
    spend the server's budget, not a budget each.

    A teacher that cannot be built (its fitted state missing, a bad setting) leaves the server serving
    the student alone: the reason is logged, printed at start-up and shown by ``GET /v1/models``.
    """
    cfg = params.serve.cascade
    if not cfg.enabled:
        return None, None
    from pipeline.teachers import load_teacher

    try:
        teacher = load_teacher(cfg.teacher or params.teacher, cfg.teacher_dir)
    except Exception as exc:  # serving never fails because of the teacher
        why = f"the cascade teacher could not be built from {cfg.teacher_dir}: {type(exc).__name__}: {exc}"
        log.error("%s; serving the student alone", why)
        return None, why
    cascade = Cascade(cfg, teacher, cfg.cache_dir or params.label.cache_dir, metrics, share=share)
    log.info("cascade on: teacher %s (%d labels), cut %s", teacher.fingerprint, len(teacher.labels),
             cfg.threshold if cfg.threshold is not None else "from each bundle")
    return cascade, None
