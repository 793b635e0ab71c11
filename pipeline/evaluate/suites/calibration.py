"""Calibration: ECE on the gold test split before and after temperature scaling.

The temperature of each model is fitted on the held-out validation slice against the teacher's soft
labels (minimum cross-entropy with the teacher's probabilities), never on the test split it is then
judged on. The fitted temperatures are returned in
``details["temperature"]`` so the stage can write them for export and serving (models/calibration.json).
The teacher keeps T = 1. The gate compares the student's scaled ECE with the teacher's ECE on the same
gold rows (``calibration.teacher_tolerance``), and with ``calibration.max_ece`` when the user sets it.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, suite


@suite("calibration")
def calibration(ctx: EvalContext) -> SuiteResult:
    d, cfg = ctx.data, ctx.cfg.calibration
    result = SuiteResult()
    rows = np.flatnonzero(d.test_targets >= 0)
    if not len(rows):
        result.details["calibration"] = "no gold test rows"
        return result
    texts = [d.test_texts[i] for i in rows]
    targets = d.test_targets[rows]
    fit_texts, fit_targets = d.heldout_texts, None
    if d.heldout_teacher is not None and len(fit_texts):
        fit_targets = d.heldout_teacher  # soft: the student's confidence fitted to the teacher's
    temperatures = {}
    result.metrics["calibration"] = {}
    for model in ctx.models:
        probs = ctx.predict(model, texts)
        # The teacher is judged as it is: fitting it to its own labels would only make it overconfident.
        fit = fit_targets is not None and model != TEACHER
        t = m.fit_temperature(ctx.predict(model, fit_texts), fit_targets) if fit else 1.0
        scaled = m.scale(probs, t)
        temperatures[model] = t
        result.metrics["calibration"][model] = {
            "ece": m.expected_calibration_error(probs, targets, cfg.bins),
            "ece_scaled": m.expected_calibration_error(scaled, targets, cfg.bins),
            "nll": m.nll(probs, targets), "nll_scaled": m.nll(scaled, targets), "temperature": t,
            "n": float(len(rows))}
    result.details["temperature"] = temperatures
    result.details["temperature_fitted_on"] = (f"{len(fit_texts)} held-out transfer rows vs the teacher's probabilities"
                                               if fit_targets is not None else "nothing (no held-out rows): T=1")
    if TEACHER in ctx.models and cfg.teacher_tolerance is not None:
        result.rules.append(Rule("calibration", "ece_scaled", "<=", cfg.teacher_tolerance, vs_teacher=True,
                                 against_metric="ece"))
    if cfg.max_ece is not None:
        result.rules.append(Rule("calibration", "ece_scaled", "<=", cfg.max_ece))
    return result
