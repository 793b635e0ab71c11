"""Run the configured suites over the models and decide the gate (pure: no files read or written)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pipeline.evaluate.gate import Verdict, decide, merge_metrics
from pipeline.evaluate.predictors import check_same_labels
from pipeline.evaluate.suites import EvalContext, get
from pipeline.evaluate.suites.base import Metrics, Rule

log = logging.getLogger("distill.evaluate")


@dataclass
class Evaluation:
    verdict: Verdict
    metrics: Metrics
    rules: list[Rule]
    details: dict[str, Any]
    seconds: dict[str, float]


def evaluate_models(ctx: EvalContext) -> Evaluation:
    """Every suite in ``evaluate.suites`` on every model of ``ctx``, then the gate's verdict."""
    labels = check_same_labels(ctx.models)
    if labels != list(ctx.data.labels):
        from pipeline.evaluate.predictors import LabelMismatch

        raise LabelMismatch(f"models' labels {labels} differ from the data's labels {ctx.data.labels}")
    parts, rules, details, seconds = [], [], {}, {}
    for name in ctx.cfg.suites:
        started = time.perf_counter()
        result = get(name)(ctx)
        seconds[name] = round(time.perf_counter() - started, 3)
        parts.append(result.metrics)
        rules += result.rules
        details.update(result.details)
        log.info("suite %s: %d metric groups in %.1f s", name, len(result.metrics), seconds[name])
    metrics = merge_metrics(parts)
    verdict = decide(metrics, rules, ctx.cfg.gate_models, ctx.cfg.champion)
    return Evaluation(verdict=verdict, metrics=metrics, rules=rules, details=details, seconds=seconds)
