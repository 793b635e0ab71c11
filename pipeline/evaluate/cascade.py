"""The cascade, priced in accuracy: the student answers, the teacher takes what the student is least sure of.

Used by the evaluate stage (the ``cascade`` suite fits the serving cut and reports the curve) and by
``distill bench`` (the curve beside the peers).

For each target deferral rate, the confidence cut (the student's max probability) is chosen on the
student's validation slice so that that share of it would go to the teacher; the cut is then applied,
unchanged, to the test split. Reported per rate: the share of test texts actually deferred, the
accuracy of the combined answers against gold, and that accuracy as a share of the teacher's. Nothing
is fitted on test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RATES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30)


def cascade_curve(val_student: np.ndarray, test_student: np.ndarray, test_teacher: np.ndarray,
                  test_gold: np.ndarray, rates: Sequence[float] = RATES) -> list[dict[str, float]]:
    """One row per target rate: ``target_rate``, ``threshold``, ``deferred``, ``accuracy``, ``retention``."""
    known = test_gold >= 0
    val_conf = val_student.max(axis=1)
    conf = test_student.max(axis=1)
    teacher_acc = float((test_teacher.argmax(axis=1)[known] == test_gold[known]).mean())
    rows = []
    for rate in rates:
        threshold = float(np.quantile(val_conf, rate)) if rate > 0 else -np.inf
        deferred = conf < threshold
        pred = np.where(deferred, test_teacher.argmax(axis=1), test_student.argmax(axis=1))
        accuracy = float((pred[known] == test_gold[known]).mean())
        rows.append({"target_rate": float(rate), "threshold": threshold if rate > 0 else None,
                     "deferred": float(deferred.mean()), "accuracy": accuracy,
                     "retention": accuracy / teacher_acc if teacher_acc > 0 else None})
    return rows


def fit_cut(val_conf: np.ndarray, val_agrees: np.ndarray, target_deferral: float,
            target_agreement: float | None = None) -> dict[str, float]:
    """The confidence cut on validation rows: texts below it go to the teacher.

    ``val_conf``: the student's calibrated top probability per validation row; ``val_agrees``: whether
    the student's answer there is the teacher's. With ``target_agreement``, the cut is the smallest
    deferral (in steps of 1 % of the rows) whose cascaded agreement with the teacher reaches it, else
    ``target_deferral`` of the rows. Returns ``threshold``, ``deferred`` and ``agreement`` on validation.
    """
    val_conf = np.asarray(val_conf, dtype=np.float64)
    val_agrees = np.asarray(val_agrees, dtype=bool)
    if not len(val_conf):
        raise ValueError("no validation rows to fit the cascade cut on")
    order = np.sort(val_conf)

    def at_rate(rate: float) -> float:
        n = int(round(rate * len(order)))  # defer the n least confident rows
        if n <= 0:
            return 0.0
        return float(order[n]) if n < len(order) else float(np.nextafter(order[-1], np.inf))

    def score(cut: float) -> tuple[float, float]:
        deferred = val_conf < cut
        return float(deferred.mean()), float(np.where(deferred, True, val_agrees).mean())

    cut = at_rate(target_deferral)
    if target_agreement is not None:
        for step in range(0, 101):
            cut = at_rate(step / 100)
            if score(cut)[1] >= target_agreement:
                break
    deferred, agreement = score(cut)
    return {"threshold": cut, "deferred": deferred, "agreement": agreement}
