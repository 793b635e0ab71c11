"""Scale labeling out on Dask: shards of the missing texts go to workers that share the label cache.

Each worker builds the teacher from (teacher config, model dir) once per process, re-checks the cache
for its shard (another run may have labeled it meanwhile) and labels the rest with the same
batch/retry logic as a local run, committing to the shared SQLite cache. The driver then reads every
label from the cache, so the result is identical to a local run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.config.label import LabelConfig
from pipeline.config.teacher import TeacherConfig
from pipeline.label.cache import LabelCache
from pipeline.label.calls import CallStats, label_missing

log = logging.getLogger("distill.label")

# Teachers built in this worker process, keyed by (config JSON, model dir): loading a model per shard
# would cost more than labeling it.
_WORKER_TEACHERS: dict[tuple[str, str], object] = {}


def _worker_teacher(teacher_cfg: TeacherConfig, model_dir: str):
    from pipeline.teachers import load_teacher

    key = (teacher_cfg.model_dump_json(), model_dir)
    if key not in _WORKER_TEACHERS:
        _WORKER_TEACHERS[key] = load_teacher(teacher_cfg, model_dir)
    return _WORKER_TEACHERS[key]


def label_shard(shard: Sequence[tuple[str, str]], teacher_cfg: TeacherConfig, model_dir: str, cfg: LabelConfig,
                fingerprint: str) -> CallStats:
    """Worker task: label the shard's texts the cache still lacks; returns the call statistics."""
    teacher = _worker_teacher(teacher_cfg, model_dir)
    if teacher.fingerprint != fingerprint:
        from pipeline.teachers import TeacherError

        raise TeacherError(f"worker built teacher {teacher.fingerprint}, driver expects {fingerprint}: "
                           f"workers must see the same model files and code as the driver")
    with LabelCache(cfg.cache_dir) as cache:
        have = cache.get_many(fingerprint, [key for key, _ in shard])
        todo = [(key, text) for key, text in shard if key not in have]
        return label_missing(teacher, todo, cache, cfg.batch_size, cfg.retries)


def label_on_dask(items: Sequence[tuple[str, str]], teacher_cfg: TeacherConfig, model_dir: str | Path,
                  cfg: LabelConfig, fingerprint: str, on_shard: Callable[[int], None] | None = None) -> CallStats:
    """Send shards of ``items`` to the configured Dask scheduler (or a LocalCluster) and gather stats."""
    from dask.distributed import Client, LocalCluster, as_completed

    cfg = cfg.model_copy(update={"cache_dir": str(Path(cfg.cache_dir).resolve())})
    model_dir = str(Path(model_dir).resolve())
    cluster = None
    if cfg.dask.scheduler:
        client = Client(cfg.dask.scheduler)
        log.info("labeling on Dask scheduler %s", cfg.dask.scheduler)
    else:
        cluster = LocalCluster(n_workers=cfg.dask.local_workers, threads_per_worker=cfg.dask.threads_per_worker,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
        log.info("labeling on a local Dask cluster of %d workers", cfg.dask.local_workers)
    stats = CallStats()
    try:
        shards = [list(items[i:i + cfg.dask.shard_size]) for i in range(0, len(items), cfg.dask.shard_size)]
        futures = client.map(label_shard, shards, teacher_cfg=teacher_cfg, model_dir=model_dir, cfg=cfg,
                             fingerprint=fingerprint, pure=False)
        sizes = {f.key: len(s) for f, s in zip(futures, shards)}
        for future in as_completed(futures):
            stats.merge(future.result())
            if on_shard is not None:
                on_shard(sizes[future.key])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return stats
