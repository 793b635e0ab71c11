"""params.yaml `label` section: how the teacher labels the data (batches, retries, cache, Dask)."""

from __future__ import annotations

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
    dask: DaskConfig = Field(default_factory=DaskConfig)
