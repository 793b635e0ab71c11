"""Content-addressed label cache: (teacher fingerprint, sha256 of text) -> probabilities.

One SQLite file in WAL mode with a busy timeout: many processes (Dask workers, concurrent runs) may
read and write at once, and each batch is committed in its own transaction, so a process killed with
SIGKILL loses at most the batch it was labeling. The cache lives outside DVC outputs (``label.cache_dir``)
so it survives ``dvc repro`` wiping ``data/labels.parquet``.

Answers are stored in insertion order (``answers``, keyed by rowid) with a compact unique index on
(teacher id, the 32 bytes of the text's sha256). Text hashes are random, so every new answer lands on a random page of
whatever B-tree is keyed by them; keeping that B-tree to the index (about 45 bytes an entry instead of
the whole answer) makes it ten times smaller, so it stays in memory, and the answers themselves are
appended. At 2M cached answers this halved the cost of a committed batch (docs/scaling.md). A cache
written by an older version (one ``labels`` table keyed by the hex hash) is moved into this layout
the first time it is opened.

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
_CACHE_KIB = 262_144  # SQLite's page cache per connection: holds the key index of a few million answers


def _key_bytes(key: str) -> bytes:
    """How a key is stored: a sha256 hex digest (every key the project makes) as its 32 bytes, else UTF-8."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
    return key.encode("utf-8", "surrogatepass")


class LabelCache:
    """Read and write cached teacher probabilities. Open one per process; close when done."""

    def __init__(self, cache_dir: str | Path, timeout_s: float = 120.0):
        self.path = Path(cache_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("CREATE TABLE IF NOT EXISTS teachers (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE)")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY, teacher INTEGER NOT NULL, "
                         "key BLOB NOT NULL, probs BLOB NOT NULL)")
        self._db.execute("CREATE UNIQUE INDEX IF NOT EXISTS answers_by_text ON answers (teacher, key)")
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, "
                         "at REAL NOT NULL, calls INTEGER NOT NULL, texts_sent INTEGER NOT NULL, usage TEXT NOT NULL)")
        self._teacher_ids: dict[str, int] = {}
        self._migrate()
        self._recorded: dict[str, np.ndarray] | None = None

    def _migrate(self) -> None:
        """Move answers from the layout before ``answers`` (one WITHOUT ROWID ``labels`` table) into it, once."""
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'").fetchone():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'").fetchone():
                self._db.execute("INSERT OR IGNORE INTO teachers (fingerprint) SELECT DISTINCT fingerprint FROM labels")
                ids = dict(self._db.execute("SELECT fingerprint, id FROM teachers").fetchall())
                old = self._db.execute("SELECT fingerprint, text_sha, probs FROM labels")
                while rows := old.fetchmany(10_000):
                    self._db.executemany("INSERT OR REPLACE INTO answers (teacher, key, probs) VALUES (?, ?, ?)",
                                         [(ids[f], _key_bytes(k), p) for f, k, p in rows])
                self._db.execute("DROP TABLE labels")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _teacher(self, fingerprint: str, create: bool) -> int | None:
        """The small integer that stands for a teacher fingerprint in ``answers`` (None: nothing cached)."""
        if fingerprint not in self._teacher_ids:
            if create:
                self._db.execute("INSERT OR IGNORE INTO teachers (fingerprint) VALUES (?)", [fingerprint])
            row = self._db.execute("SELECT id FROM teachers WHERE fingerprint = ?", [fingerprint]).fetchone()
            if row is None:
                return None
            self._teacher_ids[fingerprint] = row[0]
        return self._teacher_ids[fingerprint]

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
        teacher = self._teacher(fingerprint, create=False)
        if teacher is None:
            return found
        for start in range(0, len(keys), _CHUNK):
            chunk = {_key_bytes(key): key for key in keys[start:start + _CHUNK]}
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, probs FROM answers WHERE teacher = ? AND key IN ({marks})",
                                    [teacher, *chunk])
            for stored, blob in rows:
                found[chunk[stored]] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, fingerprint: str, items: Mapping[str, np.ndarray], spend: Mapping | None = None) -> None:
        """Store one batch, and what asking for it cost (``spend``: calls, texts_sent, usage), in one transaction."""
        if not items and not (spend and spend.get("calls")):
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            teacher = self._teacher(fingerprint, create=True)
            blobs = {key: np.asarray(p, dtype=np.float32).tobytes() for key, p in items.items()}
            self._db.executemany("INSERT OR REPLACE INTO answers (teacher, key, probs) VALUES (?, ?, ?)",
                                 [(teacher, _key_bytes(key), blob) for key, blob in blobs.items()])
            if spend and spend.get("calls"):
                self._db.execute("INSERT INTO spend (fingerprint, at, calls, texts_sent, usage) VALUES (?, ?, ?, ?, ?)",
                                 [fingerprint, time.time(), int(spend["calls"]), int(spend.get("texts_sent", 0)),
                                  json.dumps(dict(spend.get("usage") or {}))])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._teacher_ids.pop(fingerprint, None)  # its row may have been rolled back with the batch
            raise
        if self._recorded is not None:  # only what is committed
            self._recorded.update((key, np.frombuffer(blob, dtype=np.float32).copy()) for key, blob in blobs.items())

    def spend_totals(self, fingerprint: str) -> dict:
        """Everything the ledger holds for a teacher: calls, texts sent and summed usage, over every run."""
        calls = texts = 0
        usage: dict[str, float] = {}
        for c, t, u in self._db.execute("SELECT calls, texts_sent, usage FROM spend WHERE fingerprint = ?", [fingerprint]):
            calls, texts = calls + c, texts + t
            for key, value in json.loads(u).items():
                usage[key] = usage.get(key, 0.0) + float(value)
        return {"calls": calls, "texts_sent": texts, "usage": usage}

    def count(self, fingerprint: str | None = None) -> int:
        """Answers cached for one teacher fingerprint, or for all of them."""
        if fingerprint is None:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        teacher = self._teacher(fingerprint, create=False)
        if teacher is None:
            return 0
        return self._db.execute("SELECT COUNT(*) FROM answers WHERE teacher = ?", [teacher]).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "LabelCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
