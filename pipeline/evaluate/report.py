"""The gate's outputs: reports/gate.json (everything), reports/gate.md (for people), metrics/evaluate.json (DVC).

Pure builders return dicts and strings; the stage writes them with :mod:`pipeline.io`.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.evaluate.gate import Check, Verdict
from pipeline.evaluate.suites.base import Metrics

MODEL_ORDER = ("teacher", "student_fp32", "student_int8", "champion")


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def _needs(c: Check) -> str:
    """What the threshold is: a fixed floor, or a reference value and a tolerance."""
    if c.kind == "threshold":
        return "threshold"
    sign = "-" if c.comparison == ">=" else "+"
    ref = "not scored" if c.reference is None else f"{c.reference:.4g}"
    whose = {"self": "own unperturbed value"}.get(c.kind, c.kind)
    return f"{whose} {ref} {sign} tolerance"


def check_text(c: Check) -> str:
    value = "missing" if c.value is None else f"{c.value:.4g}"
    margin = "" if c.margin is None else f", margin {c.margin:+.4g}"
    teacher = "" if c.teacher is None or c.kind == "teacher" else f", teacher {c.teacher:.4g}"
    return (f"{c.suite} {c.metric} [{c.model}] = {value}, needs {c.comparison} {c.threshold:.4g} "
            f"({_needs(c)}{teacher}{margin})")


def gate_json(verdict: Verdict, metrics: Metrics, details: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "distill-gate/1",
        "passed": verdict.passed,
        "failing": [check_text(c) for c in verdict.failing],
        "checks": [_round(c.to_dict()) for c in verdict.checks],
        "suites": _round(metrics),
        "details": _round(details),
        **info,
    }


def flat_metrics(verdict: Verdict, metrics: Metrics, main_model: str = "student_int8") -> dict[str, Any]:
    """A small flat dict for ``dvc metrics show``: the verdict plus the main model's numbers per suite."""
    out: dict[str, Any] = {"passed": verdict.passed, "checks": len(verdict.checks),
                           "failed_checks": len(verdict.failing)}
    for suite, by_model in metrics.items():
        for model, values in by_model.items():
            if model != main_model and not (suite in ("gold", "agreement") and model in ("teacher", "student_fp32")):
                continue
            for metric, value in values.items():
                if metric != "n":
                    out[f"{suite}.{model}.{metric}"] = _round(value)
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4g}"
    return str(value)


def _check_table(checks: list[Check]) -> list[str]:
    rows = ["| suite | metric | model | value | teacher | needs | margin | against | ok |", "|---" * 9 + "|"]
    for c in checks:
        margin = "-" if c.margin is None else f"{c.margin:+.4g}"
        rows.append(f"| {c.suite} | {c.metric} | {c.model} | {_cell(c.value)} | {_cell(c.teacher)} | "
                    f"{c.comparison} {_cell(c.threshold)} | {margin} | {_needs(c)} | {'yes' if c.passed else 'NO'} |")
    return rows


def gate_markdown(verdict: Verdict, metrics: Metrics, details: dict[str, Any], info: dict[str, Any],
                  data_docs: str | None = None) -> str:
    """The readable report: verdict, failing checks first, then one table per suite; ``data_docs`` is the
    link (relative to the report) to the validate stage's Great Expectations Data Docs."""
    lines = [f"# Gate: {'PASSED' if verdict.passed else 'FAILED'}", ""]
    lines.append(f"{len(verdict.checks)} checks, {len(verdict.failing)} failing. "
                 f"Gated models: {', '.join(info.get('gate_models', []))}.")
    if info.get("champion"):
        lines.append(f"Champion: {info['champion']}.")
    if data_docs:
        lines.append(f"Input data: the validate stage's [Great Expectations Data Docs]({data_docs}).")
    if verdict.failing:
        lines += ["", "## Failing checks", ""] + _check_table(verdict.failing)
    lines += ["", "## Checks", "",
              "Every check: the gated model's value, the teacher's on the same texts, what it needs and by "
              "how much it passes (margin > 0) or fails.", ""] + _check_table(verdict.checks)
    by_suite: dict[str, list[Check]] = {}
    for c in verdict.checks:
        by_suite.setdefault(c.suite, []).append(c)
    lines += ["", "## Suites"]
    for suite, by_model in metrics.items():
        models = [m for m in MODEL_ORDER if m in by_model] + [m for m in by_model if m not in MODEL_ORDER]
        names = sorted({k for v in by_model.values() for k in v}, key=lambda k: (k == "n", k))
        status = "ok" if all(c.passed for c in by_suite.get(suite, [])) else "FAIL"
        lines += ["", f"### {suite} ({status})", "", "| metric | " + " | ".join(models) + " |",
                  "|---" * (len(models) + 1) + "|"]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(_cell(by_model[m].get(name)) for m in models) + " |")
        rules = sorted({f"{c.metric} {c.comparison} {c.threshold:.4g}" for c in by_suite.get(suite, []) if c.kind == "threshold"})
        if rules:
            lines.append("")
            lines.append("Thresholds: " + "; ".join(rules))
    failing_cases = details.get("failing_cases") or {}
    if failing_cases:
        lines += ["", "## Failing user-suite cases", "", "| suite | model | where | text | answered | expected |",
                  "|---|---|---|---|---|---|"]
        for suite, cases in failing_cases.items():
            for case in cases[:50]:
                text = case["text"].replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {suite} | {case['model']} | {case['where']} | {text} | {case['answered']} | {case['expected']} |")
    recall = details.get("worst_class_recall") or {}
    if recall:
        lines += ["", "## Worst classes by recall against the teacher", "",
                  "Per class of the gold test split: the student's recall, the teacher's on the same rows, and the "
                  "margin gold.class_tolerance judges (the student's upper bound minus the teacher's recall).", "",
                  "| model | class | recall | teacher | margin | rows |", "|---|---|---|---|---|---|"]
        lines += [f"| {model} | {w['class']} | {w['recall']:.4g} | {w['teacher_recall']:.4g} | {w['margin']:+.4g} | "
                  f"{w['rows']} |" for model, rows in recall.items() for w in rows]
    worst = details.get("worst_classes") or {}
    if worst:
        lines += ["", "## Worst classes against the teacher", "",
                  "Per class of the teacher's answers on the test split: the share the student answers the same.", "",
                  "| model | class | agreement | rows |", "|---|---|---|---|"]
        lines += [f"| {model} | {w['class']} | {w['agreement']:.4g} | {w['rows']} |"
                  for model, rows in worst.items() for w in rows]
    misses = details.get("classes_teacher_misses") or {}
    if misses:
        models = [m for m in next(iter(misses.values())) if m != "rows"]
        lines += ["", "## Classes the teacher itself misses", "",
                  "The teacher finds fewer than half of these classes' gold test rows. Checks against the teacher "
                  "cannot tell a student that misses them too: label more of them, or set an absolute floor "
                  "(gold.min_class_recall).", "",
                  "| class | rows | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
        lines += [f"| {c} | {v['rows']} | " + " | ".join(f"{v[m]:.4g}" for m in models) + " |"
                  for c, v in misses.items()]
    if details.get("classes_too_small"):
        lines += ["", "Classes too small to judge per class (test rows): " +
                  ", ".join(f"{k} ({v})" for k, v in details["classes_too_small"].items())]
    if details.get("ood_not_judged"):
        lines += ["", "Out-of-domain not judged: " + str(details["ood_not_judged"])]
    if details.get("skipped_slices"):
        lines += ["", "Slices too small to judge (rows): " +
                  ", ".join(f"{k} ({v})" for k, v in details["skipped_slices"].items())]
    if details.get("temperature"):
        lines += ["", "Temperatures (fitted on " + str(details.get("temperature_fitted_on")) + "): " +
                  ", ".join(f"{k} {v:.3f}" for k, v in details["temperature"].items())]
    lines += cascade_lines(details.get("cascade"))
    return "\n".join(lines) + "\n"


def cascade_lines(record: Any) -> list[str]:
    """The serving cascade's cut and its accuracy-against-deferral curve (suite ``cascade``)."""
    if not isinstance(record, dict):
        return ["", f"Cascade: {record}"] if record else []
    held = record["heldout"]
    lines = ["", "## Cascade (student answers, teacher takes the least confident texts)", "",
             f"Cut {record['threshold']:.4g} on {record['model']}'s calibrated top probability, fitted on "
             f"{held['rows']} held-out rows: {held['deferred']:.1%} deferred there, {held['agreement']:.1%} "
             "agreement with the teacher. The server defers below it (serve.cascade)."]
    curve = record.get("curve") or []
    if curve:
        lines += ["", "Test split, each rate's cut fitted on the held-out rows:", "",
                  "| target deferral | deferred | accuracy | share of teacher's |", "|---|---|---|---|"]
        lines += [f"| {r['target_rate']:.0%} | {r['deferred']:.1%} | {r['accuracy']:.4f} | "
                  f"{_cell(r['retention'])} |" for r in curve]
    return lines
