"""params.yaml `serve` section: the model server's limits, threads, registry polling and prediction log.

docs/serving.md explains each key; the canary rollout has its own section (pipeline/config/canary.py).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline import outputs
from pipeline.config.base import Section
from pipeline.config.teacher import TeacherConfig


class CascadeConfig(Section):
    """The serving cascade: the student answers, the teacher takes the texts the student is unsure of.

    A text whose calibrated top probability is below the cut goes to the teacher (through the label
    cache). When the teacher is slow, down, busy or over budget, the student's answer is returned and
    marked; serving never fails because of the teacher. docs/serving.md, Cascade.
    """

    # Turn the cascade on (off: the student answers everything, as before).
    enabled: bool = False
    # The teacher, configured as the `teacher` section is (null: that section itself).
    teacher: TeacherConfig | None = None
    # The teacher's fitted state (the teacher stage's output), e.g. the embedding head.
    teacher_dir: str = Field(default_factory=lambda: str(outputs.path("teacher")), min_length=1)
    # Label cache the teacher's answers go through (null: label.cache_dir).
    cache_dir: str | None = None
    # Confidence cut; null takes the one the evaluate stage fitted and stored in the bundle.
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # Most teacher calls in flight at once; a deferral beyond it is answered by the student ("busy").
    max_concurrency: int = Field(default=4, ge=1)
    # Longest wait for the teacher's answer (seconds); then the student's answer goes out ("timeout").
    timeout_s: float = Field(default=2.0, gt=0)
    # Most texts sent to the teacher per minute (cache hits are free); beyond it: "budget".
    texts_per_minute: int = Field(default=600, ge=1)
    # Consecutive teacher failures (errors, timeouts) that open the circuit breaker.
    breaker_failures: int = Field(default=5, ge=1)
    # Seconds the open breaker waits before one trial call (half-open); success closes it.
    breaker_reset_s: float = Field(default=30.0, gt=0)


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
    # Longest text accepted (characters; longer: 413); null: ingest.max_chars, the longest text the
    # pipeline trains on, so pipeline and server share one limit whichever sections a params file has.
    max_text_chars: int | None = Field(default=None, ge=1)
    # Request line plus headers longer than this are answered 431 and the connection closed (bytes).
    max_header_bytes: int = Field(default=16_384, ge=1_024)
    # A request whose head and body are not all received within this is answered 408 (seconds).
    read_timeout_s: float = Field(default=10.0, gt=0)
    # A connection that sends nothing for this long, before or between requests, is closed (seconds).
    idle_timeout_s: float = Field(default=5.0, gt=0)
    # Most open connections; beyond it uvicorn answers 503 and closes.
    max_connections: int = Field(default=1_024, ge=1)
    # Server processes on the one port (SO_REUSEPORT), each a whole server; 1: a single process. Set it
    # to the cores the server may use (docs/scaling.md); metrics and the prediction log cover them all.
    workers: int = Field(default=1, ge=1)
    # Concurrent predict requests on the same model are answered by one inference call of their texts
    # together, up to this many texts (1: one call per request). It adds no wait: a call takes what
    # queued while the previous one ran.
    micro_batch_texts: int = Field(default=256, ge=1)
    # Threads that run inference, off the event loop (health checks answer while they work).
    inference_threads: int = Field(default=1, ge=1)
    # Requests of at most this many characters (all texts together) run on the event loop: a fraction of
    # a millisecond, cheaper than the hand-off to an inference thread; 0 sends every request to them.
    inline_max_chars: int = Field(default=0, ge=0)
    # Most predict requests waiting for an inference thread; beyond it: 429 with Retry-After.
    max_pending: int = Field(default=128, ge=1)
    # true: a prediction is answered only once its prediction-log rows are committed (none lost on a
    # crash, at a cost in req/s, docs/serving.md); false: rows are written in the background.
    log_durable: bool = False
    # Model name of the Open Inference Protocol (V2) endpoints: /v2/models/<model_name>/infer.
    model_name: str = Field(default="distill", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # Text the server predicts before it swaps a freshly loaded model in.
    smoke_text: str = Field(default="smoke test: is this model able to answer?", min_length=1)
    # true: a text whose in-domain score is below the registered bundle's out-of-domain cut (fitted by the
    # evaluate stage so that evaluate.ood.in_domain_reject_rate of held-out texts fall below it) is
    # answered with label null and "abstained": "out_of_domain", and never sent to the cascade's teacher.
    ood_abstain: bool = False
    # With ood_abstain: answer this label instead of null (e.g. an "other" class your clients know).
    ood_abstain_label: str | None = None
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)

    @field_validator("prediction_log_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        from pipeline.config.registry import database_url

        return database_url(url)
