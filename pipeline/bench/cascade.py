"""The cascade, priced in accuracy: the student answers, the teacher takes what the student is least sure of.

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
