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
                                  "usd": pytest.approx(1000 * usd)}
    text = "\n".join(cost_lines(report))
    assert "cascade" in text and "10.0% deferred" in text and "50 answered free by the label cache" in text


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
