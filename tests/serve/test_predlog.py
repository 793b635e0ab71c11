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
