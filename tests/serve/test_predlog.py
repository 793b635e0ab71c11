"""The prediction log table: write rows, read a time window back."""

import json

import pytest

from pipeline.keys import text_key
from pipeline import predlog

pytestmark = pytest.mark.unit


def row(ts, label="spam", text="hello"):
    return {"request_id": "r1", "ts": ts, "text_hash": text_key(text), "text": text,
            "model_version": "v1", "route": "stable", "label": label, "confidence": 0.9,
            "probs": json.dumps([0.1, 0.9]), "stable_label": None, "latency_ms": 1.5}


def test_write_and_read_a_window(tmp_path):
    engine, tbl = predlog.connect(f"sqlite:///{tmp_path}/sub/p.db")
    assert predlog.insert_rows(engine, tbl, [row(10.0), row(20.0, "ham"), row(30.0)]) == 3
    window = predlog.read_window(engine, tbl, since=15.0, until=30.0)
    assert list(window["label"]) == ["ham"]
    assert list(predlog.read_window(engine, tbl)["ts"]) == [10.0, 20.0, 30.0]
    assert set(predlog.COLUMNS) == set(window.columns)


def test_env_url_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv(predlog.ENV_URL, f"sqlite:///{tmp_path}/x.db")
    assert predlog.resolve_url("sqlite:///other.db") == f"sqlite:///{tmp_path}/x.db"


def test_insert_values_writes_what_insert_rows_writes_in_any_column_order(tmp_path):
    engine, tbl = predlog.connect(f"sqlite:///{tmp_path}/p.db")
    rows = [row(10.0), row(20.0, "ham", "bye")]
    predlog.insert_rows(engine, tbl, rows)
    columns = sorted(rows[0])  # not the table's order: the statement's own order must be followed
    assert predlog.insert_values(engine, tbl, columns, [tuple(r[c] for c in columns) for r in rows]) == 2
    assert predlog.insert_values(engine, tbl, columns, []) == 0
    got = predlog.read_window(engine, tbl).sort_values("id").drop(columns=["id"])
    first, second = got.iloc[:2].reset_index(drop=True), got.iloc[2:].reset_index(drop=True)
    assert first.equals(second)
    assert list(second["label"]) == ["spam", "ham"] and list(second["text"]) == ["hello", "bye"]


def test_the_writer_logs_each_text_with_its_exact_float32_probabilities(tmp_path):
    import numpy as np

    from pipeline.serve.logwriter import LogRecord, _pack, _values

    engine, tbl = predlog.connect(f"sqlite:///{tmp_path}/p.db")
    probs = np.random.default_rng(0).dirichlet(np.ones(77), size=3).astype(np.float32)
    record = LogRecord(request_id="r9", ts=5.0, texts=["a", "b", "c"], version="v2", route="canary",
                       labels=["x", "y", "z"], probs=probs, stable_labels=["x", "x", "x"], latency_ms=2.5,
                       sources=["student", "teacher", "student"], student_labels=["x", "q", "z"], first_seq=7)
    predlog.insert_values(engine, tbl, predlog.WRITTEN_COLUMNS, _values(_pack(record), log_text=False, run_id="run1"))
    got = predlog.read_window(engine, tbl)
    assert list(got["seq"]) == [7, 8, 9] and list(got["text_hash"]) == [text_key(t) for t in "abc"]
    assert got["text"].isna().all() and list(got["source"]) == ["student", "teacher", "student"]
    assert list(got["student_label"]) == ["x", "q", "z"] and set(got["run_id"]) == {"run1"}
    logged = np.array([json.loads(p) for p in got["probs"]], dtype=np.float32)
    assert np.array_equal(logged, probs)  # the shortest digits still read back to the same float32
    assert np.allclose(got["confidence"], probs.max(axis=1))
