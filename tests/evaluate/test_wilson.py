"""Floors judged on evidence: the one-sided Wilson upper bound for absolute floors, the paired bound for
checks against the teacher (golden values, tolerance 1e-3)."""

import numpy as np
import pytest

from pipeline.config.evaluate import EvaluateConfig
from pipeline.evaluate.gate import decide
from pipeline.evaluate.metrics import paired_accuracy_upper, wilson_upper
from pipeline.evaluate.suites.slices import slices

pytestmark = pytest.mark.unit


def test_wilson_upper_golden_values():
    # 47 of 59 at 90 %: z = 1.28155; (0.79661 + z^2/118 + z*sqrt(0.79661*0.20339/59 + z^2/13924)) / (1 + z^2/59)
    assert wilson_upper(47 / 59, 59, 0.9) == pytest.approx(0.8555, abs=1e-3)
    assert wilson_upper(0.5, 100, 0.95) == pytest.approx(0.5815, abs=1e-3)
    assert wilson_upper(1.0, 10, 0.9) == 1.0
    assert wilson_upper(0.8, 10_000, 0.9) == pytest.approx(0.8051, abs=1e-3)  # large n: close to the value


def _pair(n: int, teacher_right: int, student_only: int, teacher_only: int) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong per row: the teacher right on its first rows; the student as the teacher, except it is
    right on ``student_only`` of the teacher's wrong rows and wrong on ``teacher_only`` of its right ones."""
    teacher = np.arange(n) < teacher_right
    student = teacher.copy()
    student[:teacher_only] = False
    student[teacher_right:teacher_right + student_only] = True
    return student, teacher


def test_paired_accuracy_upper_golden_values():
    from scipy.stats import beta

    # 1,000 rows, teacher 0.900; the student right on 10 rows the teacher misses and wrong on 30 it gets
    # (accuracy 0.880). Of the 40 rows where the two differ it wins at most beta(11, 30).ppf(0.9)
    # (exact 90 % bound), so its accuracy is at most 0.900 + (2 * that - 1) * 40 / 1000
    student, teacher = _pair(1000, 900, 10, 30)
    expected = 0.9 + (2 * beta(11, 30).ppf(0.9) - 1) * 40 / 1000
    assert expected == pytest.approx(0.8887, abs=1e-4)
    assert paired_accuracy_upper(student, teacher, 0.9) == pytest.approx(expected, abs=1e-9)
    # its own Wilson bound (0.8926) would leave it within 0.01 of its teacher: pairing sees that it
    # loses 30 and wins 10 of the rows where the two differ
    assert wilson_upper(student.mean(), 1000, 0.9) > 0.89 > paired_accuracy_upper(student, teacher, 0.9)
    # 15 rows, the teacher right on all, the student on 14 or 13: no evidence that it is behind (McNemar's
    # exact p = 0.5, 0.25); its own Wilson bound (0.980, 0.943) would fail it against the teacher - 0.02
    for lost in (1, 2):
        student, teacher = _pair(15, 15, 0, lost)
        assert paired_accuracy_upper(student, teacher, 0.9) == 1.0
        assert wilson_upper(student.mean(), 15, 0.9) < 0.98
    # twelve rows lost of 60 and none won are: 1 + (2 * (1 - 0.1 ** (1 / 12)) - 1) * 12 / 60
    student, teacher = _pair(60, 60, 0, 12)
    expected = 1 + (2 * (1 - 0.1 ** (1 / 12)) - 1) * 12 / 60
    assert expected == pytest.approx(0.8698, abs=1e-4)
    assert paired_accuracy_upper(student, teacher, 0.9) == pytest.approx(expected, abs=1e-9)
    # a class the student has lost: 28 of 40 rows lost, none won
    assert paired_accuracy_upper(*_pair(40, 38, 0, 28), 0.9) < 0.4
    # the same answers as the teacher: its accuracy, exactly
    assert paired_accuracy_upper(teacher, teacher, 0.9) == 1.0
    assert paired_accuracy_upper(*_pair(10, 9, 0, 0), 0.9) == pytest.approx(0.9)
    assert np.isnan(paired_accuracy_upper(np.array([], bool), np.array([], bool), 0.9))


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
    assert {(c.metric, c.kind) for c in verdict.checks} == {("accuracy_paired_upper", "teacher")}
    # an absolute floor is the user's to add, judged on the student's own Wilson bound
    floored = _slice_verdict(_slice_ctx(48, 48, 59, min_accuracy=0.75))
    assert {(c.metric, c.kind) for c in floored.checks} == {("accuracy_upper", "threshold"),
                                                           ("accuracy_paired_upper", "teacher")}
    # a student clearly below its teacher on the slice fails the teacher check alone
    worse = _slice_verdict(_slice_ctx(58, 48, 59))
    assert [(c.metric, c.kind) for c in worse.failing] == [("accuracy_paired_upper", "teacher")]
    # the student's bound, paired with the teacher's answers, is compared with the teacher's own accuracy
    # on the slice: it wins 1 of the 12 rows where the two differ
    assert worse.failing[0].reference == pytest.approx(58 / 59)
    from scipy.stats import beta
    assert worse.failing[0].value == pytest.approx(58 / 59 + (2 * beta(2, 11).ppf(0.9) - 1) * 12 / 59, abs=1e-9)
    # the absolute agreement floor is still the user's to set
    strict = _slice_verdict(_slice_ctx(48, 48, 59, min_agreement=0.8))
    assert [(c.metric, c.kind) for c in strict.failing] == [("agreement_upper", "threshold")]


def test_a_slice_without_gold_is_judged_on_agreement():
    verdict = _slice_verdict(_slice_ctx(48, 48, 59, gold=False))
    assert [(c.metric, c.threshold) for c in verdict.checks] == [("agreement_upper", 0.9)]  # agreement.min_agreement
    assert not verdict.passed


@pytest.mark.parametrize("n", [15, 300, 5000])
@pytest.mark.parametrize("teacher_accuracy", [0.6, 0.9, 0.99])
def test_default_gold_tolerance_passes_a_student_keeping_99_percent(n, teacher_accuracy):
    from pipeline.config.evaluate import GoldConfig

    cfg = GoldConfig()
    teacher_right = round(teacher_accuracy * n)
    needs = teacher_right / n - cfg.teacher_tolerance
    # the worst student that keeps 99 %: it loses 1 % of the teacher's right rows and wins none back
    keeps = _pair(n, teacher_right, 0, int(0.01 * teacher_right))
    assert keeps[0].sum() >= 0.99 * teacher_right
    assert paired_accuracy_upper(*keeps, cfg.confidence) >= needs
    # ... while one that keeps 97 % fails once the rows can show it
    if n >= 5000:
        behind = _pair(n, teacher_right, 0, int(0.03 * teacher_right))
        assert paired_accuracy_upper(*behind, cfg.confidence) < needs
