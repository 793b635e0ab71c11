"""params.yaml `canary` section: the traffic steps of a rollout and the thresholds each step is judged by.

Read by the release package (pipeline/release/canary.py) and the canary flow; docs/serving.md explains
the rollout.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline import outputs
from pipeline.config.base import Section


class CanaryConfig(Section):
    # Traffic share of the canary at each step; the last step must be 1.0 (all traffic) or below.
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0], min_length=1)
    # Canary-routed texts a step needs (in the prediction log) before it is judged.
    min_requests: int = Field(default=200, ge=1)
    # A step that has not seen min_requests after this long is judged "hold" (then rolled back).
    step_timeout_s: float = Field(default=600.0, gt=0)
    # How often the flow checks the prediction log for canary traffic (seconds).
    poll_s: float = Field(default=2.0, gt=0)
    # Longest wait for the server to serve a new step's weight (it follows the registry by polling);
    # traffic is counted for a step only once the server serves that step's weight.
    weight_timeout_s: float = Field(default=30.0, gt=0)
    # Where the flow reads the server's Prometheus metrics (canary error counts).
    server_url: str = "http://127.0.0.1:8000"
    # Thresholds each step must meet.
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    # A step rolls back as soon as the Wilson lower bound of its error rate, at this confidence, is above
    # max_error_rate: the errors alone prove the canary broken, however few requests it has seen.
    error_confidence: float = Field(default=0.99, gt=0.5, lt=1)
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
    # Where the teacher's fitted state lives (default: the teacher stage's output, as dvc.yaml names it).
    teacher_dir: str = Field(default_factory=lambda: str(outputs.path("teacher")))

    @field_validator("steps")
    @classmethod
    def _steps_in_range(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 1 for s in steps) or steps != sorted(steps):
            raise ValueError("canary steps must be increasing traffic shares in (0, 1]")
        return steps
