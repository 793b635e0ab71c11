"""Budgets of the served student: model file size and p95 latency of one text at a time.

Latency is measured as a server sees it: ``predict_proba([text])`` per call, over ``latency_runs``
test texts after ``warmup_runs`` calls, wall-clock with ``time.perf_counter``.
"""

from __future__ import annotations



from pipeline.evaluate.suites.base import EvalContext, Rule, SuiteResult, suite


def p95_latency_ms(model, texts: list[str], runs: int, warmup: int) -> float:
    from pipeline.timing import latency_summary

    picked = [texts[i % len(texts)] for i in range(runs)]
    return latency_summary(model.predict_proba, picked, warmup)["p95_ms"]


@suite("budgets")
def budgets(ctx: EvalContext) -> SuiteResult:
    cfg = ctx.cfg.budgets
    result = SuiteResult()
    result.metrics["budgets"] = {}
    texts = ctx.data.test_texts or ["hello"]
    for model in cfg.models:
        if model not in ctx.models:
            continue
        entry = {"p95_latency_ms": p95_latency_ms(ctx.models[model], texts, cfg.latency_runs, cfg.warmup_runs)}
        path = ctx.bundle_files.get(model)
        if path is not None and path.exists():
            entry["size_mb"] = path.stat().st_size / 1e6
        result.metrics["budgets"][model] = entry
    models = tuple(m for m in cfg.models if m in ctx.models)
    result.rules += [Rule("budgets", "p95_latency_ms", "<=", cfg.max_p95_ms, models),
                     Rule("budgets", "size_mb", "<=", cfg.max_size_mb, models)]
    return result
