"""Slice floors judged on evidence: the one-sided Wilson upper bound (golden values, tolerance 1e-3)."""

import numpy as np
import pytest

from pipeline.config.evaluate import EvaluateConfig
from pipeline.evaluate.gate import decide
from pipeline.evaluate.metrics import wilson_upper
from pipeline.evaluate.suites.slices import slices

pytestmark = pytest.mark.unit


def test_wilson_upper_golden_values():
    # 47 of 59 at 90 %: z = 1.28155; (0.79661 + z^2/118 + z*sqrt(0.79661*0.20339/59 + z^2/13924)) / (1 + z^2/59)
    assert wilson_upper(47 / 59, 59, 0.9) == pytest.approx(0.8555, abs=1e-3)
    assert wilson_upper(0.5, 100, 0.95) == pytest.approx(0.5815, abs=1e-3)
    assert wilson_upper(1.0, 10, 0.9) == 1.0
    assert wilson_upper(0.8, 10_000, 0.9) == pytest.approx(0.8051, abs=1e-3)  # large n: close to the value


def _ctx(student_right: int, n: int, confidence):
    """One slice of n rows where the teacher is right on all and the student on ``student_right``."""
    from types import SimpleNamespace

    targets = np.zeros(n, dtype=np.int64)
    teacher = np.tile([0.9, 0.1], (n, 1))
    student = teacher.copy()
    student[student_right:] = [0.2, 0.8]
    data = SimpleNamespace(test_texts=[f"t{i}" for i in range(n)], test_targets=targets,
                           test_groups=["hard"] * n, labels=["ham", "spam"])
    cfg = EvaluateConfig.model_validate({"slices": {"groups": ["hard"], "min_rows": 5, "min_accuracy": 0.8,
                                                    "min_agreement": 0.8, "confidence": confidence,
                                                    "length_quantiles": [0.1, 0.9]}})
    outputs = {"teacher": teacher, "student_int8": student}
    ctx = SimpleNamespace(data=data, cfg=cfg, models=["teacher", "student_int8"],
                          predict=lambda model, texts: outputs[model][[int(t[1:]) for t in texts]])
    return ctx


@pytest.mark.parametrize("right, confidence, passes", [
    (47, None, False),   # 0.797 < 0.8: the plain floor fails on one message
    (47, 0.9, True),     # upper bound 0.856: not evidence of being below 0.8
    (35, 0.9, False),    # 0.593, upper bound 0.67: clearly below
])
def test_slice_floor_with_and_without_confidence(right, confidence, passes):
    result = slices(_ctx(right, 59, confidence))
    metrics = {"slice/group=hard": result.metrics["slice/group=hard"]}
    verdict = decide(metrics, [r for r in result.rules if r.suite == "slice/group=hard"], ["student_int8"])
    assert verdict.passed is passes, verdict.checks
    if confidence is not None:
        assert {c.metric for c in verdict.checks} == {"accuracy_upper", "agreement_upper"}
