"""Ask the teacher for the texts the cache lacks: batches, retries, splitting, one commit per batch.

:func:`cached_teacher_probs` is the one way every part of distill asks the teacher (label stage, the
gate's oracle, the monitor's teacher sample, the canary): cache first, then only the missing texts,
within an optional budget, each answer committed to the cache as it arrives.

A batch whose answer is malformed (wrong shape, NaN, rows not summing to 1) or that raises a
TeacherError is retried ``retries`` times; if it still fails, it is split in halves and each half is
tried the same way, so one bad text does not sink its neighbours. A single text that keeps failing is
recorded with its reason and never written to the cache.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.keys import text_key
from pipeline.label.cache import LabelCache
from pipeline.teachers.base import Teacher, TeacherError, check_probabilities

log = logging.getLogger("distill.label")


@dataclass
class CallStats:
    """What asking the teacher cost: calls, texts sent, labeled texts, failures by reason."""

    calls: int = 0
    texts_sent: int = 0
    labeled: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # text key -> reason
    usage: dict[str, float] = field(default_factory=dict)  # growth of the teacher's ``usage`` counters

    def merge(self, other: "CallStats") -> None:
        self.calls += other.calls
        self.texts_sent += other.texts_sent
        self.labeled += other.labeled
        self.failed.update(other.failed)
        for key, value in other.usage.items():
            self.usage[key] = self.usage.get(key, 0.0) + value

    def reasons(self) -> dict[str, int]:
        return dict(Counter(self.failed.values()))


def _ask_partial(teacher: Teacher, piece: Sequence[tuple[str, str]], stats: CallStats) -> dict[str, np.ndarray]:
    """Teachers whose texts fail one by one (``predict_proba_partial``) retry inside; record what failed."""
    texts = [text for _, text in piece]
    stats.calls += 1
    stats.texts_sent += len(texts)
    probs, failures = teacher.predict_proba_partial(texts)  # type: ignore[attr-defined]
    out: dict[str, np.ndarray] = {}
    for i, (key, _) in enumerate(piece):
        if i in failures:
            # "malformed answer: the response has no choices (...)" -> counted as "malformed answer"
            stats.failed[key] = str(failures[i]).split(":", 1)[0]
            continue
        try:
            out[key] = check_probabilities(np.asarray(probs)[i:i + 1], 1, len(teacher.labels))[0]
        except TeacherError as exc:
            stats.failed[key] = getattr(exc, "reason", "teacher_error")
    return out


def _ask(teacher: Teacher, piece: Sequence[tuple[str, str]], retries: int, stats: CallStats) -> dict[str, np.ndarray]:
    """Label ``piece`` ((key, text) pairs); on repeated failure split it; failed keys go to ``stats.failed``."""
    if hasattr(teacher, "predict_proba_partial"):
        return _ask_partial(teacher, piece, stats)
    texts = [text for _, text in piece]
    last: TeacherError | None = None
    for attempt in range(retries + 1):
        stats.calls += 1
        stats.texts_sent += len(texts)
        try:
            probs = check_probabilities(teacher.predict_proba(texts), len(texts), len(teacher.labels))
            return {key: probs[i] for i, (key, _) in enumerate(piece)}
        except TeacherError as exc:
            last = exc
            log.debug("teacher answer for %d texts rejected (attempt %d): %s", len(texts), attempt + 1, exc)
    if len(piece) == 1:
        stats.failed[piece[0][0]] = getattr(last, "reason", "teacher_error")
        log.warning("text %s… failed after %d attempts: %s", piece[0][0][:12], retries + 1, last)
        return {}
    mid = len(piece) // 2
    out = _ask(teacher, piece[:mid], retries, stats)
    out.update(_ask(teacher, piece[mid:], retries, stats))
    return out


def label_missing(teacher: Teacher, items: Sequence[tuple[str, str]], cache: LabelCache, batch_size: int,
                  retries: int, on_batch: Callable[[int], None] | None = None) -> CallStats:
    """Label ``items`` ((key, text) pairs not in the cache) batch by batch, committing each batch."""
    stats = CallStats()
    fingerprint = teacher.fingerprint
    before = usage_of(teacher)
    for start in range(0, len(items), batch_size):
        piece = items[start:start + batch_size]
        calls, sent, used = stats.calls, stats.texts_sent, usage_of(teacher)
        got = _ask(teacher, piece, retries, stats)
        now = usage_of(teacher)
        # the batch's answers and its cost commit together: a kill never loses the record of what was paid
        cache.put_many(fingerprint, got, {"calls": stats.calls - calls, "texts_sent": stats.texts_sent - sent,
                                          "usage": {k: now[k] - used.get(k, 0.0) for k in now}})
        stats.labeled += len(got)
        if on_batch is not None:
            on_batch(len(piece))
    after = usage_of(teacher)
    stats.usage = {key: after[key] - before.get(key, 0.0) for key in after}
    return stats


def usage_of(teacher: Teacher) -> dict[str, float]:
    """Numeric counters of a teacher's ``usage`` dict (tokens, cost), when it has one."""
    usage = getattr(teacher, "usage", None)
    if not isinstance(usage, dict):
        return {}
    return {k: float(v) for k, v in usage.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class CachedAnswers:
    """The teacher's probabilities for a set of texts, and what getting them cost."""

    probs: dict[str, np.ndarray]  # text key -> probabilities, for every text the cache now holds
    cached: int  # distinct texts the cache already held (free)
    sent: int  # distinct texts sent to the teacher
    skipped_for_budget: int  # distinct texts neither cached nor sent, because of ``budget``
    stats: CallStats  # calls, failures by reason, usage of what was sent


def cached_teacher_probs(teacher: Teacher, texts, cache: LabelCache | str, *, budget: int | None = None,
                         batch_size: int = 32, retries: int = 2,
                         send: Callable[[list[tuple[str, str]], LabelCache], CallStats] | None = None) -> CachedAnswers:
    """Teacher probabilities of ``texts`` through the label cache (a LabelCache or its directory).

    Cached answers (same teacher fingerprint) are free; of the rest, at most ``budget`` distinct texts
    (all when None) are sent, in text-key order, so a budgeted sample is stable and unbiased. ``send``
    replaces the local batched calls (:func:`label_missing`), e.g. to label on Dask with progress.
    """
    unique = {text_key(t): t for t in texts}
    own = not isinstance(cache, LabelCache)
    store = LabelCache(cache) if own else cache
    try:
        fingerprint = teacher.fingerprint
        have = store.get_many(fingerprint, unique)
        missing = sorted((k, t) for k, t in unique.items() if k not in have)
        chosen = missing if budget is None else missing[:max(int(budget), 0)]
        if chosen:
            with store.recording() as written:
                stats = (send or (lambda items, c: label_missing(teacher, items, c, batch_size, retries)))(chosen, store)
            # what this process committed is known; read back only the rest (other processes, e.g. Dask workers)
            rest = [key for key, _ in chosen if key not in written]
            found = {**have, **written, **(store.get_many(fingerprint, rest) if rest else {})}
        else:
            stats, found = CallStats(), have
    finally:
        if own:
            store.close()
    return CachedAnswers(found, len(have), len(chosen), len(missing) - len(chosen), stats)
