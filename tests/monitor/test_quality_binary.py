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
