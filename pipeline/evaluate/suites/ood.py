"""Out-of-domain inputs: texts from other domains on which a model should not be confident.

Two measures per model:

- ``recall``: the share of out-of-domain texts the model would reject when its max-probability
  threshold is set on in-domain texts (the held-out validation slice, else the test split) so that
  ``ood.in_domain_reject_rate`` of those fall below it. It compares models whatever their overall
  confidence, and is gated against the teacher's recall on the same texts (``ood.teacher_tolerance``);
  ``threshold`` is that max-probability cut.
- ``pass_rate``: the share whose top probability stays below ``ood.max_confidence`` (or that get
  ``ood.abstain_label`` when set), gated only when the user sets the absolute ``ood.min_pass_rate``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import DataError
from pipeline.evaluate.suites.base import EvalContext, Rule, SuiteResult, suite


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
    """(threshold, OOD recall): the max-probability cut below which ``rate`` of the in-domain texts fall,
    and the share of out-of-domain texts below it (ties at the cut count as kept, i.e. not rejected)."""
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
    for model in ctx.models:
        probs = ctx.predict(model, texts)
        cut, recall = recall_at_reject_rate(np.max(ctx.predict(model, in_domain), axis=1), np.max(probs, axis=1),
                                            cfg.in_domain_reject_rate)
        result.metrics["ood"][model] = {
            "recall": recall, "threshold": cut,
            "pass_rate": float(np.mean(ood_passes(probs, ctx.data.labels, cfg.max_confidence, cfg.abstain_label))),
            "mean_max_prob": float(np.mean(np.max(probs, axis=1))), "n": float(len(texts))}
    result.details["ood_in_domain_rows"] = len(in_domain)
    if cfg.teacher_tolerance is not None:
        result.rules.append(Rule("ood", "recall", ">=", cfg.teacher_tolerance, vs_teacher=True))
    if cfg.min_pass_rate is not None:
        result.rules.append(Rule("ood", "pass_rate", ">=", cfg.min_pass_rate))
    return result
