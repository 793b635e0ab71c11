"""Data-derived slices of the test split: named groups (hard ham), short and long texts, rare classes.

Each slice with at least ``slices.min_rows`` rows is scored on accuracy against gold and agreement with
the teacher; a slice with fewer rows is listed in the report as skipped (too small to judge). A slice
with gold labels is gated on accuracy: the teacher's own accuracy on the same rows minus
``slices.teacher_tolerance``, and an absolute floor when the user sets ``slices.min_accuracy``. Agreement is
gated where there is no gold (or everywhere, with ``slices.min_agreement`` set): a student exactly as
accurate as its teacher may still err on other rows. With ``slices.confidence`` set (the default), bounds
are compared, reported beside the plain values, so small slices fail on evidence, not on one text: against
the teacher, the paired bound of the student's accuracy (``accuracy_paired_upper``, from the rows where
exactly one of the two is right); against absolute floors, its one-sided Wilson bounds (``accuracy_upper``,
``agreement_upper``).
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, suite


def slice_masks(ctx: EvalContext) -> dict[str, np.ndarray]:
    """Slice name -> boolean mask over the test rows."""
    d, cfg = ctx.data, ctx.cfg.slices
    masks: dict[str, np.ndarray] = {}
    if d.test_groups is not None:
        groups = np.array([g if g is not None else "" for g in d.test_groups], dtype=object)
        wanted = cfg.groups or sorted({g for g in groups if g})
        for g in wanted:
            masks[f"slice/group={g}"] = groups == g
    lengths = np.array([len(t) for t in d.test_texts])
    if len(lengths):
        low, high = np.quantile(lengths, cfg.length_quantiles)
        masks[f"slice/short<={int(low)}chars"] = lengths <= low
        masks[f"slice/long>={int(high)}chars"] = lengths >= high
    gold = d.test_targets[d.test_targets >= 0]
    if len(gold):
        share = np.bincount(gold, minlength=len(d.labels)) / len(gold)
        rare = [c for c in range(len(d.labels)) if 0 < share[c] < cfg.rare_class_share]
        if rare:
            masks["slice/rare_classes"] = np.isin(d.test_targets, rare)
    return masks


@suite("slices")
def slices(ctx: EvalContext) -> SuiteResult:
    d, cfg = ctx.data, ctx.cfg.slices
    result = SuiteResult()
    skipped = {}
    for name, mask in slice_masks(ctx).items():
        rows = np.flatnonzero(mask)
        if len(rows) < cfg.min_rows:
            skipped[name] = int(len(rows))
            continue
        texts = [d.test_texts[i] for i in rows]
        targets = d.test_targets[rows]
        teacher = ctx.predict(TEACHER, texts) if TEACHER in ctx.models else None
        result.metrics[name] = {}
        for model in ctx.models:
            probs = ctx.predict(model, texts)
            entry = {"n": float(len(rows))}
            if (targets >= 0).all():
                entry["accuracy"] = m.accuracy(probs, targets)
            if teacher is not None:
                entry["agreement"] = m.agreement(probs, teacher)
            if cfg.confidence is not None:
                for metric in [k for k in ("accuracy", "agreement") if k in entry]:
                    entry[f"{metric}_upper"] = m.wilson_upper(entry[metric], len(rows), cfg.confidence)
                if "accuracy" in entry and teacher is not None and model != TEACHER:
                    entry["accuracy_paired_upper"] = m.paired_accuracy_upper(
                        m.correct(probs, targets), m.correct(teacher, targets), cfg.confidence)
            result.metrics[name][model] = entry
        suffix = "_upper" if cfg.confidence is not None else ""
        gold = bool((targets >= 0).all())
        if gold:
            if cfg.min_accuracy is not None:
                result.rules.append(Rule(name, "accuracy" + suffix, ">=", cfg.min_accuracy))
            if teacher is not None and cfg.teacher_tolerance is not None:
                paired = "_paired_upper" if cfg.confidence is not None else ""
                result.rules.append(Rule(name, "accuracy" + paired, ">=", cfg.teacher_tolerance, vs_teacher=True,
                                         against_metric="accuracy"))
        if teacher is not None and (cfg.min_agreement is not None or not gold):
            floor = cfg.min_agreement if cfg.min_agreement is not None else ctx.cfg.agreement.min_agreement
            result.rules.append(Rule(name, "agreement" + suffix, ">=", floor))
    if skipped:
        result.details["skipped_slices"] = skipped
    return result
