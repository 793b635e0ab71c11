"""Robustness under generated perturbations (typos, casing, unicode noise, truncation, inserted junk).

For each configured perturbation, a seeded sample of test texts is perturbed, and each model is judged
against the teacher on the *same* perturbed texts:

- ``accuracy`` on the perturbed texts that carry a gold label: the student's (with
  ``perturbations.confidence``, its upper bound paired with the teacher's answers on the same rows,
  ``accuracy_paired_upper``) must reach the teacher's minus ``perturbations.teacher_tolerance``.
  A perturbation that hurts the teacher as much hurts nobody's verdict;
- without enough gold rows (``min_gold_rows``), ``invariance``, the share of perturbed texts where the
  student answers as the teacher does on them, must reach the student's own agreement with the teacher
  on the unperturbed texts (``clean_agreement``) minus the tolerance;
- an absolute ``min_invariance`` floor when the user sets one.

The teacher's own ``stability`` (its answer on perturbed vs original text) is reported for reference: a
perturbation that changes the meaning shows up there, not as a student fault.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate import perturb
from pipeline.evaluate.suites.base import SELF, TEACHER, EvalContext, Rule, SuiteResult, suite


def sample_rows(n: int, count: int, seed: int) -> np.ndarray:
    """``count`` seeded row indices out of ``n`` (all of them when there are no more), in order."""
    if n <= count:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


@suite("perturbations")
def perturbations(ctx: EvalContext) -> SuiteResult:
    cfg = ctx.cfg.perturbations
    result = SuiteResult()
    if TEACHER not in ctx.models:
        result.details["perturbations"] = "no teacher to compare against"
        return result
    for kind, kwargs in cfg.kinds.items():  # fail on a bad name or argument before any work
        perturb.check_kwargs(kind, kwargs)
    rows = sample_rows(len(ctx.data.test_texts), cfg.count, ctx.cfg.seed)
    if not len(rows):
        return result
    base = [ctx.data.test_texts[i] for i in rows]
    targets = np.asarray(ctx.data.test_targets)[rows]
    gold = targets >= 0
    by_gold = int(gold.sum()) >= cfg.min_gold_rows
    teacher_clean = ctx.predict(TEACHER, base)
    clean = {model: m.agreement(ctx.predict(model, base), teacher_clean) for model in ctx.models if model != TEACHER}
    examples = {}
    for kind, kwargs in cfg.kinds.items():
        changed = perturb.apply(kind, base, ctx.cfg.seed, **kwargs)
        teacher = ctx.predict(TEACHER, changed)
        name = f"perturb/{kind}"
        result.metrics[name] = {}
        for model in ctx.models:
            probs = teacher if model == TEACHER else ctx.predict(model, changed)
            entry = {"n": float(len(base))}
            if by_gold:
                entry["accuracy"] = m.accuracy(probs[gold], targets[gold])
            if model == TEACHER:
                entry["stability"] = m.agreement(teacher, teacher_clean)
            else:
                entry["invariance"] = m.agreement(probs, teacher)
                entry["clean_agreement"] = clean[model]
            if cfg.confidence is not None:
                if "accuracy" in entry:
                    entry["accuracy_upper"] = m.wilson_upper(entry["accuracy"], int(gold.sum()), cfg.confidence)
                    if model != TEACHER:
                        entry["accuracy_paired_upper"] = m.paired_accuracy_upper(
                            m.correct(probs[gold], targets[gold]), m.correct(teacher[gold], targets[gold]),
                            cfg.confidence)
                if "invariance" in entry:
                    entry["invariance_upper"] = m.wilson_upper(entry["invariance"], len(base), cfg.confidence)
            result.metrics[name][model] = entry
        upper = "_upper" if cfg.confidence is not None else ""
        if cfg.teacher_tolerance is not None:
            if by_gold:
                paired = "_paired_upper" if cfg.confidence is not None else ""
                result.rules.append(Rule(name, "accuracy" + paired, ">=", cfg.teacher_tolerance, vs_teacher=True,
                                         against_metric="accuracy"))
            else:
                result.rules.append(Rule(name, "invariance" + upper, ">=", cfg.teacher_tolerance, vs_teacher=True,
                                         against=SELF, against_metric="clean_agreement"))
        floor = cfg.min_invariance_by_kind.get(kind, cfg.min_invariance)
        if floor is not None:
            result.rules.append(Rule(name, "invariance", ">=", floor))
        examples[kind] = changed[0][:160]
    result.details["perturbation_examples"] = examples
    result.details["perturbation_judged_on"] = (f"accuracy on {int(gold.sum())} gold rows" if by_gold else
                                                f"agreement with the teacher ({int(gold.sum())} gold rows)")
    return result
