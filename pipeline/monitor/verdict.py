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
