"""The run's headline numbers: what ``dvc metrics show``, ``dvc metrics diff`` and ``dvc exp show`` display,
in a row that fits a terminal (``metrics/summary.json``, written by the ``summary`` stage). Every stage's
full record stays in its own file (``metrics/<stage>.json``); this only picks from them.

| key | what | from |
|---|---|---|
| ``passed`` | the gate's verdict | evaluate |
| ``accuracy`` | int8 student, gold test split | evaluate |
| ``retention`` | ``accuracy`` over the teacher's, same texts | evaluate |
| ``agreement`` | int8 student with the teacher, test split | evaluate |
| ``size_mb`` | int8 model file | evaluate budgets |
| ``texts_s`` | int8 texts per second, featurization included | export |
| ``calls`` | requests the label stage sent the teacher (0 when the cache had every text) | label |
"""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 4):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return round(float(value), digits) if digits else int(round(value))


def summarize(label: dict[str, Any], export: dict[str, Any], evaluate: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers from the label, export and evaluate stages' records (None where one is missing)."""
    student, teacher = evaluate.get("gold.student_int8.accuracy"), evaluate.get("gold.teacher.accuracy")
    return {
        "passed": bool(evaluate.get("passed")),
        "accuracy": _num(student),
        "retention": _num(student / teacher) if student is not None and teacher else None,
        "agreement": _num(evaluate.get("agreement.student_int8.agreement")),
        "size_mb": _num(evaluate.get("budgets.student_int8.size_mb"), 2),
        "texts_s": _num((export.get("speed_int8") or {}).get("texts_per_s"), 0),
        "calls": label.get("teacher_calls"),
    }
