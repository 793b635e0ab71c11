"""The periodic teacher comparison: the teacher labels a sample of the window, through the label cache.

Texts already in the cache (same teacher fingerprint) are free and always used; of the rest, at most
``budget`` are sent to the teacher, chosen by text hash (a stable, unbiased order). Each text is paid
for once: the next run, the label stage and the feedback loop all read the same cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.label.calls import cached_teacher_probs


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
    answers = cached_teacher_probs(teacher, texts, cache_dir, budget=budget, batch_size=batch_size, retries=retries)
    names = list(teacher.labels)
    stats = answers.stats
    return TeacherSample(
        labels={k: names[int(np.argmax(p))] for k, p in answers.probs.items()},
        cached=answers.cached, sent=answers.sent, calls=stats.calls, failed=len(stats.failed),
        skipped_for_budget=answers.skipped_for_budget, fingerprint=teacher.fingerprint, reasons=stats.reasons())
