"""User-written suites (``suites/*.yaml``, ``suites/*.jsonl``): hand-picked cases with expected answers.

Each file is one suite ``user/<name>``; ``pass_rate`` is the share of its cases a model passes. Failing
cases are listed in the report with the file and line they come from.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate.suitefile import SAME_AS_TEACHER, case_passes, load_suites
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, suite


@suite("user")
def user(ctx: EvalContext) -> SuiteResult:
    labels = ctx.data.labels
    result = SuiteResult()
    failing: dict[str, list[dict]] = {}
    for s in load_suites(ctx.cfg.user.paths, ctx.root, labels):
        texts = [c.text for c in s.cases]
        answers = {model: [labels[i] for i in np.argmax(ctx.predict(model, texts), axis=1)] for model in ctx.models}
        needs_teacher = any(c.expect == SAME_AS_TEACHER for c in s.cases)
        teacher = answers.get(TEACHER) if needs_teacher else None
        name = f"user/{s.name}"
        result.metrics[name] = {}
        for model, said in answers.items():
            ok = [case_passes(c, a, teacher[i] if teacher else None) for i, (c, a) in enumerate(zip(s.cases, said))]
            result.metrics[name][model] = {"pass_rate": float(np.mean(ok)), "n": float(len(ok))}
            for c, a, good in zip(s.cases, said, ok):
                if not good:
                    failing.setdefault(name, []).append({
                        "model": model, "where": f"{s.path}:{c.line}", "text": c.text[:120], "answered": a,
                        "expected": f"not {c.expect_not}" if c.expect_not else c.expect})
        if ctx.cfg.user.min_pass_rate is not None:
            result.rules.append(Rule(name, "pass_rate", ">=", ctx.cfg.user.min_pass_rate))
        if ctx.cfg.user.teacher_tolerance is not None and TEACHER in answers:
            result.rules.append(Rule(name, "pass_rate", ">=", ctx.cfg.user.teacher_tolerance, vs_teacher=True))
    if failing:
        result.details["failing_cases"] = failing
    return result
