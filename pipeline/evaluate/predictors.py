"""The one interface every scored model meets, and adapters that give it to the real models.

A predictor has ``labels`` (class names in column order) and ``predict_proba(texts) -> [n, k]``. The
teacher, the student bundle's fp32 and int8 variants and a champion bundle all become predictors, so
every suite scores them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.errors import DistillError
from pipeline.keys import text_key

log = logging.getLogger("distill.evaluate")


@runtime_checkable
class Predictor(Protocol):
    labels: list[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class LabelMismatch(DistillError):
    """Two models to be compared do not share the same label names and order."""


class BundleVariant:
    """One variant (``fp32`` or ``int8``) of a student bundle, as a predictor."""

    def __init__(self, bundle, variant: str):
        self.bundle = bundle
        self.variant = variant
        self.labels = list(bundle.labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.bundle.predict_proba(list(texts), variant=self.variant), dtype=np.float64)

    def ood_score(self, texts: Sequence[str]) -> np.ndarray:
        """In-domain score of each text (``pipeline.bundle.in_domain_score``; higher: more in-domain)."""
        from pipeline.bundle import in_domain_score

        if not len(texts):
            return np.zeros(0)
        return in_domain_score(self.bundle.logits(list(texts), variant=self.variant))


class TeacherOracle:
    """The teacher's answers: stored soft labels first, then the label cache, then the teacher itself.

    Texts already labeled by the label stage come from ``known`` (text key -> probs) and cost nothing.
    Generated texts (perturbations, OOD, suite cases) are looked up in the label stage's cache keyed by
    (teacher fingerprint, text hash) and only the missing ones are sent to the teacher, then stored, so
    a re-run of the gate costs no teacher calls.
    """

    def __init__(self, teacher, known: Mapping[str, np.ndarray] | None = None, cache_dir: str | None = None):
        self.teacher = teacher
        self.labels = list(teacher.labels)
        self.known = dict(known or {})
        self.cache_dir = cache_dir
        self.calls = 0  # texts sent to the teacher by this oracle
        self.cache_hits = 0

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {k: self.known[k] for k in keys if k in self.known}
        wanted = {k: t for k, t in zip(keys, texts) if k not in found}
        if wanted:
            found.update(self._ask(wanted))
        return np.stack([np.asarray(found[k], dtype=np.float64) for k in keys]) if keys else \
            np.zeros((0, len(self.labels)))

    def _ask(self, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        if self.cache_dir is None:
            self.calls += len(wanted)
            probs = np.asarray(self.teacher.predict_proba(list(wanted.values())), dtype=np.float64)
            return dict(zip(wanted, probs))
        from pipeline.label.calls import cached_teacher_probs

        answers = cached_teacher_probs(self.teacher, wanted.values(), self.cache_dir)
        self.cache_hits += answers.cached
        self.calls += answers.sent
        lost = [t for k, t in wanted.items() if k not in answers.probs]
        if lost:
            raise DistillError(f"the teacher gave no answer for {len(lost)} generated text(s), e.g. {lost[0][:80]!r}")
        return answers.probs


def check_same_labels(models: Mapping[str, Predictor]) -> list[str]:
    """The shared label order of all models, or LabelMismatch naming the odd one out."""
    items = list(models.items())
    name0, first = items[0]
    for name, model in items[1:]:
        if list(model.labels) != list(first.labels):
            raise LabelMismatch(f"{name} labels {list(model.labels)} differ from {name0} labels {list(first.labels)}")
    return list(first.labels)
