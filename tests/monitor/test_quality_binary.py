"""The monitor's quality snapshot on a two-label model (spam/ham) and on a multiclass one."""

from datetime import datetime, timezone

import pandas as pd
import pytest

from pipeline.monitor import reports

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("labels", [["ham", "spam"], ["billing", "delivery", "other"]])
def test_quality_snapshot_agreement_matches_the_rows(labels):
    teacher = [labels[i % len(labels)] for i in range(60)]
    student = list(teacher)
    for i in range(0, 60, 6):  # 10 of 60 disagree
        student[i] = labels[(labels.index(teacher[i]) + 1) % len(labels)]
    sample = pd.DataFrame({"label": student, "teacher_label": teacher})
    snap = reports.quality_snapshot(sample, datetime(2026, 11, 22, tzinfo=timezone.utc), {"run_id": "t"}, labels)
    numbers = reports.quality_numbers(snap)
    assert numbers["agreement"] == pytest.approx(50 / 60, abs=1e-6)


def test_a_lost_class_under_a_high_overall_agreement_is_named_in_the_summary_and_the_alert():
    """98 % overall agreement hides a spam recall of 0.17 against the teacher: the worst class is named."""
    from pipeline.monitor.alert import alert_payload
    from pipeline.monitor.summary import MonitorSummary
    from pipeline.monitor.verdict import MonitorVerdict, worst_classes

    teacher = ["ham"] * 288 + ["spam"] * 6 + ["other"] * 3
    student = ["ham"] * 288 + ["spam"] + ["ham"] * 5 + ["other"] * 3
    sample = pd.DataFrame({"label": student, "teacher_label": teacher})
    assert (sample["label"] == sample["teacher_label"]).mean() > 0.98
    worst = worst_classes(sample)
    # "other" has 3 rows (< 5): too few to name; spam is first, with its rows
    assert worst == [{"class": "spam", "agreement": pytest.approx(1 / 6, abs=1e-4), "rows": 6},
                     {"class": "ham", "agreement": 1.0, "rows": 288}]
    summary = MonitorSummary(run_id="t", window={"since": 0.0, "until": 1.0}, rows=297, rows_without_text=0,
                             model_versions=["v1"], report_path="reports/monitor.json",
                             teacher={"rows": 297, "agreement": 0.983, "worst_classes": worst},
                             verdict=MonitorVerdict(status="breach", breaches=[
                                 {"check": "teacher_agreement", "value": 0.983, "limit": 0.99}]))
    text = str(alert_payload(summary, "reports/monitor.json"))
    assert "worst classes against the teacher: spam 0.1667 (6 rows), ham 1 (288 rows)" in text
    assert worst_classes(sample.iloc[:0]) == []
