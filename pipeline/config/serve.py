"""params.yaml `serve` and `canary` sections: the model server and the canary rollout flow.

``serve`` fixes the server's limits, threads, registry polling and prediction log; ``canary`` fixes
the traffic steps and the thresholds each step is judged by (docs/serving.md explains both).
"""

from __future__ import annotations

from pydantic import Field, field_validator

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


class CanaryConfig(Section):
    # Traffic share of the canary at each step; the last step must be 1.0 (all traffic) or below.
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0], min_length=1)
    # Canary-routed texts a step needs (in the prediction log) before it is judged.
    min_requests: int = Field(default=200, ge=1)
    # A step that has not seen min_requests after this long is judged "hold" (then rolled back).
    step_timeout_s: float = Field(default=600.0, gt=0)
    # How often the flow checks the prediction log for canary traffic (seconds).
    poll_s: float = Field(default=2.0, gt=0)
    # Where the flow reads the server's Prometheus metrics (canary error counts).
    server_url: str = "http://127.0.0.1:8000"
    # Thresholds each step must meet.
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    # Highest canary p95 latency a step may show.
    max_p95_ms: float = Field(default=50.0, gt=0)
    # Highest canary p99 latency a step may show.
    max_p99_ms: float = Field(default=100.0, gt=0)
    # Lowest share of canary texts on which canary and stable agree.
    min_stable_agreement: float = Field(default=0.8, ge=0, le=1)
    # Lowest share of the sampled canary texts on which the canary agrees with the teacher.
    min_teacher_agreement: float = Field(default=0.8, ge=0, le=1)
    # Canary-routed texts per step sent to the teacher (through the label cache); 0 skips the check.
    teacher_sample: int = Field(default=50, ge=0)
    # Where the teacher's fitted state lives (stage teacher's output).
    teacher_dir: str = "models/teacher"

    @field_validator("steps")
    @classmethod
    def _steps_in_range(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 1 for s in steps) or steps != sorted(steps):
            raise ValueError("canary steps must be increasing traffic shares in (0, 1]")
        return steps
