"""Bounded background writer of the prediction log (pipeline/predlog.py).

A request hands one record (its texts, model answers and latency) to :meth:`PredictionLogWriter.submit`,
which only does ``queue.put_nowait``: it never waits on the database. One writer thread turns records
into rows (hashes, JSON probabilities) and inserts them in batches. When the queue is full the record's
rows are dropped and counted (``distill_predlog_dropped_total``): serving matters more than logging.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.keys import text_key

log = logging.getLogger("distill.serve.predlog")


@dataclass(frozen=True)
class LogRecord:
    """What one request predicted; turned into one row per text off the request path."""

    request_id: str
    ts: float
    texts: list[str]
    version: str
    route: str
    labels: list[str]
    probs: np.ndarray
    stable_labels: list[str] | None
    latency_ms: float
    sources: list[str] | None = None  # "student" or "teacher" per text (the cascade); None: all student
    student_labels: list[str] | None = None  # the student's own answer per text (differs where the teacher answered)


class PredictionLogWriter:
    def __init__(self, url: str, log_text: bool, queue_size: int, batch_size: int, flush_s: float,
                 on_written=None, on_dropped=None):
        self.url = url
        self.log_text = log_text
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.queue: queue.Queue[LogRecord | None] = queue.Queue(maxsize=queue_size)
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._thread: threading.Thread | None = None
        self.engine = None
        self.table = None

    def start(self) -> None:
        from pipeline import predlog

        self.engine, self.table = predlog.connect(self.url)
        self._thread = threading.Thread(target=self._run, name="predlog-writer", daemon=True)
        self._thread.start()

    def submit(self, record: LogRecord) -> bool:
        """Queue a record without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self.queue.put_nowait(record)
            return True
        except queue.Full:
            self._on_dropped(len(record.texts))
            return False

    def depth(self) -> int:
        return self.queue.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the thread (blocks up to ``timeout``)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:  # the sentinel must get in even when the queue is full
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
        if self.engine is not None:
            self.engine.dispose()

    def _run(self) -> None:
        pending: list[LogRecord] = []
        rows_pending = 0
        stopping = False
        while not stopping:
            deadline = time.monotonic() + self.flush_s
            while rows_pending < self.batch_size:
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                pending.append(item)
                rows_pending += len(item.texts)
            if pending:
                self._write(pending)
                pending, rows_pending = [], 0

    def _write(self, records: list[LogRecord]) -> None:
        from pipeline import predlog

        rows = [row for rec in records for row in self._rows(rec)]
        try:
            predlog.insert_rows(self.engine, self.table, rows)
            self._on_written(len(rows))
        except Exception as exc:  # the database is down or locked: lose these rows, keep serving
            log.error("prediction log: could not write %d rows: %s", len(rows), exc)
            self._on_dropped(len(rows))

    def _rows(self, rec: LogRecord) -> list[dict[str, Any]]:
        import orjson

        conf = rec.probs.max(axis=1)
        out = []
        for i, text in enumerate(rec.texts):
            out.append({
                "request_id": rec.request_id, "ts": rec.ts, "text_hash": text_key(text),
                "text": text if self.log_text else None, "model_version": rec.version, "route": rec.route,
                "label": rec.labels[i], "confidence": float(conf[i]),
                "probs": orjson.dumps(rec.probs[i].tolist()).decode(),
                "stable_label": rec.stable_labels[i] if rec.stable_labels is not None else None,
                "latency_ms": rec.latency_ms,
                "source": rec.sources[i] if rec.sources is not None else "student",
                "student_label": rec.student_labels[i] if rec.student_labels is not None else rec.labels[i],
            })
        return out
