"""The cascade curve: cuts chosen on validation, applied unchanged to test."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bench.cascade import cascade_curve

pytestmark = pytest.mark.unit


def test_deferring_the_least_confident_texts_hands_them_to_the_teacher():
    # 10 test texts: the student is wrong on its 3 least confident ones, the teacher right everywhere
    gold = np.zeros(10, dtype=np.int64)
    conf = np.linspace(0.55, 0.95, 10)
    student = np.stack([conf, 1 - conf], axis=1)
    student[:3] = student[:3, ::-1]  # wrong class, same confidence
    teacher = np.tile([0.9, 0.1], (10, 1))
    val = np.stack([np.linspace(0.55, 0.95, 20), 1 - np.linspace(0.55, 0.95, 20)], axis=1)
    rows = cascade_curve(val, student, teacher, gold, rates=(0.0, 0.15, 0.3, 1.0))
    assert [r["target_rate"] for r in rows] == [0.0, 0.15, 0.3, 1.0]
    assert rows[0]["deferred"] == 0.0 and rows[0]["accuracy"] == pytest.approx(0.7) and rows[0]["threshold"] is None
    # the 30 % cut of validation confidence defers exactly the three wrong answers here
    assert rows[2]["deferred"] == pytest.approx(0.3) and rows[2]["accuracy"] == 1.0 and rows[2]["retention"] == 1.0
    assert rows[1]["deferred"] < rows[2]["deferred"] and rows[1]["accuracy"] < 1.0
    # the cut comes from validation: a test split more confident than validation defers less
    confident = np.stack([conf + 0.04, 0.96 - conf], axis=1)
    assert cascade_curve(val, confident, teacher, gold, rates=(0.3,))[0]["deferred"] == pytest.approx(0.2)
    # rows without gold are routed but not scored
    partial = cascade_curve(val, student, teacher, np.array([0] * 5 + [-1] * 5), rates=(0.0,))
    assert partial[0]["accuracy"] == pytest.approx(2 / 5)
