"""What serving and labeling cost, per 1M predictions, from numbers measured on this run.

- A model that runs here (the student, a local teacher) is priced by the CPU time it took:
  core-seconds per text x ``cost.usd_per_core_hour`` / 3600. Core-seconds per text come from a
  measurement: single-thread throughput (1 / texts per second), or the process CPU time of the label
  stage's teacher calls divided by the texts it labeled.
- A teacher behind an API is priced by what its calls cost: the tokens measured on this run x the prices
  in ``teacher.llm.price_per_1k_*``, per labeled text.
- The cascade costs the student on every request plus the teacher on the deferred share.

``distill bench``, the demo summary and the retrain flow's summary print :func:`cost_lines`.
docs/operations.md (Cost) explains the params and how to set a budget.
"""

from __future__ import annotations

from typing import Any

MILLION = 1_000_000


def cpu_usd_per_text(core_seconds_per_text: float | None, usd_per_core_hour: float) -> float | None:
    if core_seconds_per_text is None or core_seconds_per_text <= 0:
        return None
    return core_seconds_per_text * usd_per_core_hour / 3600.0


def teacher_usd_per_text(label_metrics: dict[str, Any], usd_per_core_hour: float) -> tuple[float | None, str]:
    """USD per text of the teacher from the label stage's metrics, and how it was priced."""
    usage = label_metrics.get("usage") or {}
    sent = label_metrics.get("texts_sent") or 0
    if "cost_usd" in usage and sent:  # a teacher behind an API: its prices x the tokens it used
        tokens = (usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)) / sent
        how = f"API prices x {tokens:,.0f} tokens per text measured in labeling"
        if not usage["cost_usd"]:
            how += " (the prices teacher.llm.price_per_1k_* are 0: set them)"
        return usage["cost_usd"] / sent, how
    cpu = label_metrics.get("cpu_seconds")
    labeled = label_metrics.get("cache_misses") or 0
    if cpu and labeled:
        return cpu_usd_per_text(cpu / labeled, usd_per_core_hour), \
            f"{cpu / labeled * 1000:.1f} CPU-ms per text measured in labeling"
    return None, "not measured on this run (every text came from the label cache)"


def cost_report(usd_per_core_hour: float, student_core_s: float | None, teacher_usd: float | None,
                teacher_how: str, deferral: float | None, label_metrics: dict[str, Any] | None = None,
                ) -> dict[str, Any]:
    """Per 1M predictions: the teacher alone, the student alone, the cascade at ``deferral``; plus labeling."""
    student = cpu_usd_per_text(student_core_s, usd_per_core_hour)
    per_m = lambda usd: None if usd is None else usd * MILLION  # noqa: E731
    report: dict[str, Any] = {
        "usd_per_core_hour": usd_per_core_hour,
        "per_million": {"teacher": per_m(teacher_usd), "student": per_m(student),
                        "cascade": (per_m(student + deferral * teacher_usd)
                                    if None not in (student, teacher_usd, deferral) else None)},
        "cascade_deferral": deferral,
        "teacher_priced_by": teacher_how,
        "student_priced_by": (f"{student_core_s * 1000:.3f} CPU-ms per text (1-thread throughput)"
                              if student_core_s else "not measured"),
    }
    pm = report["per_million"]
    if pm["teacher"] and pm["cascade"]:
        report["cascade_share_of_teacher"] = pm["cascade"] / pm["teacher"]
    if label_metrics:
        usage = label_metrics.get("usage") or {}
        report["labeling"] = {
            "teacher_calls": label_metrics.get("teacher_calls"), "texts_sent": label_metrics.get("texts_sent"),
            "saved_by_cache": label_metrics.get("cache_hits"),
            # pool rows the budget (and active selection within it) left for the teacher never to see
            "saved_by_selection": label_metrics.get("left_out_by_budget") or 0,
            "strategy": label_metrics.get("strategy", "all"),
            "usd": usage.get("cost_usd") if usage.get("cost_usd") is not None else
            (teacher_usd * (label_metrics.get("cache_misses") or 0) if teacher_usd is not None else None)}
    return report


def _usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def cost_lines(report: dict[str, Any]) -> list[str]:
    """The report as a few plain lines (markdown-friendly)."""
    pm = report["per_million"]
    lines = [f"cost per 1M predictions (at ${report['usd_per_core_hour']:.4g} per core-hour, cost.usd_per_core_hour): "
             f"teacher {_usd(pm['teacher'])}, student {_usd(pm['student'])}"
             + (f", cascade {_usd(pm['cascade'])} at {report['cascade_deferral']:.1%} deferred"
                if pm["cascade"] is not None else "")
             + (f" ({report['cascade_share_of_teacher']:.1%} of the teacher's)"
                if report.get("cascade_share_of_teacher") else "")]
    lines.append(f"  teacher priced by {report['teacher_priced_by']}; student by {report['student_priced_by']}")
    lab = report.get("labeling")
    if lab:
        lines.append(f"labeling: {lab['texts_sent'] or 0:,} texts sent in {lab['teacher_calls'] or 0:,} teacher calls "
                     f"({_usd(lab['usd'])}); {lab['saved_by_cache'] or 0:,} answered free by the label cache"
                     + (f"; {lab['saved_by_selection']:,} pool rows never sent (label.budget, strategy "
                        f"{lab['strategy']})" if lab.get("saved_by_selection") else ""))
    return lines


def pipeline_cost(root, params) -> dict[str, Any] | None:
    """The cost report of the stage outputs under ``root``: the label stage's teacher measurement, the
    export stage's student throughput, the evaluate stage's cascade deferral on the test split."""
    import json

    from pipeline import outputs

    def read(name: str) -> dict:
        path = outputs.path(name, root)
        return json.loads(path.read_text()) if path.is_file() else {}

    label, export, ev = read("label_metrics"), read("export_metrics"), read("evaluate_metrics")
    if not label and not export:
        return None
    speed = export.get("speed_int8") or {}
    threads = export.get("threads") or 1
    student_core_s = threads / speed["texts_per_s"] if speed.get("texts_per_s") else None
    teacher_usd, how = teacher_usd_per_text(label, params.cost.usd_per_core_hour)
    return cost_report(params.cost.usd_per_core_hour, student_core_s, teacher_usd, how,
                       ev.get("cascade.student_int8.deferred"), label)
