"""Invariance under generated perturbations (typos, casing, unicode noise, truncation, inserted junk).

For each configured perturbation, a seeded sample of test texts is perturbed; a student passes a text
when its answer on the perturbed text matches the teacher's answer on the *same* perturbed text
(``invariance``). The teacher's own ``stability`` (its answer on perturbed vs original text) is
reported for reference: a perturbation that changes the meaning shows up there, not as a student fault.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate import perturb
from pipeline.evaluate.suites.base import TEACHER, EvalContext, Rule, SuiteResult, suite


def sample_texts(texts: list[str], count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    if len(texts) <= count:
        return list(texts)
    return [texts[i] for i in sorted(rng.choice(len(texts), size=count, replace=False))]


@suite("perturbations")
def perturbations(ctx: EvalContext) -> SuiteResult:
    cfg = ctx.cfg.perturbations
    result = SuiteResult()
    if TEACHER not in ctx.models:
        result.details["perturbations"] = "no teacher to compare against"
        return result
    for kind, kwargs in cfg.kinds.items():  # fail on a bad name or argument before any work
        perturb.check_kwargs(kind, kwargs)
    base = sample_texts(ctx.data.test_texts, cfg.count, ctx.cfg.seed)
    if not base:
        return result
    teacher_clean = ctx.predict(TEACHER, base)
    examples = {}
    for kind, kwargs in cfg.kinds.items():
        changed = perturb.apply(kind, base, ctx.cfg.seed, **kwargs)
        teacher = ctx.predict(TEACHER, changed)
        name = f"perturb/{kind}"
        result.metrics[name] = {}
        for model in ctx.models:
            entry = {"n": float(len(base))}
            if model == TEACHER:
                entry["stability"] = m.agreement(teacher, teacher_clean)
            else:
                entry["invariance"] = m.agreement(ctx.predict(model, changed), teacher)
            result.metrics[name][model] = entry
        result.rules.append(Rule(name, "invariance", ">=", cfg.min_invariance_by_kind.get(kind, cfg.min_invariance)))
        examples[kind] = changed[0][:160]
    result.details["perturbation_examples"] = examples
    return result
