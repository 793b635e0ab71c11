"""The labels table: soft labels for every row, and its file ``data/labels.parquet``.

Every distinct text is looked up in the cache by (teacher fingerprint, sha256 of text); only the
missing ones go to the teacher (here or on Dask). Texts the teacher failed on are counted by reason and
left out of ``data/labels.parquet``; past ``label.max_failure_rate`` the stage fails.

    python -m pipeline.stages.label --data data/ingested.parquet --teacher-dir models/teacher \
        --out data/labels.parquet --metrics metrics/label.json
"""

from __future__ import annotations

import json
from collections import Counter
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.augment import augment_rows
from pipeline.config import Params
from pipeline.errors import DistillError
from pipeline.io import atomic_write_bytes, read_json
from pipeline.keys import text_key
from pipeline.label.calls import CallStats, cached_teacher_probs, label_missing
from pipeline.label.progress import Progress

log = logging.getLogger("distill.label")


class LabelingFailed(DistillError):
    """More texts failed to get a teacher label than ``label.max_failure_rate`` allows."""


def label_table(frame, params: Params, model_dir: str | Path, teacher=None, feedback=None, state_path=None):
    """Label ingested rows (+ augmented variants of transfer texts, + monitor feedback texts). Returns (labels frame,
    label names, metrics). ``feedback``: texts the monitor found student and teacher disagreeing on
    (``text`` column); they join the transfer set as split ``feedback``."""
    import pandas as pd

    from pipeline.teachers import load_teacher

    started = time.perf_counter()
    cfg = params.label
    teacher = teacher or load_teacher(params.teacher, model_dir)
    fingerprint = teacher.fingerprint
    _check_teacher_record(Path(model_dir), teacher)

    rows = frame[["id", "text", "split"]].assign(origin_id=None)
    rows["id"] = rows["id"].astype(str)
    sources = rows[rows["split"].isin(params.augment.splits)]
    aug, aug_counts = augment_rows(sources["id"].tolist(), sources["text"].tolist(), params.augment, params.seed)
    if aug:
        rows = pd.concat([rows, pd.DataFrame(aug)], ignore_index=True)
    feedback_rows = 0
    if feedback is not None and len(feedback):
        present = set(rows["text"])
        new = [t for t in dict.fromkeys(feedback["text"].astype(str)) if t not in present]
        feedback_rows = len(new)
        rows = pd.concat([rows, pd.DataFrame({"id": [f"fb-{text_key(t)[:16]}" for t in new], "text": new,
                                              "split": "feedback", "origin_id": None})], ignore_index=True)
    keys = [text_key(t) for t in rows["text"]]
    call_seconds = 0.0
    cpu_seconds: float | None = None

    def send(missing: list[tuple[str, str]], cache) -> CallStats:
        nonlocal call_seconds, cpu_seconds
        log.info("%d rows, %d distinct texts: %d for the teacher (%s)", len(rows), len(set(keys)), len(missing),
                 fingerprint)
        progress = Progress(len(missing), cfg.progress_every_s)
        call_started, cpu_started = time.perf_counter(), time.process_time()
        try:
            if cfg.dask.scheduler or cfg.dask.local_workers:
                from pipeline.label.scale import label_on_dask

                return label_on_dask(missing, params.teacher, model_dir, cfg, fingerprint, progress.advance)
            result = label_missing(teacher, missing, cache, cfg.batch_size, cfg.retries, progress.advance)
            cpu_seconds = time.process_time() - cpu_started  # this process's CPU (all threads); not Dask's workers
            return result
        finally:
            progress.close()
            call_seconds = time.perf_counter() - call_started

    plan = None
    if cfg.strategy == "active" or cfg.budget.calls is not None or cfg.budget.usd is not None:
        from pipeline.label.budgeted import label_within_budget

        plan = label_within_budget(rows, keys, params, teacher, send, state_path)
        found, stats, cached, sent = plan.found, plan.stats, plan.cached, plan.sent
        wanted = plan.wanted
    else:
        answers = cached_teacher_probs(teacher, rows["text"], cfg.cache_dir, send=send)
        found, stats, cached, sent = answers.probs, answers.stats, answers.cached, answers.sent
        wanted = np.ones(len(rows), dtype=bool)
        if state_path is not None:  # the DVC output exists in every mode; no rounds without a budget
            from pipeline.io import write_json

            write_json(state_path, {"format": "distill-label-rounds/1", "strategy": "all", "rounds": []})

    has = np.array([k in found for k in keys])
    ok = has & wanted
    kept = rows[ok].reset_index(drop=True)
    probs = [found[k] for k, good in zip(keys, ok) if good]
    labels = list(teacher.labels)
    kept["probs"] = probs
    kept["pred"] = [labels[int(np.argmax(p))] for p in probs]
    kept["fingerprint"] = fingerprint
    failed_rows = int((wanted & ~has).sum())  # rows the budget left out are not failures
    metrics = {
        "rows": len(rows),
        "labeled_rows": len(kept),
        "distinct_texts": cached + sent,
        "cache_hits": cached,
        "cache_misses": sent,
        "teacher_calls": stats.calls,
        "texts_sent": stats.texts_sent,
        "texts_per_s": round(stats.labeled / call_seconds, 2) if stats.labeled and call_seconds > 0 else None,
        # CPU time of the teacher calls in this process (pipeline/cost.py prices it); null on Dask or all cached
        "cpu_seconds": round(cpu_seconds, 3) if cpu_seconds is not None else None,
        "failed_texts": len(stats.failed),
        "failed_rows": failed_rows,
        "failure_rate": failed_rows / max(int(wanted.sum()), 1),
        "failures_by_reason": stats.reasons(),
        "usage": stats.usage,
        # answers that were no label code, by their text (LLM teachers); the five most frequent
        "malformed_answers": dict(Counter(getattr(teacher, "malformed_answers", {})).most_common(5)),
        "fingerprint": fingerprint,
        "seconds": round(time.perf_counter() - started, 2),
        "feedback_rows": feedback_rows,
        "strategy": cfg.strategy,
        "left_out_by_budget": int((~wanted).sum()),
        **aug_counts,
    }
    from pipeline.label.cache import LabelCache

    with LabelCache(cfg.cache_dir) as ledger:
        # every run's spend on this teacher, killed runs included (the cache commits it with each batch)
        metrics["spend_all_runs"] = ledger.spend_totals(fingerprint)
    if plan is not None:
        metrics["budgeted"] = plan.summary
        metrics["rounds"] = plan.rounds
    log.info("label: %d hits, %d misses, %d teacher calls, %s texts/s, %d failed %s, usage %s",
             metrics["cache_hits"], metrics["cache_misses"], stats.calls, metrics["texts_per_s"],
             len(stats.failed), metrics["failures_by_reason"], metrics["usage"])
    return kept, labels, metrics


def _check_teacher_record(model_dir: Path, teacher) -> None:
    """Warn when models/teacher/teacher.json describes another teacher than the one just built."""
    path = model_dir / "teacher.json"
    if not path.exists():
        log.warning("%s not found: the teacher stage has not run for this teacher", path)
        return
    record = read_json(path)
    if record.get("fingerprint") != teacher.fingerprint:
        log.warning("teacher fingerprint %s differs from %s in %s (teacher code or files changed since the "
                    "teacher stage ran)", teacher.fingerprint, record.get("fingerprint"), path)


def write_labels(path: str | Path, kept, labels: list[str]) -> None:
    """Write data/labels.parquet per docs/contracts.md (probs as list<float32>, labels in metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    origin = kept["origin_id"].where(kept["origin_id"].notna(), None).tolist()
    table = pa.table({
        "id": pa.array(kept["id"].astype(str).tolist(), pa.string()),
        "text": pa.array(kept["text"].tolist(), pa.string()),
        "split": pa.array(kept["split"].tolist(), pa.string()),
        "origin_id": pa.array(origin, pa.string()),
        "probs": pa.array([np.asarray(p, dtype=np.float32) for p in kept["probs"]], pa.list_(pa.float32())),
        "pred": pa.array(kept["pred"].tolist(), pa.string()),
        "fingerprint": pa.array(kept["fingerprint"].tolist(), pa.string()),
    }).replace_schema_metadata({"labels": json.dumps(labels)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def write_rounds_csv(plots_dir: str | Path, metrics: dict) -> None:
    """``rounds.csv`` for ``dvc plots``: one row per labeling round (one row in total without rounds)."""
    import csv
    import io

    rounds = metrics.get("rounds") or [{"round": 0, "pool_labeled": metrics["labeled_rows"],
                                        "texts_sent": metrics["texts_sent"], "usd": metrics["usage"].get("cost_usd", 0.0),
                                        "val_agreement": None}]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["round", "pool_labeled", "texts_sent", "usd", "val_agreement"])
    for r in rounds:
        writer.writerow([r["round"], r["pool_labeled"], r["texts_sent"], r["usd"],
                         "" if r.get("val_agreement") is None else round(r["val_agreement"], 6)])
    Path(plots_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(plots_dir) / "rounds.csv", out.getvalue().encode())
