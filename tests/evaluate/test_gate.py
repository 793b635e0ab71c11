"""Gate decisions: thresholds per gated model, missing metrics fail, champion/challenger tolerance."""

import pytest

from pipeline.config.evaluate import ChampionConfig
from pipeline.evaluate.gate import decide, tolerance_for
from pipeline.evaluate.report import flat_metrics, gate_markdown
from pipeline.evaluate.suites.base import Rule

pytestmark = pytest.mark.unit
GATED = ["student_int8", "student_fp32"]


def metrics(int8_acc=0.9, fp32_acc=0.92, ece=0.05, champ=None):
    out = {"gold": {"teacher": {"accuracy": 0.97}, "student_fp32": {"accuracy": fp32_acc},
                    "student_int8": {"accuracy": int8_acc}},
           "calibration": {"student_int8": {"ece_scaled": ece}, "student_fp32": {"ece_scaled": ece}}}
    if champ is not None:
        out["gold"]["champion"] = {"accuracy": champ[0]}
        out["calibration"]["champion"] = {"ece_scaled": champ[1]}
    return out


RULES = [Rule("gold", "accuracy", ">=", 0.85), Rule("calibration", "ece_scaled", "<=", 0.1)]


def test_every_gated_model_gets_a_check_and_the_teacher_none():
    verdict = decide(metrics(), RULES, GATED)
    assert verdict.passed
    assert {(c.suite, c.model) for c in verdict.checks} == {(s, m) for s in ("gold", "calibration") for m in GATED}


def test_one_failing_metric_fails_the_gate_and_is_named():
    verdict = decide(metrics(int8_acc=0.80, ece=0.2), RULES, GATED)
    assert not verdict.passed
    assert {(c.suite, c.metric, c.model) for c in verdict.failing} == {
        ("gold", "accuracy", "student_int8"), ("calibration", "ece_scaled", "student_int8"),
        ("calibration", "ece_scaled", "student_fp32")}
    md = gate_markdown(verdict, metrics(int8_acc=0.80, ece=0.2), {}, {"gate_models": GATED})
    assert md.startswith("# Gate: FAILED") and md.index("## Failing checks") < md.index("## Suites")
    flat = flat_metrics(verdict, metrics(int8_acc=0.80))
    assert flat["passed"] is False and flat["failed_checks"] == 3 and flat["gold.student_int8.accuracy"] == 0.8


def test_boundary_values_pass_and_missing_or_nan_fail():
    assert decide(metrics(int8_acc=0.85, fp32_acc=0.85, ece=0.1), RULES, GATED).passed
    data = metrics()
    del data["gold"]["student_int8"]["accuracy"]
    data["calibration"]["student_fp32"]["ece_scaled"] = float("nan")
    failing = decide(data, RULES, GATED).failing
    assert {(c.suite, c.model, c.value is None) for c in failing} == {("gold", "student_int8", True),
                                                                      ("calibration", "student_fp32", False)}
    # A suite that produced no metrics at all fails for every gated model instead of passing silently.
    assert len(decide({}, RULES, GATED).failing) == 4
    assert not decide({}, [], GATED).passed  # no checks at all is not a pass


def test_champion_tolerance_both_directions():
    cfg = ChampionConfig(tolerance=0.02)
    ok = decide(metrics(int8_acc=0.90, champ=(0.915, 0.05)), RULES, GATED, cfg)
    champ_checks = [c for c in ok.checks if c.kind == "champion"]
    assert ok.passed and len(champ_checks) == 2
    assert champ_checks[0].threshold == pytest.approx(0.895)
    worse = decide(metrics(int8_acc=0.90, ece=0.08, champ=(0.93, 0.05)), RULES, GATED, cfg)
    assert {(c.suite, c.kind) for c in worse.failing} == {("gold", "champion"), ("calibration", "champion")}
    # No champion scored: no champion checks.
    assert all(c.kind == "threshold" for c in decide(metrics(), RULES, GATED, cfg).checks)


def test_per_suite_tolerance_and_exclusions():
    cfg = ChampionConfig(tolerance=0.01, tolerance_by_suite={"perturb": 0.05, "perturb/typos": 0.1},
                         exclude=["budgets", "calibration"])
    assert tolerance_for("perturb/typos", cfg) == 0.1
    assert tolerance_for("perturb/casing", cfg) == 0.05
    assert tolerance_for("gold", cfg) == 0.01
    verdict = decide(metrics(int8_acc=0.90, ece=0.09, champ=(0.905, 0.01)), RULES, GATED, cfg)
    assert verdict.passed and [c.suite for c in verdict.checks if c.kind == "champion"] == ["gold"]


def test_teacher_relative_rules_judge_the_student_by_the_teachers_own_value():
    """A suite the teacher itself does poorly on: an absolute floor would fail a student as good as its
    teacher; the relative rule passes it, fails one clearly worse, and says both numbers."""
    from pipeline.evaluate.report import check_text

    rules = [Rule("ood", "recall", ">=", 0.1, vs_teacher=True)]
    metrics = {"ood": {"teacher": {"recall": 0.44}, "student_int8": {"recall": 0.40}}}
    verdict = decide(metrics, rules, ["student_int8"])
    (check,) = verdict.checks
    assert verdict.passed and check.kind == "teacher" and check.reference == 0.44
    assert check.threshold == pytest.approx(0.34)
    worse = decide({"ood": {"teacher": {"recall": 0.44}, "student_int8": {"recall": 0.18}}}, rules, ["student_int8"])
    assert not worse.passed
    assert check_text(worse.failing[0]) == ("ood recall [student_int8] = 0.18, needs >= 0.34 "
                                             "(teacher 0.44 - tolerance, margin -0.16)")
    lower_is_better = [Rule("calibration", "ece", "<=", 0.02, vs_teacher=True)]
    assert decide({"calibration": {"teacher": {"ece": 0.05}, "student_int8": {"ece": 0.06}}}, lower_is_better,
                  ["student_int8"]).passed
    unscored = decide({"ood": {"student_int8": {"recall": 0.9}}}, rules, ["student_int8"])
    assert not unscored.passed  # no teacher value: no margin to judge by, never a silent pass


def test_ood_recall_at_a_fixed_in_domain_reject_rate_does_not_depend_on_overall_confidence():
    import numpy as np

    from pipeline.evaluate.suites.ood import recall_at_reject_rate

    rng = np.random.default_rng(0)
    in_domain, ood = rng.uniform(0.5, 1.0, 400), rng.uniform(0.5, 0.8, 40)
    cut, recall = recall_at_reject_rate(in_domain, ood, 0.05)
    assert np.mean(in_domain < cut) <= 0.05 and 0.0 < recall <= 1.0
    # the same ordering squeezed towards 1.0 (a far more confident model): the same recall
    squeeze = lambda p: 1 - (1 - p) / 1000  # noqa: E731
    assert recall_at_reject_rate(squeeze(in_domain), squeeze(ood), 0.05)[1] == pytest.approx(recall)
