"""The label cache's answers to a labeling pass: what was committed here is handed back without reading
it again; what another process committed (a Dask worker's own connection) is read back."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.label.cache import LabelCache
from pipeline.label.calls import CallStats, cached_teacher_probs, label_missing
from pipeline.keys import text_key

pytestmark = pytest.mark.unit


class KeywordTeacher:
    labels = ["ham", "spam"]
    fingerprint = "kw-1"

    def __init__(self):
        self.seen: list[str] = []

    def predict_proba(self, texts):
        self.seen += texts
        return np.array([[0.1, 0.9] if "win" in t else [0.7 + len(t) / 1000, 0.3 - len(t) / 1000] for t in texts])


class CountingCache(LabelCache):
    """A real cache that counts the keys asked of the database."""

    asked = 0

    def get_many(self, fingerprint, keys):
        keys = list(keys)
        self.asked += len(keys)
        return super().get_many(fingerprint, keys)


def test_recording_holds_exactly_what_was_committed_as_it_reads_back(tmp_path):
    with LabelCache(tmp_path) as cache:
        cache.put_many("t", {"a": np.array([0.25, 0.75])})  # before recording: not recorded
        with cache.recording() as written:
            cache.put_many("t", {"b": np.array([0.1, 0.9]), "c": np.array([1 / 3, 2 / 3])})
        cache.put_many("t", {"d": np.array([0.5, 0.5])})  # after: not recorded
        assert sorted(written) == ["b", "c"]
        back = cache.get_many("t", ["b", "c"])
        for key in written:
            assert written[key].dtype == np.float32
            assert written[key].tobytes() == back[key].tobytes()  # the stored bytes, not the float64 given
            written[key][0] = 0.0  # a private copy: writable, and the cache is untouched
        assert cache.get_many("t", ["b"])["b"].tobytes() == back["b"].tobytes()


def test_cached_teacher_probs_does_not_read_back_what_it_labeled(tmp_path):
    texts = ["win a prize", "lunch at noon", "win big", "see you", "lunch at noon"]
    teacher = KeywordTeacher()
    with CountingCache(tmp_path) as cache:
        cache.put_many(teacher.fingerprint, {text_key("see you"): np.array([0.6, 0.4])})
        got = cached_teacher_probs(teacher, texts, cache, batch_size=2)
        assert cache.asked == 4  # the one lookup of the 4 distinct texts, no second pass
        assert sorted(teacher.seen) == ["lunch at noon", "win a prize", "win big"]
        back = cache.get_many(teacher.fingerprint, [text_key(t) for t in texts])
    assert got.cached == 1 and got.sent == 3
    assert set(got.probs) == set(back)
    for key in back:
        assert got.probs[key].tobytes() == back[key].tobytes()


def test_answers_committed_by_another_connection_are_read_back(tmp_path):
    """A sender that labels through its own cache connection, as a Dask worker does."""
    texts = ["win a prize", "lunch at noon", "win big"]
    teacher = KeywordTeacher()

    def elsewhere(items, cache) -> CallStats:
        with LabelCache(tmp_path) as own:
            return label_missing(teacher, items, own, batch_size=8, retries=0)

    with LabelCache(tmp_path) as cache:
        got = cached_teacher_probs(teacher, texts, cache, send=elsewhere)
        back = cache.get_many(teacher.fingerprint, [text_key(t) for t in texts])
    assert len(got.probs) == 3 and got.sent == 3
    for key in back:
        assert got.probs[key].tobytes() == back[key].tobytes()


def test_a_cache_in_the_old_layout_is_moved_into_answers_with_nothing_lost(tmp_path):
    """Caches written before the insertion-ordered layout (one WITHOUT ROWID ``labels`` table keyed by the
    hex hash) keep every answer and their ledger when a newer version opens them."""
    import sqlite3

    from pipeline.label.cache import DB_NAME

    old = {text_key(f"text {i}"): np.array([i / 10, 1 - i / 10], dtype=np.float32) for i in range(5)}
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("CREATE TABLE labels (fingerprint TEXT NOT NULL, text_sha TEXT NOT NULL, probs BLOB NOT NULL, "
                   "PRIMARY KEY (fingerprint, text_sha)) WITHOUT ROWID")
        db.execute("CREATE TABLE spend (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, at REAL NOT NULL, "
                   "calls INTEGER NOT NULL, texts_sent INTEGER NOT NULL, usage TEXT NOT NULL)")
        db.executemany("INSERT INTO labels VALUES (?, ?, ?)",
                       [("kw-1", k, p.tobytes()) for k, p in old.items()] + [("other", "not-a-hash", b"\0" * 8)])
        db.execute("INSERT INTO spend (fingerprint, at, calls, texts_sent, usage) VALUES ('kw-1', 0, 2, 5, '{}')")
    with LabelCache(tmp_path) as cache:
        back = cache.get_many("kw-1", list(old) + [text_key("never asked")])
        assert set(back) == set(old) and all(back[k].tobytes() == old[k].tobytes() for k in old)
        assert cache.get_many("other", ["not-a-hash"])["not-a-hash"].tobytes() == b"\0" * 8
        assert cache.count("kw-1") == 5 and cache.count() == 6
        assert cache.spend_totals("kw-1")["calls"] == 2
        cache.put_many("kw-1", {text_key("text 0"): np.array([0.5, 0.5])})  # replaces, does not add
        assert cache.count("kw-1") == 5 and cache.get_many("kw-1", [text_key("text 0")])[text_key("text 0")][0] == 0.5
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "labels" not in tables and {"answers", "teachers", "spend"} <= tables
