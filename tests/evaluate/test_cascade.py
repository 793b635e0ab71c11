"""The cascade: the serving cut fitted on held-out rows, and the curve with cuts applied unchanged to test."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluate.cascade import cascade_curve

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


def test_fit_cut_defers_the_target_share_of_validation_rows_or_reaches_the_target_agreement():
    from pipeline.evaluate.cascade import fit_cut

    conf = np.linspace(0.1, 1.0, 100)
    agrees = conf > 0.3  # the student agrees with the teacher wherever it is confident
    cut = fit_cut(conf, agrees, target_deferral=0.2)
    assert cut["deferred"] == pytest.approx(0.2) and (conf < cut["threshold"]).sum() == 20
    assert fit_cut(conf, agrees, target_deferral=0.0)["deferred"] == 0.0
    assert fit_cut(conf, agrees, target_deferral=1.0)["deferred"] == 1.0
    # the smallest deferral that brings agreement to 99 %: every disagreeing row but one goes to the teacher
    by_agreement = fit_cut(conf, agrees, target_deferral=0.0, target_agreement=0.99)
    assert by_agreement["agreement"] >= 0.99 and by_agreement["deferred"] == pytest.approx((~agrees).sum() / 100 - 0.01)
    with pytest.raises(ValueError, match="no validation rows"):
        fit_cut(np.array([]), np.array([], dtype=bool), 0.1)


@pytest.mark.model
def test_cascade_suite_fits_the_cut_on_heldout_and_buys_accuracy_on_test(tmp_path, banking_models):
    from pipeline.config.evaluate import EvaluateConfig
    from pipeline.evaluate.evaluation import calibration_record
    from pipeline.evaluate.report import gate_markdown
    from pipeline.evaluate.run import evaluate_models
    from pipeline.evaluate.suites import EvalContext

    data, teacher, student, _, path = banking_models
    cfg = EvaluateConfig(suites=["calibration", "cascade"],
                         cascade={"target_deferral": 0.15, "min_retention": 0.999})
    ctx = EvalContext(data=data, models={"teacher": teacher, "student_int8": student}, cfg=cfg, root=tmp_path,
                      bundle_files={"student_int8": path})
    result = evaluate_models(ctx)
    record = result.details["cascade"]
    assert record["heldout"]["deferred"] == pytest.approx(0.15, abs=0.01)
    got = result.metrics["cascade"]["student_int8"]
    # the cut is applied unchanged to test: about the target share is deferred, and the cascade beats the student
    assert 0.07 < got["deferred"] < 0.25
    assert got["accuracy"] > got["student_accuracy"]
    assert got["retention"] == pytest.approx(got["accuracy"] / got["teacher_accuracy"])
    curve = record["curve"]
    assert [r["target_rate"] for r in curve] == [0.0, 0.05, 0.10, 0.15, 0.20, 0.30]
    assert curve[0]["deferred"] == 0.0 and curve[-1]["accuracy"] > curve[0]["accuracy"]
    # the floor is a gate rule on the served model, judged like any other
    check = next(c for c in result.verdict.checks if c.suite == "cascade")
    assert check.metric == "retention" and check.passed == (got["retention"] >= 0.999)
    # the cut travels in calibration.json (to the registered bundle) at the temperature serving applies
    shipped = calibration_record(result)
    assert shipped["cascade"]["threshold"] == pytest.approx(record["threshold"], abs=1e-6)
    assert shipped["temperature"] == pytest.approx(record["temperature"], rel=1e-5)
    report = gate_markdown(result.verdict, result.metrics, result.details, {"gate_models": ["student_int8"]})
    assert "## Cascade" in report and "| 15% |" in report


def test_the_ood_cut_is_fitted_on_the_bundles_in_domain_score_and_travels_to_the_registered_bundle(tmp_path, bundles):
    """The OOD suite scores a student bundle by its in-domain score (not its top probability), sets the cut
    so that evaluate.ood.in_domain_reject_rate of held-out texts fall below it, and the cut reaches
    calibration.json and the registered copy of the bundle, where the server reads it."""
    from pipeline.bundle import load_bundle
    from pipeline.config.evaluate import EvaluateConfig
    from pipeline.evaluate.evaluation import calibration_record
    from pipeline.evaluate.predictors import BundleVariant
    from pipeline.evaluate.suites import EvalContext, EvalData
    from pipeline.evaluate.suites.ood import ood
    from pipeline.io import write_json
    from pipeline.release.register import stage_calibrated_bundle
    from tests.serve.test_abstain import IN_DOMAIN, OUT_OF_DOMAIN

    bundle = load_bundle(bundles["good_a"])
    heldout = IN_DOMAIN * 20 + [t + " please" for t in IN_DOMAIN] * 20
    (tmp_path / "ood.txt").write_text("\n".join(OUT_OF_DOMAIN), encoding="utf-8")
    data = EvalData(labels=list(bundle.labels), test_texts=IN_DOMAIN, test_targets=np.zeros(len(IN_DOMAIN), int),
                    heldout_texts=heldout)
    cfg = EvaluateConfig(ood={"path": "ood.txt", "in_domain_reject_rate": 0.1})
    ctx = EvalContext(data=data, models={"student_int8": BundleVariant(bundle, "int8")}, cfg=cfg, root=tmp_path)
    result = ood(ctx)
    record = result.details["ood"]
    assert result.details["ood_score"] == {"student_int8": "in_domain_score"}
    _, held_scores = bundle.predict_scored(heldout)
    assert record["threshold"] == pytest.approx(np.quantile(held_scores, 0.1, method="lower"))
    assert np.mean(held_scores < record["threshold"]) <= 0.1
    _, ood_scores = bundle.predict_scored(OUT_OF_DOMAIN)
    assert record["recall"] == pytest.approx(np.mean(ood_scores < record["threshold"]))

    class Result:  # what calibration_record reads from an Evaluation
        details = {"ood": record}
        metrics = {}

    shipped = calibration_record(Result())
    assert shipped["ood"]["threshold"] == pytest.approx(record["threshold"], abs=1e-6)
    write_json(tmp_path / "calibration.json", shipped)
    staged = stage_calibrated_bundle(bundles["good_a"], tmp_path / "calibration.json", tmp_path / "staged")
    assert load_bundle(staged).ood_threshold == pytest.approx(record["threshold"], abs=1e-6)
    assert load_bundle(bundles["good_a"]).ood_threshold is None  # models/bundle itself is never modified


def test_too_few_heldout_texts_leave_ood_reported_but_not_judged_and_no_cut_for_serving(tmp_path, bundles):
    from pipeline.bundle import load_bundle
    from pipeline.config.evaluate import EvaluateConfig
    from pipeline.evaluate.predictors import BundleVariant
    from pipeline.evaluate.suites import EvalContext, EvalData
    from pipeline.evaluate.suites.ood import ood
    from tests.serve.test_abstain import IN_DOMAIN, OUT_OF_DOMAIN

    bundle = load_bundle(bundles["good_a"])
    (tmp_path / "ood.txt").write_text("\n".join(OUT_OF_DOMAIN), encoding="utf-8")
    data = EvalData(labels=list(bundle.labels), test_texts=IN_DOMAIN, test_targets=np.zeros(len(IN_DOMAIN), int),
                    heldout_texts=IN_DOMAIN)  # 5 held-out texts: a 5 % cut would sit at the lowest one
    ctx = EvalContext(data=data, models={"student_int8": BundleVariant(bundle, "int8")},
                      cfg=EvaluateConfig(ood={"path": "ood.txt"}), root=tmp_path)
    result = ood(ctx)
    assert "recall" in result.metrics["ood"]["student_int8"]
    assert "5 held-out in-domain texts" in result.details["ood_not_judged"]
    assert "ood" not in result.details and result.rules == []
