"""params.yaml `label` section: how the teacher labels the data (batches, retries, cache, Dask)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section


class DaskConfig(Section):
    """Scale-out of the missing teacher calls. Neither key set: label in this process."""

    # Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.
    scheduler: str | None = None
    # Start a LocalCluster with this many worker processes (ignored when scheduler is set).
    local_workers: int | None = Field(default=None, ge=1)
    # Threads of each local Dask worker process.
    threads_per_worker: int = Field(default=1, ge=1)
    # Missing texts per task sent to a worker.
    shard_size: int = Field(default=256, ge=1)


class BudgetConfig(Section):
    """The most the label stage may spend on the teacher (cache hits are free). Both null: no limit.

    The gold rows, the distill stage's validation slice and the test split are labeled first (training,
    early stopping and the gate need them); the rest of the budget goes to the transfer pool.
    """

    # Most texts sent to the teacher (an LLM teacher makes one request per text).
    calls: int | None = Field(default=None, ge=1)
    # Most USD spent, from the LLM teacher's measured tokens and teacher.llm.price_per_1k_* prices.
    usd: float | None = Field(default=None, gt=0)


class ActiveConfig(Section):
    """``label.strategy: active``: rounds of a quick student choosing which pool texts the teacher labels."""

    # Share of the pool labeled at random (seeded) before the first student exists.
    initial_share: float = Field(default=0.05, gt=0.0, le=1.0)
    # Share of the pool chosen per round.
    round_share: float = Field(default=0.05, gt=0.0, le=1.0)
    # The quick student is the distill section's student, featurizer and losses, trained each round on its
    # own short schedule (so a change of distill's schedule does not re-run labeling).
    # Learning rate of the quick student.
    lr: float = Field(default=0.02, gt=0.0)
    # Texts per training step of the quick student.
    batch_size: int = Field(default=64, ge=1)
    # Epochs of the quick student;
    # a third of distill's default 30 (at 3, the first round's student agreed with the teacher on under
    # half of the validation rows: too weak to know what it does not know).
    epochs: int = Field(default=10, ge=1)
    # Diversity: a round picks from this many times its size of the most uncertain texts, spread
    # round-robin over the classes the student predicts for them (one round is not one confusion pair).
    candidates: int = Field(default=3, ge=1)
    # Stop after this many rounds without a gain of min_gain in validation agreement with the teacher.
    patience: int = Field(default=2, ge=1)
    # Smallest gain in validation agreement that counts as progress for patience.
    min_gain: float = Field(default=0.002, ge=0.0)


class LabelConfig(Section):
    # Content-addressed label cache (SQLite); lives outside DVC outputs so it survives re-runs.
    cache_dir: str = ".cache/labels"
    # Texts per teacher call; also the unit committed to the cache (a crash loses at most one batch).
    batch_size: int = Field(default=32, ge=1)
    # Extra attempts for a batch whose answer is malformed or raised a TeacherError.
    retries: int = Field(default=2, ge=0)
    # The stage fails when more than this share of the texts could not be labeled.
    max_failure_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    # Seconds between progress log lines when stderr is not a terminal.
    progress_every_s: float = Field(default=10.0, gt=0)
    # Ingested rows read, labeled and written at a time (strategy all without a budget), so memory holds
    # one chunk of a large table; budgeted and active labeling choose across the whole pool at once.
    chunk_rows: int = Field(default=262_144, ge=1)
    dask: DaskConfig = Field(default_factory=DaskConfig)
    # Which pool texts go to the teacher: all of them, or those a quick student is least sure of (rounds).
    strategy: Literal["all", "active"] = "all"
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    active: ActiveConfig = Field(default_factory=ActiveConfig)
