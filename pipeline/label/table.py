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
import os
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


def label_table(frame, params: Params, model_dir: str | Path, teacher=None, feedback=None, state_path=None,
                on_rows=None):
    """Label ingested rows (+ augmented variants of transfer texts, + monitor feedback texts). Returns (labels frame,
    label names, metrics). ``feedback``: texts the monitor found student and teacher disagreeing on
    (``text`` column); they join the transfer set as split ``feedback``.

    ``frame`` is one table or an iterable of chunks of it (columns id, text, split). With strategy ``all``
    and no budget, chunks are labeled one at a time, each followed by its augmented variants (feedback
    rows follow the last chunk), and ``on_rows`` (when given) takes each chunk's labeled rows instead of
    the returned frame, which is then None: memory holds one chunk. One chunk gives exactly what one table
    does. Budgeted and active labeling choose across the whole pool, so they join the chunks first.
    """
    import pandas as pd

    from pipeline.teachers import load_teacher

    started = time.perf_counter()
    cfg = params.label
    teacher = teacher or load_teacher(params.teacher, model_dir)
    fingerprint = teacher.fingerprint
    _check_teacher_record(Path(model_dir), teacher)
    chunks = [frame] if isinstance(frame, pd.DataFrame) else frame
    budgeted = cfg.strategy == "active" or cfg.budget.calls is not None or cfg.budget.usd is not None
    if budgeted:
        chunks = [pd.concat(list(chunks), ignore_index=True)]
    pending = None
    if feedback is not None and len(feedback):
        pending = dict.fromkeys(feedback["text"].astype(str))  # in order; texts met in the data drop out
    totals = Counter()
    timing = {"call": 0.0, "cpu": None}
    all_stats = CallStats()
    parts = []
    aug_counts = {"augmented_rows": 0, "augment_duplicates": 0}
    chunks = iter(chunks)
    chunk = next(chunks, None)
    if chunk is None:
        chunk = pd.DataFrame({"id": [], "text": [], "split": []})
    while chunk is not None:
        # feedback joins the last chunk, so only then is the next chunk read before this one is labeled
        following = next(chunks, None) if pending else _Later(chunks)
        rows = chunk[["id", "text", "split"]].assign(origin_id=None)
        chunk = None  # rows is a copy: the chunk is not held while it is labeled
        rows["id"] = rows["id"].astype(str)
        sources = rows[rows["split"].isin(params.augment.splits)]
        aug, counts = augment_rows(sources["id"].tolist(), sources["text"].tolist(), params.augment, params.seed)
        for key, value in counts.items():
            aug_counts[key] += value
        if aug:
            rows = pd.concat([rows, pd.DataFrame(aug)], ignore_index=True)
        if pending:
            for text in rows["text"]:
                pending.pop(text, None)
        if pending and following is None:
            new = list(pending)
            totals["feedback_rows"] += len(new)
            rows = pd.concat([rows, pd.DataFrame({"id": [f"fb-{text_key(t)[:16]}" for t in new], "text": new,
                                                  "split": "feedback", "origin_id": None})], ignore_index=True)
        kept, plan = _label_rows(rows, params, teacher, model_dir, state_path, budgeted, totals, timing, all_stats)
        if on_rows is not None:
            on_rows(kept)
        else:
            parts.append(kept)
        chunk = following.get() if isinstance(following, _Later) else following

    labels = list(teacher.labels)
    stats = all_stats
    call_seconds = timing["call"]
    metrics = {
        "rows": totals["rows"],
        "labeled_rows": totals["labeled_rows"],
        "distinct_texts": totals["cached"] + totals["sent"],
        "cache_hits": totals["cached"],
        "cache_misses": totals["sent"],
        "teacher_calls": stats.calls,
        "texts_sent": stats.texts_sent,
        "texts_per_s": round(stats.labeled / call_seconds, 2) if stats.labeled and call_seconds > 0 else None,
        # CPU time of the teacher calls in this process (pipeline/cost.py prices it); null on Dask or all cached
        "cpu_seconds": round(timing["cpu"], 3) if timing["cpu"] is not None else None,
        "failed_texts": len(stats.failed),
        "failed_rows": totals["failed_rows"],
        "failure_rate": totals["failed_rows"] / max(totals["wanted"], 1),
        "failures_by_reason": stats.reasons(),
        "usage": stats.usage,
        # answers that were no label code, by their text (LLM teachers); the five most frequent
        "malformed_answers": dict(Counter(getattr(teacher, "malformed_answers", {})).most_common(5)),
        "fingerprint": fingerprint,
        "seconds": round(time.perf_counter() - started, 2),
        "feedback_rows": totals["feedback_rows"],
        "strategy": cfg.strategy,
        "left_out_by_budget": totals["left_out"],
        **aug_counts,
    }
    from pipeline.label.cache import LabelCache

    with LabelCache(cfg.cache_dir) as ledger:
        # every run's spend on this teacher, killed runs included (the cache commits it with each batch)
        metrics["spend_all_runs"] = ledger.spend_totals(fingerprint)
    if plan is not None:
        metrics["budgeted"] = plan.summary
        metrics["rounds"] = plan.rounds
    elif state_path is not None:  # the DVC output exists in every mode; no rounds without a budget
        from pipeline.io import write_json

        write_json(state_path, {"format": "distill-label-rounds/1", "strategy": "all", "rounds": []})
    log.info("label: %d hits, %d misses, %d teacher calls, %s texts/s, %d failed %s, usage %s",
             metrics["cache_hits"], metrics["cache_misses"], stats.calls, metrics["texts_per_s"],
             len(stats.failed), metrics["failures_by_reason"], metrics["usage"])
    kept = None if on_rows is not None else (parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True))
    return kept, labels, metrics


class _Later:
    """The next chunk, read only when asked for."""

    def __init__(self, chunks):
        self.chunks = chunks

    def get(self):
        return next(self.chunks, None)


def _label_rows(rows, params: Params, teacher, model_dir, state_path, budgeted: bool, totals: Counter,
                timing: dict, all_stats: CallStats):
    """Teacher probabilities for one chunk of rows; adds its counts to ``totals``, ``timing`` and ``all_stats``."""
    cfg = params.label
    fingerprint = teacher.fingerprint
    keys = [text_key(t) for t in rows["text"]]

    def send(missing: list[tuple[str, str]], cache) -> CallStats:
        log.info("%d rows, %d distinct texts: %d for the teacher (%s)", len(rows), len(set(keys)), len(missing),
                 fingerprint)
        progress = Progress(len(missing), cfg.progress_every_s)
        call_started, cpu_started = time.perf_counter(), time.process_time()
        try:
            if cfg.dask.scheduler or cfg.dask.local_workers:
                from pipeline.label.scale import label_on_dask

                return label_on_dask(missing, params.teacher, model_dir, cfg, fingerprint, progress.advance)
            result = label_missing(teacher, missing, cache, cfg.batch_size, cfg.retries, progress.advance)
            # this process's CPU (all threads); not Dask's workers
            timing["cpu"] = (timing["cpu"] or 0.0) + time.process_time() - cpu_started
            return result
        finally:
            progress.close()
            timing["call"] += time.perf_counter() - call_started

    plan = None
    if budgeted:
        from pipeline.label.budgeted import label_within_budget

        plan = label_within_budget(rows, keys, params, teacher, send, state_path)
        found, stats, cached, sent = plan.found, plan.stats, plan.cached, plan.sent
        wanted = plan.wanted
    else:
        answers = cached_teacher_probs(teacher, rows["text"], cfg.cache_dir, send=send)
        found, stats, cached, sent = answers.probs, answers.stats, answers.cached, answers.sent
        wanted = np.ones(len(rows), dtype=bool)

    has = np.array([k in found for k in keys], dtype=bool)
    ok = has & wanted
    kept = rows[ok].reset_index(drop=True)
    probs = [found[k] for k, good in zip(keys, ok) if good]
    labels = list(teacher.labels)
    kept["probs"] = probs
    kept["pred"] = [labels[int(np.argmax(p))] for p in probs]
    kept["fingerprint"] = fingerprint
    totals.update(rows=len(rows), labeled_rows=len(kept), cached=cached, sent=sent, wanted=int(wanted.sum()),
                  failed_rows=int((wanted & ~has).sum()),  # rows the budget left out are not failures
                  left_out=int((~wanted).sum()))
    all_stats.merge(stats)
    return kept, plan


def ingested_chunks(path: str | Path, chunk_rows: int):
    """``data/ingested.parquet``'s id, text and split, ``chunk_rows`` rows at a time (pandas frames)."""
    from pipeline.outputs import column_batches

    for batch in column_batches(path, ["id", "text", "split"],
                                "run the ingest stage first (dvc repro ingest)", chunk_rows):
        yield batch.to_pandas()


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


def _labels_table(kept, labels: list[str]):
    """Rows of ``data/labels.parquet`` per docs/contracts.md (probs as list<float32>, labels in metadata)."""
    import pyarrow as pa

    origin = kept["origin_id"].where(kept["origin_id"].notna(), None).tolist()
    return pa.table({
        "id": pa.array(kept["id"].astype(str).tolist(), pa.string()),
        "text": pa.array(kept["text"].tolist(), pa.string()),
        "split": pa.array(kept["split"].tolist(), pa.string()),
        "origin_id": pa.array(origin, pa.string()),
        "probs": pa.array([np.asarray(p, dtype=np.float32) for p in kept["probs"]], pa.list_(pa.float32())),
        "pred": pa.array(kept["pred"].tolist(), pa.string()),
        "fingerprint": pa.array(kept["fingerprint"].tolist(), pa.string()),
    }).replace_schema_metadata({"labels": json.dumps(labels)})


def write_labels(path: str | Path, kept, labels: list[str]) -> None:
    """Write data/labels.parquet per docs/contracts.md in one go (see :class:`LabelsWriter` for chunks)."""
    with LabelsWriter(path, labels) as writer:
        writer.write(kept)
        writer.commit()


class LabelsWriter:
    """``data/labels.parquet`` written chunk by chunk into a temporary file beside it; :meth:`commit` puts it
    in place, and leaving the ``with`` block without a commit removes it (the old file stays)."""

    def __init__(self, path: str | Path, labels: list[str]):
        self.path, self.labels = Path(path), list(labels)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._writer = None

    def write(self, kept) -> None:
        import pyarrow.parquet as pq

        table = _labels_table(kept, self.labels)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is None:  # no chunk at all: an empty table with the contract's columns
            import pandas as pd

            self.write(pd.DataFrame({c: [] for c in ("id", "text", "split", "origin_id", "probs", "pred",
                                                      "fingerprint")}))
        self._writer.close()
        os.replace(self._tmp, self.path)
        self._writer = None

    def __enter__(self) -> "LabelsWriter":
        return self

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)


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
