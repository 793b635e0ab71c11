"""How distill times a predictor: one definition of throughput and single-text latency.

Every predictor is a function of a list of texts (featurization included, as serving sees it). Export's
speed record, the gate's latency budget, ``distill bench`` and benchmarks/ all time through here, so
their numbers mean the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

Predict = Callable[[list[str]], object]


def throughput(fn: Predict, texts: Sequence[str], batch: int) -> float:
    """Texts per second over ``texts`` in batches of ``batch``, after one warm-up batch."""
    texts = list(texts)
    fn(texts[:batch])
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - started)


def latencies_ms(fn: Predict, texts: Sequence[str], warmup: int = 0) -> np.ndarray:
    """Wall-clock milliseconds of one call per text (``fn([text])``), after ``warmup`` untimed calls."""
    texts = list(texts)
    for text in texts[:warmup]:
        fn([text])
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        started = time.perf_counter()
        fn([text])
        out[i] = (time.perf_counter() - started) * 1000.0
    return out


def latency_summary(fn: Predict, texts: Sequence[str], warmup: int = 0) -> dict[str, float]:
    """p50 / p95 / p99 single-text latency in milliseconds."""
    lat = latencies_ms(fn, texts, warmup)
    return {f"p{q}_ms": float(np.percentile(lat, q)) for q in (50, 95, 99)}
