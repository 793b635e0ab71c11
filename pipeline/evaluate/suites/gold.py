"""Gold test set and teacher agreement: the headline numbers.

``gold``: accuracy, macro-F1 and the lowest per-class recall on ``split == "test"`` rows with a gold label.
``agreement``: share of held-out transfer rows (never trained on) where a model picks the teacher's class.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, classification_metrics, suite


@suite("gold")
def gold(ctx: EvalContext) -> SuiteResult:
    d, cfg = ctx.data, ctx.cfg.gold
    rows = np.flatnonzero(d.test_targets >= 0)
    texts = [d.test_texts[i] for i in rows]
    targets = d.test_targets[rows]
    result = SuiteResult()
    if not len(rows):
        result.details["gold"] = "no test rows with a gold label"
        return result
    k = len(d.labels)
    result.metrics["gold"] = {name: classification_metrics(ctx.predict(name, texts), targets, k) for name in ctx.models}
    # Per-class recall of each model, for the report (the gate uses the minimum).
    result.details["per_class_recall"] = {
        name: dict(zip(d.labels, np.round(m.per_class_recall(ctx.predict(name, texts), targets, k), 4).tolist()))
        for name in ctx.models}
    result.rules += [Rule("gold", "accuracy", ">=", cfg.min_accuracy), Rule("gold", "macro_f1", ">=", cfg.min_macro_f1),
                     Rule("gold", "min_class_recall", ">=", cfg.min_class_recall)]
    return result


@suite("agreement")
def agreement(ctx: EvalContext) -> SuiteResult:
    d = ctx.data
    result = SuiteResult()
    if not d.heldout_texts or d.heldout_teacher is None:
        result.details["agreement"] = "no held-out transfer rows"
        return result
    n = min(len(d.heldout_texts), ctx.cfg.agreement.max_rows)
    texts, teacher = d.heldout_texts[:n], d.heldout_teacher[:n]
    result.metrics["agreement"] = {
        name: {"agreement": m.agreement(teacher if name == TEACHER else ctx.predict(name, texts), teacher), "n": float(n)}
        for name in ctx.models}
    result.rules.append(Rule("agreement", "agreement", ">=", ctx.cfg.agreement.min_agreement))
    return result
