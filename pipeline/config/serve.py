"""params.yaml `serve` section: the model server's limits, threads, registry polling and prediction log.

docs/serving.md explains each key; the canary rollout has its own section (pipeline/config/canary.py).
"""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class ServeConfig(Section):
    # Prediction log database (env DISTILL_PREDICTION_LOG_URL overrides); see pipeline/predlog.py.
    prediction_log_url: str = Field(default="sqlite:///.distill/predictions.db", min_length=1)
    # Privacy: false keeps only the sha256 of each text in the prediction log.
    log_text: bool = True
    # Bounded queue between requests and the log writer; a full queue drops (and counts) rows.
    log_queue_size: int = Field(default=50_000, ge=1)
    # Most rows the prediction-log writer inserts in one transaction.
    log_batch_size: int = Field(default=500, ge=1)
    # Longest wait before the writer flushes a partial batch (seconds).
    log_flush_s: float = Field(default=0.2, gt=0)
    # How often the server asks the registry whether an alias changed (one primary-key read).
    poll_interval_s: float = Field(default=1.0, gt=0)
    # onnxruntime intra-op threads per session (the request path runs one inference at a time).
    threads: int = Field(default=1, ge=1)
    # Input limits: each breach answers 413/422 with a message naming the limit.
    max_body_bytes: int = Field(default=1_000_000, ge=64)
    # Most texts in one predict request (more: 413).
    max_batch: int = Field(default=64, ge=1)
    # Longest text accepted (characters; longer: 413).
    max_text_chars: int = Field(default=10_000, ge=1)
    # Text the server predicts before it swaps a freshly loaded model in.
    smoke_text: str = Field(default="smoke test: is this model able to answer?", min_length=1)
