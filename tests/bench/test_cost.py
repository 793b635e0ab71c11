"""The cost report: local models priced by measured CPU time, API teachers by measured tokens and prices."""

from __future__ import annotations

import pytest

from pipeline.cost import cost_lines, cost_report, teacher_usd_per_text

pytestmark = pytest.mark.unit


def test_local_teacher_is_priced_by_the_cpu_time_labeling_took():
    label = {"cpu_seconds": 36.0, "cache_misses": 1000, "texts_sent": 1000, "teacher_calls": 32, "cache_hits": 50,
             "usage": {}}
    usd, how = teacher_usd_per_text(label, usd_per_core_hour=1.0)
    assert usd == pytest.approx(0.036 / 3600) and "36.0 CPU-ms per text" in how
    # the student at 10,000 texts/s on one core; the cascade sends 10 % to the teacher
    report = cost_report(1.0, 1e-4, usd, how, 0.10, label)
    pm = report["per_million"]
    assert pm["student"] == pytest.approx(1e6 * 1e-4 / 3600)
    assert pm["teacher"] == pytest.approx(1e6 * 0.036 / 3600)
    assert pm["cascade"] == pytest.approx(pm["student"] + 0.10 * pm["teacher"])
    assert report["cascade_share_of_teacher"] == pytest.approx(pm["cascade"] / pm["teacher"])
    assert report["labeling"] == {"teacher_calls": 32, "texts_sent": 1000, "saved_by_cache": 50,
                                  "saved_by_selection": 0, "strategy": "all", "usd": pytest.approx(1000 * usd)}
    text = "\n".join(cost_lines(report))
    assert "cascade" in text and "10.0% deferred" in text and "50 answered free by the label cache" in text
    assert "never sent" not in text
    budgeted = cost_report(1.0, 1e-4, usd, how, 0.10, {**label, "strategy": "active", "left_out_by_budget": 700})
    assert budgeted["labeling"]["saved_by_selection"] == 700
    assert "700 pool rows never sent (label.budget, strategy active)" in "\n".join(cost_lines(budgeted))


def test_api_teacher_is_priced_by_its_tokens_and_an_unpriced_one_says_so():
    label = {"texts_sent": 200, "cache_misses": 200, "cpu_seconds": 1.0,
             "usage": {"prompt_tokens": 30_000, "completion_tokens": 200, "cost_usd": 0.5}}
    usd, how = teacher_usd_per_text(label, usd_per_core_hour=1.0)
    assert usd == pytest.approx(0.5 / 200) and "151 tokens per text" in how
    label["usage"]["cost_usd"] = 0.0
    usd, how = teacher_usd_per_text(label, usd_per_core_hour=1.0)
    assert usd == 0.0 and "price_per_1k" in how  # not silently priced as local CPU time
    assert teacher_usd_per_text({"cache_misses": 0, "usage": {}}, 1.0)[0] is None
    assert cost_report(1.0, None, None, "n/a", None)["per_million"] == {"teacher": None, "student": None,
                                                                         "cascade": None}


def test_the_demo_and_the_retrain_summary_price_the_stage_outputs(tmp_path):
    import json
    import shutil

    from flows.retrain import summarize
    from pipeline import outputs
    from pipeline.config import parse_params
    from pipeline.cost import pipeline_cost
    from tests.conftest import ROOT

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text("ingest: {}\ncost: {usd_per_core_hour: 0.036}\n")
    params = parse_params({"ingest": {}, "cost": {"usd_per_core_hour": 0.036}})
    assert pipeline_cost(tmp_path, params) is None  # nothing has run yet: no report, no guess
    files = {"label_metrics": {"cpu_seconds": 10.0, "cache_misses": 1000, "texts_sent": 1000, "teacher_calls": 32,
                               "cache_hits": 0, "usage": {}},
             "export_metrics": {"threads": 1, "speed_int8": {"texts_per_s": 5000.0}},
             "evaluate_metrics": {"cascade.student_int8.deferred": 0.1}}
    for name, body in files.items():
        path = outputs.path(name, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body))
    report = pipeline_cost(tmp_path, params)
    pm = report["per_million"]
    assert pm["teacher"] == pytest.approx(1e6 * 0.010 * 0.036 / 3600)  # 10 CPU-ms per text
    assert pm["student"] == pytest.approx(1e6 * 0.0002 * 0.036 / 3600)  # 5,000 texts/s on one thread
    assert pm["cascade"] == pytest.approx(pm["student"] + 0.1 * pm["teacher"])
    markdown = summarize(str(tmp_path), [{"stage": "label", "ran": True, "seconds": 1.0}], None)
    assert "## Cost" in markdown and "10.0% deferred" in markdown


def test_the_demo_summary_reads_like_a_report(tmp_path):
    import shutil

    from pipeline.config import parse_params
    from pipeline.demo import summary
    from tests.conftest import ROOT

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = parse_params({"ingest": {}, "teacher": {"kind": "python", "python": {
        "function": "tests.helpers.teachers:hashed", "labels": ["billing", "delivery", "other"]}}})
    text = summary(tmp_path, params, {"stages": [{"stage": "label", "ran": True}], "registered": "v1"}, None,
                   {"verdict": {"status": "ok"}, "rows": 536, "drift": {"drift_share": 0.16666666666666666},
                    "teacher": {"agreement": 0.9365671641791045, "rows": 536}},
                   {"requests": 10, "statuses": {200: 10}, "transport_errors": 0,
                    "sources": {"student": 9, "teacher": 1}, "fallbacks": {}}, 12.0)
    assert "drift share 0.1667, teacher agreement 0.9366 on 536 texts" in text
    assert "the teacher answered 1 of 10 texts (10.0%)" in text
