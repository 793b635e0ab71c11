"""The gate on real predictors: a good distilled student passes the default thresholds, a weak one fails
with the failing suites named, and a champion that is better blocks a weaker challenger."""

from pathlib import Path

import pytest

from pipeline.config.evaluate import EvaluateConfig
from pipeline.evaluate.run import evaluate_models
from pipeline.evaluate.suites import EvalContext

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]

SUITE = """name: banking_cases
cases:
  - text: "I activated my card but it is still not working, what do I do?"
    expect: activate_my_card
  - text: "how long until my new card arrives"
    expect_not: age_limit
  - text: "Is there a minimum age to open an account?"
    expect: same_as_teacher
"""


def config(tmp_path, **overrides) -> EvaluateConfig:
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "suites" / "banking.yaml").write_text(SUITE, encoding="utf-8")
    (tmp_path / "suites" / "ood.txt").write_text((ROOT / "suites" / "ood.txt").read_text(encoding="utf-8"))
    base = {"perturbations": {"count": 120}, "budgets": {"latency_runs": 30, "warmup_runs": 3,
                                                         "models": ["student_int8"]}}
    return EvaluateConfig(**{**base, **overrides})


def context(tmp_path, data, teacher, student, path, cfg, champion=None):
    models = {"teacher": teacher, "student_fp32": student, "student_int8": student}
    if champion is not None:
        models["champion"] = champion
    return EvalContext(data=data, models=models, cfg=cfg, root=tmp_path,
                       bundle_files={"student_int8": path, "student_fp32": path})


def test_good_student_passes_default_thresholds(tmp_path, banking_models):
    data, teacher, student, _, path = banking_models
    result = evaluate_models(context(tmp_path, data, teacher, student, path, config(tmp_path)))
    assert result.verdict.passed, [c for c in result.verdict.failing]
    gold = result.metrics["gold"]["student_int8"]
    assert gold["accuracy"] > 0.9 and result.metrics["agreement"]["student_int8"]["agreement"] > 0.9
    suites = set(result.metrics)
    assert {"gold", "agreement", "ood", "calibration", "budgets", "user/banking_cases",
            "perturb/typos", "perturb/homoglyphs", "perturb/truncate"} <= suites
    assert any(s.startswith("slice/short") for s in suites) and any(s.startswith("slice/long") for s in suites)
    assert 0.05 < result.details["temperature"]["student_int8"] < 20


def test_majority_student_fails_with_suites_named(tmp_path, banking_models):
    data, teacher, _, majority, path = banking_models
    result = evaluate_models(context(tmp_path, data, teacher, majority, path, config(tmp_path)))
    assert not result.verdict.passed
    failing = {c.suite for c in result.verdict.failing}
    assert {"gold", "ood", "user/banking_cases", "calibration"} <= failing
    assert any(s.startswith("perturb/") for s in failing) and any(s.startswith("slice/") for s in failing)
    # judged against the teacher on the same rows: overall accuracy and the worst class's recall
    metrics = {c.metric for c in result.verdict.failing if c.suite == "gold"}
    assert metrics == {"accuracy_paired_upper", "class_recall_margin"}
    # with gold test labels, held-out agreement is reported, not gated; the user can gate it as well
    assert "agreement" in result.metrics and all(c.suite != "agreement" for c in result.verdict.checks)
    strict = evaluate_models(context(tmp_path, data, teacher, majority, path,
                                     config(tmp_path, suites=["agreement"], agreement={"gate_with_gold": True})))
    assert [c.suite for c in strict.verdict.failing] == ["agreement", "agreement"]
    # The teacher is scored for reference but never gated.
    assert all(c.model != "teacher" for c in result.verdict.checks)
    assert result.metrics["gold"]["teacher"]["accuracy"] > 0.9


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_weak_students_fail_against_the_teacher_for_every_seed(tmp_path, banking_models, weak_student, seed):
    """One epoch over 256 buckets: the default, teacher-relative gate fails it on gold and names the suites."""
    data, teacher, _, _, path = banking_models
    weak = weak_student(seed)
    result = evaluate_models(context(tmp_path, data, teacher, weak, path, config(tmp_path)))
    assert not result.verdict.passed
    failing = {c.suite for c in result.verdict.failing}
    assert "gold" in failing, failing
    accuracy = result.metrics["gold"]["student_int8"]["accuracy"]
    assert accuracy < result.metrics["gold"]["teacher"]["accuracy"]
    gold_check = next(c for c in result.verdict.failing if c.suite == "gold" and c.metric == "accuracy_paired_upper")
    assert gold_check.kind == "teacher" and gold_check.margin < 0


def test_weaker_challenger_is_blocked_by_the_champion(tmp_path, banking_models):
    data, teacher, student, _, path = banking_models
    # The teacher stands in as a stronger champion; with zero tolerance the student must match it exactly.
    strict = config(tmp_path, suites=["gold", "agreement"], champion={"tolerance": 0.0})
    result = evaluate_models(context(tmp_path, data, teacher, student, path, strict, champion=teacher))
    champ = [c for c in result.verdict.checks if c.kind == "champion"]
    assert champ and all(c.model == "student_int8" for c in champ)
    assert any(not c.passed for c in champ) and not result.verdict.passed
    lenient = config(tmp_path, suites=["gold", "agreement"], champion={"tolerance": 0.2})
    assert evaluate_models(context(tmp_path, data, teacher, student, path, lenient, champion=teacher)).verdict.passed
