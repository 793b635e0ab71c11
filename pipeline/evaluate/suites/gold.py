"""Gold test set and teacher agreement: the headline numbers.

``gold``: accuracy, macro-F1 and the lowest per-class recall on ``split == "test"`` rows with a gold label.
``agreement``: share of held-out transfer rows (never trained on) where a model picks the teacher's class.
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, classification_metrics, suite

log = logging.getLogger("distill.evaluate")


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
    # A class with no gold test row cannot be judged: say so with its count, never drop it silently.
    counts = np.bincount(targets, minlength=k)
    untested = {d.labels[c]: int(counts[c]) for c in range(k) if counts[c] < cfg.min_class_rows}
    if untested:
        result.details["classes_too_small"] = untested
        log.warning("gold: %d class(es) with fewer than %d test rows are not judged per class: %s", len(untested),
                    cfg.min_class_rows, ", ".join(f"{c} ({n})" for c, n in list(untested.items())[:10]))
    if TEACHER in ctx.models:
        _per_class_vs_teacher(ctx, texts, result)
    result.rules += [Rule("gold", "accuracy", ">=", cfg.min_accuracy), Rule("gold", "macro_f1", ">=", cfg.min_macro_f1),
                     Rule("gold", "min_class_recall", ">=", cfg.min_class_recall)]
    if cfg.class_agreement_tolerance is not None:
        result.rules.append(Rule("gold", "min_class_agreement", ">=", 1.0 - cfg.class_agreement_tolerance))
    return result


def _per_class_vs_teacher(ctx: EvalContext, texts: list[str], result: SuiteResult) -> None:
    """Per class of the teacher's answers: the share where each model answers the same (its recall with the
    teacher's labels as the target), the minimum as ``min_class_agreement``, the worst classes named."""
    d, cfg = ctx.data, ctx.cfg.gold
    k = len(d.labels)
    teacher = np.argmax(ctx.predict(TEACHER, texts), axis=1)
    counts = np.bincount(teacher, minlength=k)
    judged = counts >= cfg.min_class_rows
    by_model, worst = {}, {}
    for name in ctx.models:
        if name == TEACHER:
            continue
        recall = m.per_class_recall(ctx.predict(name, texts), teacher, k)
        values = np.where(judged, recall, np.nan)
        by_model[name] = {d.labels[c]: round(float(recall[c]), 4) for c in range(k) if counts[c]}
        if np.isfinite(values).any():
            result.metrics["gold"][name]["min_class_agreement"] = float(np.nanmin(values))
            order = [c for c in np.argsort(np.nan_to_num(values, nan=2.0)) if np.isfinite(values[c])][:5]
            worst[name] = [{"class": d.labels[c], "agreement": round(float(values[c]), 4), "rows": int(counts[c])}
                           for c in order]
    result.details["per_class_teacher_agreement"] = by_model
    result.details["worst_classes"] = worst


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
