"""Content-addressed label cache: (teacher fingerprint, sha256 of text) -> probabilities.

One SQLite file in WAL mode with a busy timeout: many processes (Dask workers, concurrent runs) may
read and write at once, and each batch is committed in its own transaction, so a process killed with
SIGKILL loses at most the batch it was labeling. The cache lives outside DVC outputs (``label.cache_dir``)
so it survives ``dvc repro`` wiping ``data/labels.parquet``.

The ``spend`` table is the teacher's ledger: each labeled batch commits what it cost (calls, texts
sent, usage such as tokens and USD) in the same transaction as its answers, so a run killed half-way
still has its spend on record, and ``metrics/label.json`` reports the whole bill of a teacher
fingerprint, killed runs included (:meth:`LabelCache.spend_totals`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DB_NAME = "labels.sqlite"
_CHUNK = 500  # keys per SELECT ... IN (...) (SQLite's variable limit is far above this)


class LabelCache:
    """Read and write cached teacher probabilities. Open one per process; close when done."""

    def __init__(self, cache_dir: str | Path, timeout_s: float = 120.0):
        self.path = Path(cache_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS labels (fingerprint TEXT NOT NULL, text_sha TEXT NOT NULL, "
                         "probs BLOB NOT NULL, PRIMARY KEY (fingerprint, text_sha)) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, "
                         "at REAL NOT NULL, calls INTEGER NOT NULL, texts_sent INTEGER NOT NULL, usage TEXT NOT NULL)")
        self._recorded: dict[str, np.ndarray] | None = None

    @contextmanager
    def recording(self) -> Iterator[dict[str, np.ndarray]]:
        """A dict that receives every answer this object commits from here on (key -> float32 vector), so a
        caller that labels and then needs the answers does not read them back from a B-tree that grows with
        the cache (at 10M cached texts, reading back a chunk's answers cost a fifth of the label stage)."""
        self._recorded = {}
        try:
            yield self._recorded
        finally:
            self._recorded = None

    def get_many(self, fingerprint: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached probabilities of those ``keys`` that are present (float32 vectors)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT text_sha, probs FROM labels WHERE fingerprint = ? AND text_sha IN ({marks})",
                                    [fingerprint, *chunk])
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, fingerprint: str, items: Mapping[str, np.ndarray], spend: Mapping | None = None) -> None:
        """Store one batch, and what asking for it cost (``spend``: calls, texts_sent, usage), in one transaction."""
        if not items and not (spend and spend.get("calls")):
            return
        rows = [(fingerprint, key, np.asarray(p, dtype=np.float32).tobytes()) for key, p in items.items()]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO labels (fingerprint, text_sha, probs) VALUES (?, ?, ?)", rows)
            if spend and spend.get("calls"):
                self._db.execute("INSERT INTO spend (fingerprint, at, calls, texts_sent, usage) VALUES (?, ?, ?, ?, ?)",
                                 [fingerprint, time.time(), int(spend["calls"]), int(spend.get("texts_sent", 0)),
                                  json.dumps(dict(spend.get("usage") or {}))])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if self._recorded is not None:  # only what is committed
            self._recorded.update((key, np.frombuffer(blob, dtype=np.float32).copy()) for _, key, blob in rows)

    def spend_totals(self, fingerprint: str) -> dict:
        """Everything the ledger holds for a teacher: calls, texts sent and summed usage, over every run."""
        calls = texts = 0
        usage: dict[str, float] = {}
        for c, t, u in self._db.execute("SELECT calls, texts_sent, usage FROM spend WHERE fingerprint = ?", [fingerprint]):
            calls, texts = calls + c, texts + t
            for key, value in json.loads(u).items():
                usage[key] = usage.get(key, 0.0) + float(value)
        return {"calls": calls, "texts_sent": texts, "usage": usage}

    def count(self, fingerprint: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM labels WHERE fingerprint = ?", [fingerprint]).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "LabelCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
