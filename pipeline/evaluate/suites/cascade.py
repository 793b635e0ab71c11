"""Cascade: the confidence cut the server defers below, and what it buys on the test split.

The served student's probabilities are scaled by the temperature fitted on the held-out slice (what
serving applies), and the cut is fitted there too (``evaluate.cascade``: a target deferral rate or a
target agreement with the teacher). On the gold test split the suite then reports the student alone,
the teacher alone and the cascade at that cut, plus the accuracy-against-deferral curve. The cut goes
to models/calibration.json and from there into the registered bundle (pipeline/release/register.py).
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.cascade import cascade_curve, fit_cut
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, suite

SERVED = "student_int8"


@suite("cascade")
def cascade(ctx: EvalContext) -> SuiteResult:
    d, cfg = ctx.data, ctx.cfg.cascade
    result = SuiteResult()
    model = SERVED if SERVED in ctx.models else next((n for n in ctx.models if n.startswith("student")), None)
    if model is None or d.heldout_teacher is None or not len(d.heldout_texts):
        result.details["cascade"] = "no held-out rows with teacher labels: no cut fitted"
        return result
    held_teacher = np.argmax(d.heldout_teacher, axis=1)
    held = ctx.predict(model, d.heldout_texts)
    temperature = m.fit_temperature(held, d.heldout_teacher)  # as the calibration suite fits it: what ships
    held = m.scale(held, temperature)
    cut = fit_cut(held.max(axis=1), held.argmax(axis=1) == held_teacher, cfg.target_deferral, cfg.target_agreement)
    record = {"model": model, "threshold": cut["threshold"], "temperature": temperature,
              "target_deferral": cfg.target_deferral, "target_agreement": cfg.target_agreement,
              "heldout": {"rows": len(d.heldout_texts), "deferred": cut["deferred"], "agreement": cut["agreement"]}}
    rows = np.flatnonzero(d.test_targets >= 0)
    if len(rows) and TEACHER in ctx.models:
        texts = [d.test_texts[i] for i in rows]
        gold = d.test_targets[rows]
        student = m.scale(ctx.predict(model, texts), temperature)
        teacher = ctx.predict(TEACHER, texts)
        deferred = student.max(axis=1) < cut["threshold"]
        answer = np.where(deferred, teacher.argmax(axis=1), student.argmax(axis=1))
        teacher_acc = m.accuracy(teacher, gold)
        accuracy = float((answer == gold).mean())
        result.metrics["cascade"] = {model: {
            "threshold": cut["threshold"], "deferred": float(deferred.mean()), "accuracy": accuracy,
            "student_accuracy": m.accuracy(student, gold), "teacher_accuracy": teacher_acc,
            "retention": accuracy / teacher_acc if teacher_acc > 0 else float("nan"), "n": float(len(rows))}}
        # the curve fits each rate's cut on the same held-out rows, then applies it unchanged to test
        record["curve"] = cascade_curve(held, student, teacher, gold, cfg.rates)
        if cfg.min_retention is not None:
            result.rules.append(Rule("cascade", "retention", ">=", cfg.min_retention, models=(model,)))
    result.details["cascade"] = record
    return result
