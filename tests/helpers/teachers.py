"""Fast ``python`` teachers for label-stage tests. Each call appends one line per text to the file named
by ``DISTILL_TEST_CALL_LOG`` (when set), so tests count exactly which texts reached the teacher, across
processes (Dask workers, killed runs)."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

LABELS = ["billing", "delivery", "other"]
# Token/cost counters, read by the label stage like an API teacher's usage.
USAGE = {"texts": 0, "cost_usd": 0.0}


def _record(texts: list[str]) -> None:
    USAGE["texts"] += len(texts)
    USAGE["cost_usd"] += 0.001 * len(texts)
    path = os.environ.get("DISTILL_TEST_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(hashlib.sha256(t.encode()).hexdigest() + "\n" for t in texts))
    delay = float(os.environ.get("DISTILL_TEST_DELAY_S", "0"))
    if delay:
        time.sleep(delay)


def _probs(text: str) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:3], dtype=np.uint8).astype(np.float64)
    e = np.exp(raw / 64.0)
    return e / e.sum()


def hashed(texts: list[str]) -> np.ndarray:
    """Deterministic probabilities derived from each text's hash."""
    _record(texts)
    return np.stack([_probs(t) for t in texts]) if texts else np.zeros((0, 3))


def malformed(texts: list[str]) -> np.ndarray:
    """Like ``hashed``, but a text containing NAN gives a NaN row, SUM a row summing to 2, and SHAPE
    makes the whole answer one column short."""
    probs = hashed(texts)
    for i, t in enumerate(texts):
        if "NAN" in t:
            probs[i] = np.nan
        elif "SUM" in t:
            probs[i] = probs[i] * 2
    if any("SHAPE" in t for t in texts):
        return probs[:, :2]
    return probs
