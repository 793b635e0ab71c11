"""Out-of-domain inputs: texts from other domains that a model should set apart from its own.

Each model scores how in-domain a text is: a student bundle by its in-domain score (logsumexp of its raw
logits, ``pipeline.bundle.in_domain_score``), any other model (the teacher: an API gives probabilities
only) by its top probability. On the project's suite the in-domain score rejected 100 % of the generic
out-of-domain lines on BANKING77 where the top probability rejected 82 %, at the same in-domain rate.

- ``recall``: the share of out-of-domain texts below the model's threshold, the cut set on in-domain
  texts (the held-out validation slice, else the test split) so that ``ood.in_domain_reject_rate`` of
  them fall below it. It compares models whatever their overall confidence, and is gated against the
  teacher's recall on the same texts (``ood.teacher_tolerance``); ``threshold`` is that cut, and the
  served student's cut goes to models/calibration.json, the registered bundle and the server
  (``serve.ood_abstain``).
- ``pass_rate``: the share whose top probability stays below ``ood.max_confidence`` (or that get
  ``ood.abstain_label`` when set), gated only when the user sets the absolute ``ood.min_pass_rate``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.errors import DataError
from pipeline.evaluate.suites.base import EvalContext, Rule, SuiteResult, suite

log = logging.getLogger("distill.evaluate")


def read_ood_texts(path: Path) -> list[str]:
    """One text per line; blank lines and lines starting with '#' are skipped."""
    if not path.is_file():
        raise DataError(f"{path}: out-of-domain suite not found (evaluate.ood.path)")
    texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t and not t.startswith("#")]
    if not texts:
        raise DataError(f"{path}: out-of-domain suite has no texts")
    return texts


def ood_passes(probs: np.ndarray, labels: list[str], max_confidence: float, abstain_label: str | None) -> np.ndarray:
    if abstain_label is not None:
        return np.array([labels[i] == abstain_label for i in np.argmax(probs, axis=1)])
    return np.max(probs, axis=1) < max_confidence


def recall_at_reject_rate(in_domain_max: np.ndarray, ood_max: np.ndarray, rate: float) -> tuple[float, float]:
    """(threshold, OOD recall): the score cut below which ``rate`` of the in-domain texts fall, and the
    share of out-of-domain texts below it (ties at the cut count as kept, i.e. not rejected)."""
    if len(in_domain_max) == 0 or len(ood_max) == 0:
        return float("nan"), float("nan")
    cut = float(np.quantile(in_domain_max, rate, method="lower"))
    return cut, float(np.mean(ood_max < cut))


@suite("ood")
def ood(ctx: EvalContext) -> SuiteResult:
    cfg = ctx.cfg.ood
    if cfg.abstain_label is not None and cfg.abstain_label not in ctx.data.labels:
        raise DataError(f"evaluate.ood.abstain_label {cfg.abstain_label!r} is not a label ({', '.join(ctx.data.labels)})")
    texts = read_ood_texts(ctx.root / cfg.path)
    in_domain = ctx.data.heldout_texts or ctx.data.test_texts
    result = SuiteResult()
    result.metrics["ood"] = {}
    kinds = {}
    for model in ctx.models:
        probs = ctx.predict(model, texts)
        in_max, ood_max = np.max(ctx.predict(model, in_domain), axis=1), np.max(probs, axis=1)
        scorer = getattr(ctx.models[model], "ood_score", None)
        kinds[model] = "max_prob" if scorer is None else "in_domain_score"
        in_scores, ood_scores = (in_max, ood_max) if scorer is None else (scorer(in_domain), scorer(texts))
        cut, recall = recall_at_reject_rate(np.asarray(in_scores), np.asarray(ood_scores), cfg.in_domain_reject_rate)
        result.metrics["ood"][model] = {
            "recall": recall, "threshold": cut,
            "pass_rate": float(np.mean(ood_passes(probs, ctx.data.labels, cfg.max_confidence, cfg.abstain_label))),
            "mean_max_prob": float(np.mean(ood_max)), "n": float(len(texts))}
        if scorer is not None:  # the top probability's recall beside it, for the report: why this score
            result.metrics["ood"][model]["recall_max_prob"] = recall_at_reject_rate(
                in_max, ood_max, cfg.in_domain_reject_rate)[1]
    result.details["ood_in_domain_rows"] = len(in_domain)
    result.details["ood_score"] = kinds
    judged = len(in_domain) >= cfg.min_in_domain_rows
    served = next((m for m in ("student_int8", "student_fp32") if kinds.get(m) == "in_domain_score"), None)
    if not judged:
        why = (f"{len(in_domain)} held-out in-domain texts, fewer than ood.min_in_domain_rows "
               f"({cfg.min_in_domain_rows}): recall reported, not judged; no cut for serving")
        result.details["ood_not_judged"] = why
        log.warning("ood: %s", why)
    elif served is not None and np.isfinite(result.metrics["ood"][served]["threshold"]):
        result.details["ood"] = {"model": served, "score": "in_domain_score",
                                 "threshold": result.metrics["ood"][served]["threshold"],
                                 "in_domain_reject_rate": cfg.in_domain_reject_rate,
                                 "recall": result.metrics["ood"][served]["recall"]}
    if judged and cfg.teacher_tolerance is not None:
        result.rules.append(Rule("ood", "recall", ">=", cfg.teacher_tolerance, vs_teacher=True))
    if cfg.min_pass_rate is not None:
        result.rules.append(Rule("ood", "pass_rate", ">=", cfg.min_pass_rate))
    return result
