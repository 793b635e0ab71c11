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
                                                    "teacher_tolerance": None,
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


def _slice_ctx(teacher_right: int, student_right: int, n: int, gold: bool = True, **slices_cfg):
    """A slice where teacher and student are right on their first rows, wrong (on other rows) after."""
    from types import SimpleNamespace

    targets = np.zeros(n, dtype=np.int64) if gold else np.full(n, -1, dtype=np.int64)
    right, wrong = [0.9, 0.1], [0.2, 0.8]
    teacher = np.array([right if i < teacher_right else wrong for i in range(n)])
    # the student errs on the *first* rows, so it disagrees with the teacher on both sets of mistakes
    student = np.array([wrong if i < n - student_right else right for i in range(n)])
    data = SimpleNamespace(test_texts=[f"t{i}" for i in range(n)], test_targets=targets,
                           test_groups=["hard"] * n, labels=["ham", "spam"])
    cfg = EvaluateConfig.model_validate({"slices": {"groups": ["hard"], "min_rows": 5, "confidence": 0.9,
                                                    "length_quantiles": [0.1, 0.9], **slices_cfg}})
    outputs = {"teacher": teacher, "student_int8": student}
    return SimpleNamespace(data=data, cfg=cfg, models=["teacher", "student_int8"],
                           predict=lambda model, texts: outputs[model][[int(t[1:]) for t in texts]])


def _slice_verdict(ctx):
    result = slices(ctx)
    metrics = {"slice/group=hard": result.metrics["slice/group=hard"]}
    return decide(metrics, [r for r in result.rules if r.suite == "slice/group=hard"], ["student_int8"])


def test_a_slice_is_judged_against_the_teacher_not_on_agreement_when_it_has_gold():
    # teacher and student both right on 48 of 59, on different rows: agreement 37/59 = 0.63
    verdict = _slice_verdict(_slice_ctx(48, 48, 59))
    assert verdict.passed, verdict.checks
    assert {(c.metric, c.kind) for c in verdict.checks} == {("accuracy_upper", "teacher")}
    # an absolute floor is the user's to add
    floored = _slice_verdict(_slice_ctx(48, 48, 59, min_accuracy=0.75))
    assert {(c.metric, c.kind) for c in floored.checks} == {("accuracy_upper", "threshold"), ("accuracy_upper", "teacher")}
    # a student clearly below its teacher on the slice fails the teacher check alone
    worse = _slice_verdict(_slice_ctx(58, 48, 59))
    assert [(c.metric, c.kind) for c in worse.failing] == [("accuracy_upper", "teacher")]
    # the student's upper bound is compared with the teacher's own accuracy on the slice
    assert worse.failing[0].reference == pytest.approx(58 / 59)
    assert worse.failing[0].value == pytest.approx(wilson_upper(48 / 59, 59, 0.9))
    # the absolute agreement floor is still the user's to set
    strict = _slice_verdict(_slice_ctx(48, 48, 59, min_agreement=0.8))
    assert [(c.metric, c.kind) for c in strict.failing] == [("agreement_upper", "threshold")]


def test_a_slice_without_gold_is_judged_on_agreement():
    verdict = _slice_verdict(_slice_ctx(48, 48, 59, gold=False))
    assert [(c.metric, c.threshold) for c in verdict.checks] == [("agreement_upper", 0.9)]  # agreement.min_agreement
    assert not verdict.passed
