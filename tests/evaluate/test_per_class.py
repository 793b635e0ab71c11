"""Per-class numbers of the gold suite: agreement with the teacher per class, worst classes named,
classes too small to judge listed with their counts instead of dropped."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import parse_params
from pipeline.evaluate.suites.base import EvalContext, EvalData
from pipeline.evaluate.suites.gold import gold

pytestmark = pytest.mark.unit

LABELS = ["ham", "spam", "phish"]


class Lookup:
    """A predictor that answers a fixed class per text."""

    def __init__(self, answers: dict[str, int]):
        self.labels, self.answers = LABELS, answers

    def predict_proba(self, texts):
        out = np.full((len(texts), len(LABELS)), 0.05)
        for i, t in enumerate(texts):
            out[i, self.answers[t]] = 0.9
        return out


def context(evaluate: dict | None = None) -> EvalContext:
    texts = [f"ham {i}" for i in range(20)] + [f"spam {i}" for i in range(6)]
    targets = np.array([0] * 20 + [1] * 6)  # no gold test row of class phish
    teacher = {t: (0 if t.startswith("ham") else 1) for t in texts}
    student = dict(teacher, **{f"spam {i}": 0 for i in range(5)})  # the student misses 5 of 6 spam
    cfg = parse_params({"ingest": {}, "evaluate": evaluate or {}}).evaluate
    data = EvalData(labels=LABELS, test_texts=texts, test_targets=targets)
    return EvalContext(data=data, models={"teacher": Lookup(teacher), "student_int8": Lookup(student)}, cfg=cfg)


def test_a_class_the_student_misses_is_named_even_when_overall_agreement_is_high():
    result = gold(context())
    numbers = result.metrics["gold"]["student_int8"]
    assert numbers["accuracy"] == pytest.approx(21 / 26)
    assert numbers["min_class_agreement"] == pytest.approx(1 / 6)
    worst = result.details["worst_classes"]["student_int8"][0]
    assert worst == {"class": "spam", "agreement": pytest.approx(0.1667, abs=1e-4), "rows": 6}
    assert result.details["classes_too_small"] == {"phish": 0}
    assert not any(r.metric == "min_class_agreement" for r in result.rules)  # reported, gated only on request


def test_the_per_class_floor_gates_when_asked():
    from pipeline.evaluate.gate import decide

    result = gold(context({"gold": {"class_agreement_tolerance": 0.5}}))
    verdict = decide(result.metrics, result.rules, ["student_int8"])
    failing = [c for c in verdict.failing if c.metric == "min_class_agreement"]
    assert len(failing) == 1 and failing[0].threshold == pytest.approx(0.5)


def test_a_class_the_teacher_itself_misses_is_named_with_both_recalls():
    from pipeline.evaluate.gate import decide
    from pipeline.evaluate.report import gate_markdown

    texts = [f"ham {i}" for i in range(20)] + [f"spam {i}" for i in range(6)]
    targets = np.array([0] * 20 + [1] * 6)
    everything_ham = Lookup({t: 0 for t in texts})  # a teacher fitted on too few spam rows, and its copy
    cfg = parse_params({"ingest": {}, "evaluate": {}}).evaluate
    data = EvalData(labels=LABELS, test_texts=texts, test_targets=targets)
    ctx = EvalContext(data=data, models={"teacher": everything_ham, "student_int8": everything_ham}, cfg=cfg)
    result = gold(ctx)
    # judged against the teacher alone, the copy passes: that is why the class is named
    assert decide(result.metrics, result.rules, ["student_int8"]).passed
    assert result.details["classes_teacher_misses"] == {"spam": {"rows": 6, "teacher": 0.0, "student_int8": 0.0}}
    report = gate_markdown(decide(result.metrics, result.rules, ["student_int8"]), result.metrics, result.details, {})
    assert "## Classes the teacher itself misses" in report and "| spam | 6 | 0 | 0 |" in report
    # a teacher that finds the class is not named
    assert "classes_teacher_misses" not in gold(context()).details
