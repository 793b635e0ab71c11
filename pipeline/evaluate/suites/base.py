"""What a suite receives (the data and the models) and returns (metrics and the rules to judge them).

Suites measure; they never decide. A suite returns metrics keyed ``suite -> model -> metric`` plus
:class:`Rule` objects built from params.yaml thresholds; :mod:`pipeline.evaluate.gate` turns rules and
metrics into pass/fail checks. Suites register by name with :func:`suite`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.evaluate import EvaluateConfig
from pipeline.errors import DistillError
from pipeline.evaluate.predictors import Predictor
from pipeline.plugins import Plugins

log = logging.getLogger("distill.evaluate")

TEACHER = "teacher"
SELF = "self"  # Rule.against: the judged model's own value
Metrics = dict[str, dict[str, dict[str, float]]]  # suite -> model -> metric -> value


@dataclass(frozen=True)
class Rule:
    """``metric`` of ``suite`` must be ``comparison`` (>= or <=) ``threshold`` for each gated model.

    With ``vs_teacher`` set, ``threshold`` is a tolerance instead: the model must reach a reference value
    on the same texts minus it (``>=``) or plus it (``<=``), so a suite is judged by what the teacher
    itself achieves there rather than by an absolute floor. The reference is the teacher's
    ``against_metric`` (default: the same metric); with ``against=SELF`` it is the judged model's own
    ``against_metric`` (e.g. its agreement on the unperturbed texts).
    """

    suite: str
    metric: str
    comparison: str
    threshold: float
    models: tuple[str, ...] | None = None  # None: the gated models (evaluate.gate_models)
    vs_teacher: bool = False
    against: str = TEACHER  # whose value is the reference: TEACHER, or SELF
    against_metric: str | None = None  # the reference's metric (None: ``metric``)


@dataclass
class EvalData:
    """The evaluation data, already split. Targets are class indices; -1 where the gold label is unknown."""

    labels: list[str]
    test_texts: list[str]
    test_targets: np.ndarray
    test_groups: list[str | None] | None = None
    # Held-out transfer rows (the student's validation slice) with the teacher's stored probabilities.
    heldout_texts: list[str] = field(default_factory=list)
    heldout_teacher: np.ndarray | None = None


@dataclass
class SuiteResult:
    metrics: Metrics = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # for the report: slice sizes, failing cases


@dataclass
class EvalContext:
    data: EvalData
    models: dict[str, Predictor]
    cfg: EvaluateConfig
    root: Path = Path(".")
    bundle_files: dict[str, Path] = field(default_factory=dict)  # model name -> its model file (budgets)
    _memo: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    def predict(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """``predict_proba`` of a model, memoized per (model, texts) so suites can share answers."""
        digest = hashlib.sha256("\x1e".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
        key = (model, digest)
        if key not in self._memo:
            probs = np.asarray(self.models[model].predict_proba(list(texts)), dtype=np.float64)
            if probs.shape != (len(texts), len(self.data.labels)):
                raise DistillError(f"{model} answered shape {probs.shape} for {len(texts)} texts and "
                                   f"{len(self.data.labels)} labels")
            self._memo[key] = probs
        return self._memo[key]


SuiteFn = Callable[[EvalContext], SuiteResult]
# Suites by the name params.yaml ``evaluate.suites`` uses.
SUITES: Plugins[SuiteFn] = Plugins("evaluate.suites entry")
suite = SUITES.register
registered = SUITES.names
get = SUITES.get


def classification_metrics(probs: np.ndarray, targets: np.ndarray, k: int) -> dict[str, float]:
    from pipeline.evaluate import metrics as m

    recall = m.per_class_recall(probs, targets, k)
    return {"accuracy": m.accuracy(probs, targets), "macro_f1": m.macro_f1(probs, targets, k),
            "min_class_recall": float(np.nanmin(recall)) if np.isfinite(recall).any() else float("nan"),
            "n": float(len(targets))}
