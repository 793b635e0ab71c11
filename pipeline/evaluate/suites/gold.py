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
    counts = np.bincount(targets, minlength=k)
    judged = counts >= cfg.min_class_rows
    recalls = {name: m.per_class_recall(ctx.predict(name, texts), targets, k) for name in ctx.models}
    right = {name: m.correct(ctx.predict(name, texts), targets) for name in ctx.models}
    result.metrics["gold"] = {}
    for name in ctx.models:
        entry = classification_metrics(ctx.predict(name, texts), targets, k)
        judged_recall = np.where(judged, recalls[name], np.nan)
        entry["min_class_recall"] = float(np.nanmin(judged_recall)) if np.isfinite(judged_recall).any() else float("nan")
        if cfg.confidence is not None:
            entry["accuracy_upper"] = m.wilson_upper(entry["accuracy"], len(rows), cfg.confidence)
            if TEACHER in ctx.models and name != TEACHER:
                entry["accuracy_paired_upper"] = m.paired_accuracy_upper(right[name], right[TEACHER], cfg.confidence)
        result.metrics["gold"][name] = entry
    # Per-class recall of each model, for the report.
    result.details["per_class_recall"] = {name: dict(zip(d.labels, np.round(r, 4).tolist())) for name, r in recalls.items()}
    # A class with too few gold test rows cannot be judged: say so with its count, never drop it silently.
    untested = {d.labels[c]: int(counts[c]) for c in range(k) if not judged[c]}
    if untested:
        result.details["classes_too_small"] = untested
        log.warning("gold: %d class(es) with fewer than %d test rows are not judged per class: %s", len(untested),
                    cfg.min_class_rows, ", ".join(f"{c} ({n})" for c, n in list(untested.items())[:10]))
    if TEACHER in ctx.models:
        _classes_the_teacher_misses(ctx, recalls, counts, judged, result)
        _class_recall_vs_teacher(ctx, targets, right, recalls, counts, judged, result)
        _per_class_vs_teacher(ctx, texts, result)
        if cfg.teacher_tolerance is not None:
            metric = "accuracy" if cfg.confidence is None else "accuracy_paired_upper"
            result.rules.append(Rule("gold", metric, ">=", cfg.teacher_tolerance, vs_teacher=True,
                                     against_metric="accuracy"))
        if cfg.class_tolerance is not None and judged.any():
            result.rules.append(Rule("gold", "class_recall_margin", ">=", -cfg.class_tolerance))
    for metric, floor in (("accuracy", cfg.min_accuracy), ("macro_f1", cfg.min_macro_f1),
                          ("min_class_recall", cfg.min_class_recall)):
        if floor is not None:
            result.rules.append(Rule("gold", metric, ">=", floor))
    if cfg.class_agreement_tolerance is not None:
        result.rules.append(Rule("gold", "min_class_agreement", ">=", 1.0 - cfg.class_agreement_tolerance))
    return result


TEACHER_MISSES = 0.5  # a teacher recall under this: the class is named, judged against the teacher or not


def _classes_the_teacher_misses(ctx: EvalContext, recalls: dict[str, np.ndarray], counts: np.ndarray,
                                judged: np.ndarray, result: SuiteResult) -> None:
    """Judged classes where the teacher itself finds fewer than half of the gold rows. Checks against the
    teacher pass a student that misses them as well (a teacher fitted on a few rare-class examples can
    answer the common class for all of them), so they are named in the report and the log with both recalls."""
    d = ctx.data
    teacher = recalls[TEACHER]
    missed = [c for c in range(len(d.labels)) if judged[c] and teacher[c] < TEACHER_MISSES]
    if not missed:
        return
    result.details["classes_teacher_misses"] = {
        d.labels[c]: {"rows": int(counts[c]), **{name: round(float(r[c]), 4) for name, r in recalls.items()}}
        for c in missed}
    log.warning("gold: the teacher finds fewer than %d %% of the test rows of %d class(es), so checks against "
                "it say little there: %s", round(TEACHER_MISSES * 100), len(missed),
                ", ".join(f"{d.labels[c]} (teacher recall {teacher[c]:.2f} on {counts[c]} rows)" for c in missed[:10]))


def _class_recall_vs_teacher(ctx: EvalContext, targets: np.ndarray, right: dict[str, np.ndarray],
                             recalls: dict[str, np.ndarray], counts: np.ndarray, judged: np.ndarray,
                             result: SuiteResult) -> None:
    """Per judged class: the student's recall minus the teacher's recall on the same rows, judged on the
    class's rows paired with the teacher's answers (``metrics.paired_accuracy_upper``) when a confidence is
    set. The minimum is ``class_recall_margin``; the worst classes are named.

    ``gold.confidence`` holds for all judged classes together (Bonferroni: each class's bound is taken at
    1 - (1 - confidence) / classes), so 77 classes of 40 rows do not fail a good student on the unluckiest
    one, while a class the student has clearly lost still fails."""
    d, cfg = ctx.data, ctx.cfg.gold
    teacher = recalls[TEACHER]
    worst = {}
    per_class = None if cfg.confidence is None else 1.0 - (1.0 - cfg.confidence) / max(int(judged.sum()), 1)
    for name, recall in recalls.items():
        if name == TEACHER or not judged.any():
            continue
        bound = recall if per_class is None else np.array(
            [m.paired_accuracy_upper(right[name][targets == c], right[TEACHER][targets == c], per_class) if n
             else np.nan for c, n in enumerate(counts)])
        margin = np.where(judged, bound - teacher, np.nan)
        result.metrics["gold"][name]["class_recall_margin"] = float(np.nanmin(margin))
        order = [c for c in np.argsort(np.nan_to_num(margin, nan=9.0)) if np.isfinite(margin[c])][:5]
        worst[name] = [{"class": d.labels[c], "recall": round(float(recall[c]), 4),
                        "teacher_recall": round(float(teacher[c]), 4), "margin": round(float(margin[c]), 4),
                        "rows": int(counts[c])} for c in order]
    result.details["worst_class_recall"] = worst


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
    has_gold = bool((d.test_targets >= 0).any())
    if ctx.cfg.agreement.gate_with_gold or not has_gold:
        result.rules.append(Rule("agreement", "agreement", ">=", ctx.cfg.agreement.min_agreement))
    else:
        result.details["agreement_gated"] = "no: the test split has gold labels (agreement.gate_with_gold: false)"
    return result
