"""Bounded background writer of the prediction log (pipeline/predlog.py), in a process of its own.

A request hands one record (its texts, model answers and latency) to :meth:`PredictionLogWriter.submit`,
which only appends it to a bounded buffer: it never waits on the database. When the buffer is full the
record's rows are dropped and counted (``distill_predlog_dropped_total``): serving matters more than
logging. With ``serve.log_durable`` the request awaits :meth:`PredictionLogWriter.submit_durable`
instead, which resolves once its rows are committed (the writer then ships whatever is buffered at once).

Turning records into rows (hashes, JSON probabilities) and inserting them costs about 35 µs of CPU per
row, all of it holding the GIL. In the server's process that work stalled the event loop in bursts:
batch-1 p99 went from about 6 ms to 15-18 ms and requests/s fell by a third. So a shipping thread
packs each batch into plain tuples (about 2 µs per request) and hands it over a pipe to a child
process, ``python -m pipeline.serve.logwriter``, which builds the rows, inserts them in one transaction
and answers with the count. The child exits when the pipe closes, so it never outlives its server,
kill -9 included; a child that dies is started again for the next batch, and the batch it held is
counted as dropped.

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
import pickle
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
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
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_s = flush_s
        self._buffer: deque[LogRecord] = deque()  # appended on the event loop, drained by the shipper
        self._wake = threading.Event()  # ship now: a durable record, a full batch, or stop
        self._stopping = False
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._on_lost = on_lost or (lambda n: None)
        self._on_depth = on_depth  # called with the buffer depth after each batch (multi-worker metrics)
        self.worker = worker
        self.durable = durable
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen | None = None
        self.run_id = uuid.uuid4().hex[:16]
        self.acknowledged = 0  # rows answered 200 (durable mode: answered after their commit)
        self._next_seq = 1
        self.acks: AckCounter | None = None
        self.gap: dict[str, Any] | None = None  # what the previous run lost, found at start

    def start(self) -> None:
        from pipeline import predlog

        engine, _ = predlog.connect(self.url)  # creates the table; a bad URL fails the start, not a batch
        try:
            self.acks = AckCounter(ack_path(self.url, self.worker))
            previous = self.acks.previous
            self.acks.set(self.run_id, 0)
            if previous is not None:
                self.gap = predlog.record_gap(engine, previous[0], previous[1])
                if self.gap and self.gap["lost"]:
                    log.error("prediction log: the previous server run (%s) acknowledged %d rows and the log holds "
                              "%d: %d rows lost (counted in distill_predlog_lost_total and the predlog_gaps table)",
                              previous[0], self.gap["acknowledged"], self.gap["written"], self.gap["lost"])
                    self._on_lost(self.gap["lost"])
        finally:
            engine.dispose()
        self._child = self._spawn()
        self._thread = threading.Thread(target=self._run, name="predlog-shipper", daemon=True)
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

    def _put(self, record: LogRecord) -> bool:
        if len(self._buffer) >= self.queue_size:
            self._on_dropped(len(record.texts))
            return False
        self._buffer.append(record)
        if len(self._buffer) == self.batch_size:
            self._wake.set()
        return True

    def submit(self, record: LogRecord) -> bool:
        """Buffer a record without waiting; False (and counted as dropped) when the buffer is full."""
        return self._put(self._acknowledge(record))

    async def submit_durable(self, record: LogRecord) -> bool:
        """Buffer a record and wait until its rows are committed; False when they could not be."""
        done: Future = Future()
        record = self._acknowledge(dataclasses.replace(record, done=done))
        if not self._put(record):
            return False
        self._wake.set()
        committed = bool(await asyncio.wrap_future(done))
        if committed:
            self._count_acknowledged(len(record.texts))
        return committed

    def depth(self) -> int:
        return len(self._buffer)

    @property
    def process_pid(self) -> int | None:
        """The writer process's pid, or None when none runs."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def stop(self, timeout: float = 10.0) -> None:
        """Ship what is buffered, then stop the thread and the child (blocks up to ``timeout``)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
        if self._child is not None:
            _close_child(self._child, max(0.1, deadline - time.monotonic()))
            self._child = None
        if self.acks is not None:
            self.acks.close()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            stopping = self._stopping  # read before draining: what was buffered before stop() is shipped
            left = len(self._buffer)  # what is here now; later records wait for the next round
            while left:
                batch, rows = [], 0
                while left and rows < self.batch_size:
                    batch.append(self._buffer.popleft())
                    rows += len(batch[-1].texts)
                    left -= 1
                self._ship(batch, rows)
            if self._on_depth is not None:
                self._on_depth(len(self._buffer))
            if stopping:
                return

    def _ship(self, records: list[LogRecord], rows: int) -> None:
        written, error = 0, None
        try:
            if self._child is not None and self._child.poll() is not None:
                _close_child(self._child, 0.0)  # it died: close the pipes it leaves
                self._child = None
            if self._child is None:
                self._child = self._spawn()
            _write_frame(self._child.stdin, [_pack(rec) for rec in records])
            written, error = _read_frame(self._child.stdout)
        except Exception as exc:  # the child died or could not start: lose this batch, keep serving
            error = f"the writer process failed ({type(exc).__name__}: {exc}); starting another for the next batch"
            if self._child is not None:
                _close_child(self._child, 0.0)  # reaped and its pipes closed: no zombie, no leaked fds
                self._child = None
        if error is None:
            self._on_written(written)
        else:
            log.error("prediction log: could not write %d rows: %s", rows, error)
            self._on_dropped(rows)
        for rec in records:
            if rec.done is not None and not rec.done.done():
                rec.done.set_result(error is None)

    def _spawn(self) -> subprocess.Popen:
        import pipeline

        env = dict(os.environ)
        root = str(Path(pipeline.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        child = subprocess.Popen([sys.executable, "-m", "pipeline.serve.logwriter"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=env)
        try:
            _write_frame(child.stdin, {"url": self.url, "log_text": self.log_text, "run_id": self.run_id})
            ready = _read_frame(child.stdout)
        except Exception as exc:
            ready = f"{type(exc).__name__}: {exc}"
        if ready is not True:
            _close_child(child, 5.0)
            raise RuntimeError(f"the prediction-log writer process did not start: {ready}")
        return child


def _pack(rec: LogRecord) -> tuple:
    """A record as plain values: pickling a tuple of builtins is ~6x cheaper than the dataclass."""
    probs = np.ascontiguousarray(rec.probs)
    return (rec.request_id, rec.ts, rec.texts, rec.version, rec.route, rec.labels, probs.tobytes(), probs.dtype.str,
            probs.shape, rec.stable_labels, rec.latency_ms, rec.sources, rec.student_labels, rec.first_seq)


def _values(packed: tuple, log_text: bool, run_id: str) -> list[tuple]:
    """One tuple per text of a packed record, in ``predlog.WRITTEN_COLUMNS`` order."""
    import orjson

    (request_id, ts, texts, version, route, labels, raw, dtype, shape, stable_labels, latency_ms, sources,
     student_labels, first_seq) = packed
    probs = np.frombuffer(raw, dtype=dtype).reshape(shape)
    conf = probs.max(axis=1).tolist()
    out = []
    for i, text in enumerate(texts):
        out.append((
            request_id, ts, text_key(text), text if log_text else None, version, route, labels[i], conf[i],
            # the row as the model gave it: each number in the shortest digits that read back to the same
            # float32, about 0.6 of the characters of a float64 list (benchmarks/predlog_write.py)
            orjson.dumps(probs[i], option=orjson.OPT_SERIALIZE_NUMPY).decode(),
            stable_labels[i] if stable_labels is not None else None, latency_ms,
            sources[i] if sources is not None else "student",
            student_labels[i] if student_labels is not None else labels[i], run_id, first_seq + i,
        ))
    return out


_FRAME = struct.Struct("<I")


def _write_frame(stream, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError("the pipe closed")
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-frame")
    return pickle.loads(data)


def _close_child(child: subprocess.Popen, timeout: float) -> None:
    """End the child: close its input (it finishes its batch and exits), kill it after ``timeout``, reap it."""
    try:
        child.stdin.close()
        child.wait(timeout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def _child_main() -> int:
    """The writer process: read batches from stdin, insert them, answer ``(rows written, error or None)``."""
    import signal

    # Ctrl-C and SIGTERM reach the whole process group; the server decides when logging ends (it closes
    # the pipe after shipping what it holds), so the child waits for that instead of dying first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(10)  # background work: on a busy core the scheduler gives the server's requests more of it
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the answer pipe
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline import predlog

    try:
        config = _read_frame(inp)
        engine, table = predlog.connect(config["url"])
    except EOFError:
        return 0
    except Exception as exc:
        _write_frame(out, f"{type(exc).__name__}: {exc}")
        return 1
    _write_frame(out, True)
    while True:
        try:
            batch = _read_frame(inp)
        except EOFError:  # the server closed the pipe, or died
            engine.dispose()
            return 0
        rows = [row for packed in batch for row in _values(packed, config["log_text"], config["run_id"])]
        try:
            predlog.insert_values(engine, table, predlog.WRITTEN_COLUMNS, rows)
            answer = (len(rows), None)
        except Exception as exc:  # the database is down or locked: the server counts these rows dropped
            answer = (0, f"{type(exc).__name__}: {exc}")
        try:
            _write_frame(out, answer)
        except (BrokenPipeError, OSError):
            return 0


if __name__ == "__main__":
    sys.exit(_child_main())
