"""Thresholds (``monitor.thresholds``) applied to one run's numbers: a list of breaches, or none."""

from __future__ import annotations

from typing import Any

from pipeline.monitor.descriptors import DESCRIPTORS
from pipeline.monitor.summary import MonitorSummary, MonitorVerdict


def judge(summary: MonitorSummary, thresholds) -> MonitorVerdict:
    """``status`` is ``ok``, ``breach`` or ``insufficient_data``; ``breaches`` says which limit and by how much."""
    rows = summary.rows
    if rows < thresholds.min_rows:
        return MonitorVerdict("insufficient_data", [],
                              f"{rows} rows with text in the window, fewer than min_rows={thresholds.min_rows}")
    breaches: list[dict[str, Any]] = []
    drift = summary.drift
    if drift["drift_share"] > thresholds.drift_share_ceiling:
        breaches.append({"check": "drift_share", "value": drift["drift_share"], "limit": thresholds.drift_share_ceiling,
                         "columns": sorted(c for c, v in drift["columns"].items() if v["drifted"])})
    for name in DESCRIPTORS:
        col = drift["columns"].get(name)
        if col and col["p_value"] and col["score"] < thresholds.descriptor_p_value:
            breaches.append({"check": f"descriptor_drift:{name}", "value": col["score"],
                             "limit": thresholds.descriptor_p_value})
    teacher = summary.teacher
    if teacher["rows"] >= thresholds.min_teacher_rows and teacher["agreement"] < thresholds.agreement_floor:
        breaches.append({"check": "teacher_agreement", "value": teacher["agreement"], "limit": thresholds.agreement_floor})
    return MonitorVerdict("breach" if breaches else "ok", breaches)


def worst_classes(labeled, min_rows: int = 5, count: int = 3) -> list[dict]:
    """Per class of the teacher's answers on the teacher-labeled sample: the share the student answered the
    same. The ``count`` lowest of the classes with at least ``min_rows`` rows, worst first; an overall
    agreement of 0.98 can hide a class the student has lost (a spam recall of 0.17 against the teacher)."""
    if not len(labeled):
        return []
    same = (labeled["label"] == labeled["teacher_label"]).groupby(labeled["teacher_label"])
    table = same.agg(["mean", "size"])
    table = table[table["size"] >= min_rows].sort_values(["mean", "size"], ascending=[True, False])
    return [{"class": str(name), "agreement": round(float(row["mean"]), 4), "rows": int(row["size"])}
            for name, row in table.head(count).iterrows()]
