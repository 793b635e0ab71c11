"""Out-of-domain inputs: texts from other domains on which a model should not be confident.

A text passes when the model's top probability stays below ``ood.max_confidence`` or, when
``ood.abstain_label`` is set, when the model predicts that label. ``pass_rate`` is the share that passes.
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


@suite("ood")
def ood(ctx: EvalContext) -> SuiteResult:
    cfg = ctx.cfg.ood
    if cfg.abstain_label is not None and cfg.abstain_label not in ctx.data.labels:
        raise DataError(f"evaluate.ood.abstain_label {cfg.abstain_label!r} is not a label ({', '.join(ctx.data.labels)})")
    texts = read_ood_texts(ctx.root / cfg.path)
    result = SuiteResult()
    result.metrics["ood"] = {}
    for model in ctx.models:
        probs = ctx.predict(model, texts)
        result.metrics["ood"][model] = {
            "pass_rate": float(np.mean(ood_passes(probs, ctx.data.labels, cfg.max_confidence, cfg.abstain_label))),
            "mean_max_prob": float(np.mean(np.max(probs, axis=1))), "n": float(len(texts))}
    result.rules.append(Rule("ood", "pass_rate", ">=", cfg.min_pass_rate))
    return result
