"""Bounded background writer of the prediction log (pipeline/predlog.py).

A request hands one record (its texts, model answers and latency) to :meth:`PredictionLogWriter.submit`,
which only does ``queue.put_nowait``: it never waits on the database. One writer thread turns records
into rows (hashes, JSON probabilities) and inserts them in batches. When the queue is full the record's
rows are dropped and counted (``distill_predlog_dropped_total``): serving matters more than logging.
With ``serve.log_durable`` the request awaits :meth:`PredictionLogWriter.submit_durable` instead,
which resolves once its rows are committed (the writer then commits whatever is queued at once).

No loss goes unseen: every row carries the server run's ``run_id`` and a sequence number ``seq``
given when the prediction is acknowledged, and the count of acknowledged rows is kept in a small
memory-mapped file beside the log (:class:`AckCounter`; the kernel keeps its pages when the process is
killed). At start the writer compares the previous run's acknowledged count with the rows of that run
in the log; the difference is recorded in the ``predlog_gaps`` table and counted in
``distill_predlog_lost_total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import mmap
import os
import queue
import struct
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
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
    first_seq: int = 0  # sequence number of the first text's row (set by the writer on submit)
    done: Future | None = field(default=None, compare=False)  # durable mode: resolved when committed


class AckCounter:
    """The run id and the number of rows this server acknowledged, in a 64-byte memory-mapped file.

    A store into the map lands in the kernel's page cache, which outlives the process (kill -9
    included), so the next start reads how many rows the last run promised.
    """

    _FORMAT = "<8s16sQ"  # magic, run id, acknowledged rows
    _MAGIC = b"dlacks01"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.previous = self._read()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.ftruncate(fd, 64)
            self._map = mmap.mmap(fd, 64)
        finally:
            os.close(fd)

    def _read(self) -> tuple[str, int] | None:
        try:
            raw = self.path.read_bytes()[:struct.calcsize(self._FORMAT)]
            magic, run, acked = struct.unpack(self._FORMAT, raw)
        except (OSError, struct.error):
            return None
        return (run.decode("ascii", "replace"), int(acked)) if magic == self._MAGIC else None

    def set(self, run_id: str, acknowledged: int) -> None:
        struct.pack_into(self._FORMAT, self._map, 0, self._MAGIC, run_id.encode("ascii"), acknowledged)

    def close(self) -> None:
        self._map.flush()
        self._map.close()


def ack_path(url: str, worker: int | None = None) -> Path:
    """Where a log's acknowledgement counter lives: beside a SQLite file, else under .distill/; worker
    ``i`` > 0 of a multi-worker server (serve.workers) keeps its own, suffixed ``.w<i>``."""
    import hashlib

    suffix = f".w{worker}" if worker else ""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///") + ".acks" + suffix)
    return Path(".distill") / f"predlog-{hashlib.sha256(url.encode()).hexdigest()[:12]}.acks{suffix}"


class PredictionLogWriter:
    def __init__(self, url: str, log_text: bool, queue_size: int, batch_size: int, flush_s: float,
                 on_written=None, on_dropped=None, on_lost=None, durable: bool = False, worker: int | None = None,
                 on_depth=None):
        self.url = url
        self.log_text = log_text
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.queue: queue.Queue[LogRecord | None] = queue.Queue(maxsize=queue_size)
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._on_lost = on_lost or (lambda n: None)
        self._on_depth = on_depth  # called with the queue depth after each batch (multi-worker metrics)
        self.worker = worker
        self.durable = durable
        self._thread: threading.Thread | None = None
        self.engine = None
        self.table = None
        self.run_id = uuid.uuid4().hex[:16]
        self.acknowledged = 0  # rows answered 200 (durable mode: answered after their commit)
        self._next_seq = 1
        self.acks: AckCounter | None = None
        self.gap: dict[str, Any] | None = None  # what the previous run lost, found at start

    def start(self) -> None:
        from pipeline import predlog

        self.engine, self.table = predlog.connect(self.url)
        self.acks = AckCounter(ack_path(self.url, self.worker))
        previous = self.acks.previous
        self.acks.set(self.run_id, 0)
        if previous is not None:
            self.gap = predlog.record_gap(self.engine, previous[0], previous[1])
            if self.gap and self.gap["lost"]:
                log.error("prediction log: the previous server run (%s) acknowledged %d rows and the log holds %d: "
                          "%d rows lost (counted in distill_predlog_lost_total and the predlog_gaps table)",
                          previous[0], self.gap["acknowledged"], self.gap["written"], self.gap["lost"])
                self._on_lost(self.gap["lost"])
        self._thread = threading.Thread(target=self._run, name="predlog-writer", daemon=True)
        self._thread.start()

    def _acknowledge(self, record: LogRecord) -> LogRecord:
        """Number the record's rows; outside durable mode they count as acknowledged from here on."""
        first = self._next_seq
        self._next_seq += len(record.texts)
        if not self.durable:
            self._count_acknowledged(len(record.texts))
        return dataclasses.replace(record, first_seq=first)

    def _count_acknowledged(self, n: int) -> None:
        self.acknowledged += n
        if self.acks is not None:
            self.acks.set(self.run_id, self.acknowledged)

    def submit(self, record: LogRecord) -> bool:
        """Queue a record without waiting; False (and counted as dropped) when the queue is full."""
        record = self._acknowledge(record)
        try:
            self.queue.put_nowait(record)
            return True
        except queue.Full:
            self._on_dropped(len(record.texts))
            return False

    async def submit_durable(self, record: LogRecord) -> bool:
        """Queue a record and wait until its rows are committed; False when they could not be."""
        done: Future = Future()
        record = self._acknowledge(dataclasses.replace(record, done=done))
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self._on_dropped(len(record.texts))
            return False
        committed = bool(await asyncio.wrap_future(done))
        if committed:
            self._count_acknowledged(len(record.texts))
        return committed

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
        if self.acks is not None:
            self.acks.close()
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
                    if self.durable and pending:  # group commit: what is queued now, without waiting
                        item = self.queue.get_nowait()
                    else:
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
            if self._on_depth is not None:
                self._on_depth(self.queue.qsize())

    def _write(self, records: list[LogRecord]) -> None:
        from pipeline import predlog

        rows = [row for rec in records for row in self._rows(rec)]
        try:
            predlog.insert_rows(self.engine, self.table, rows)
            self._on_written(len(rows))
            ok = True
        except Exception as exc:  # the database is down or locked: lose these rows, keep serving
            log.error("prediction log: could not write %d rows: %s", len(rows), exc)
            self._on_dropped(len(rows))
            ok = False
        for rec in records:
            if rec.done is not None and not rec.done.done():
                rec.done.set_result(ok)

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
                "run_id": self.run_id, "seq": rec.first_seq + i,
            })
        return out
