"""The periodic teacher comparison: the teacher labels a sample of the window, through the label cache.

Texts already in the cache (same teacher fingerprint) are free and always used; of the rest, at most
``budget`` are sent to the teacher, chosen by text hash (a stable, unbiased order). Each text is paid
for once: the next run, the label stage and the feedback loop all read the same cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.keys import text_key
from pipeline.label.cache import LabelCache
from pipeline.label.calls import label_missing


@dataclass
class TeacherSample:
    labels: dict[str, str]  # text key -> teacher label
    cached: int = 0
    sent: int = 0
    calls: int = 0
    failed: int = 0
    skipped_for_budget: int = 0
    fingerprint: str = ""
    reasons: dict[str, int] = field(default_factory=dict)


def teacher_labels(texts, teacher, cache_dir: str, budget: int, batch_size: int = 32, retries: int = 2) -> TeacherSample:
    """Teacher labels for as many distinct ``texts`` as the cache and the budget allow."""
    unique = {text_key(t): t for t in texts}
    fingerprint = teacher.fingerprint
    with LabelCache(cache_dir) as cache:
        cached = cache.get_many(fingerprint, unique)
        missing = sorted((k, t) for k, t in unique.items() if k not in cached)
        chosen = missing[:budget]
        stats = label_missing(teacher, chosen, cache, batch_size, retries) if chosen else None
        found = cache.get_many(fingerprint, unique)
    names = list(teacher.labels)
    return TeacherSample(
        labels={k: names[int(np.argmax(p))] for k, p in found.items()},
        cached=len(cached), sent=len(chosen), calls=stats.calls if stats else 0,
        failed=len(stats.failed) if stats else 0, skipped_for_budget=len(missing) - len(chosen),
        fingerprint=fingerprint, reasons=stats.reasons() if stats else {})
