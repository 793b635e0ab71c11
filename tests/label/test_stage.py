"""Label stage with a fast python teacher: cache hits, new data, failures, augmentation, output contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.stages.label import main as label_main
from pipeline.stages.teacher import main as teacher_main
from tests.helpers.labeling import calls, write_ingested, write_params

pytestmark = pytest.mark.unit


@pytest.fixture
def work(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("DISTILL_TEST_CALL_LOG", str(log))
    return tmp_path, log


def run(tmp, params, data, *extra):
    assert teacher_main(["--params", str(params), "--data", str(data), "--out", str(tmp / "teacher")]) == 0
    return label_main(["--params", str(params), "--data", str(data), "--teacher-dir", str(tmp / "teacher"),
                       "--out", str(tmp / "labels.parquet"), "--metrics", str(tmp / "label.json"), *extra])


def test_rerun_makes_no_teacher_calls_and_output_follows_contract(work):
    tmp, log = work
    data = write_ingested(tmp / "ingested.parquet", 40)
    params = write_params(tmp / "params.yaml", tmp / "cache")
    assert run(tmp, params, data) == 0
    assert len(calls(log)) == 40
    first = pd.read_parquet(tmp / "labels.parquet")
    log.unlink()
    assert run(tmp, params, data) == 0
    assert calls(log) == []
    metrics = json.loads((tmp / "label.json").read_text())
    assert metrics["cache_hits"] == 40 and metrics["cache_misses"] == 0 and metrics["teacher_calls"] == 0
    second = pd.read_parquet(tmp / "labels.parquet")
    assert np.array_equal(np.stack(first["probs"]), np.stack(second["probs"]))
    table = pq.read_table(tmp / "labels.parquet")
    assert json.loads(table.schema.metadata[b"labels"]) == ["billing", "delivery", "other"]
    assert table.schema.field("probs").type.value_type == "float"
    assert list(second.columns) == ["id", "text", "split", "origin_id", "probs", "pred", "fingerprint"]
    assert set(second["split"]) == {"labeled", "unlabeled", "test"} and second["origin_id"].isna().all()
    probs = np.stack(second["probs"])
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert list(second["pred"]) == [["billing", "delivery", "other"][i] for i in probs.argmax(1)]


def test_ten_percent_new_texts_cost_only_those(work):
    tmp, log = work
    params = write_params(tmp / "params.yaml", tmp / "cache")
    assert run(tmp, params, write_ingested(tmp / "ingested.parquet", 50)) == 0
    log.unlink()
    grown = pd.concat([pd.read_parquet(tmp / "ingested.parquet"),
                       pd.read_parquet(write_ingested(tmp / "new.parquet", 5, start=50))])
    grown.to_parquet(tmp / "ingested.parquet", index=False)
    assert run(tmp, params, tmp / "ingested.parquet") == 0
    new_keys = set(calls(log))
    assert len(calls(log)) == 5 and len(new_keys) == 5
    metrics = json.loads((tmp / "label.json").read_text())
    assert (metrics["cache_hits"], metrics["cache_misses"]) == (50, 5)
    assert metrics["usage"]["texts"] == 5 and metrics["usage"]["cost_usd"] == pytest.approx(0.005)


def test_malformed_answers_are_retried_split_counted_and_never_written(work):
    tmp, log = work
    data = tmp / "ingested.parquet"
    frame = pd.read_parquet(write_ingested(data, 40))
    frame.loc[[3, 10, 21], "text"] = ["bad NAN one", "bad SUM two", "bad SHAPE three"]
    frame.to_parquet(data, index=False)
    params = write_params(tmp / "params.yaml", tmp / "cache", function="tests.helpers.teachers:malformed",
                          retries=1, max_failure_rate=0.1)
    assert run(tmp, params, data) == 0
    metrics = json.loads((tmp / "label.json").read_text())
    assert metrics["failures_by_reason"] == {"non_finite": 1, "bad_sum": 1, "wrong_shape": 1}
    assert metrics["failed_rows"] == 3 and metrics["labeled_rows"] == 37
    out = pd.read_parquet(tmp / "labels.parquet")
    assert not out["text"].str.contains("bad ").any() and len(out) == 37
    # each bad text was tried retries+1 times alone, never cached, so a re-run asks for exactly those again
    sent = calls(log)
    assert all(sent.count(k) >= 2 for k in set(sent) if sent.count(k) > 1)
    log.unlink()
    assert run(tmp, params, data) == 0
    assert len(set(calls(log))) == 3


def test_failure_rate_above_threshold_fails_the_stage(work, capsys):
    tmp, _ = work
    data = tmp / "ingested.parquet"
    frame = pd.read_parquet(write_ingested(data, 20))
    frame.loc[[1, 2], "text"] = ["NAN a", "NAN b"]
    frame.to_parquet(data, index=False)
    params = write_params(tmp / "params.yaml", tmp / "cache", function="tests.helpers.teachers:malformed",
                          max_failure_rate=0.05)
    assert run(tmp, params, data) == 2
    assert "2 of 20 rows (10.0%) got no teacher label" in capsys.readouterr().err
    assert not (tmp / "labels.parquet").exists()
    assert json.loads((tmp / "label.json").read_text())["failures_by_reason"] == {"non_finite": 2}


def test_augmented_rows_are_deterministic_and_cached(work):
    tmp, log = work
    data = write_ingested(tmp / "ingested.parquet", 24)
    params = write_params(tmp / "params.yaml", tmp / "cache")
    text = params.read_text().replace("variants: 0", "variants: 3")
    params.write_text(text)
    assert run(tmp, params, data) == 0
    out = pd.read_parquet(tmp / "labels.parquet")
    aug = out[out["split"] == "augmented"]
    unlabeled, labeled = out[out["split"] == "unlabeled"], out[out["split"] == "labeled"]
    # labeled and unlabeled texts are both augmented by default (augment.splits)
    assert len(aug) > len(unlabeled) + len(labeled)
    assert set(aug["origin_id"]) <= set(unlabeled["id"]) | set(labeled["id"])  # a variant equal to its text is dropped
    assert set(aug["origin_id"]) & set(labeled["id"]) and set(aug["origin_id"]) & set(unlabeled["id"])
    assert len(calls(log)) == out["text"].nunique()
    log.unlink()
    assert run(tmp, params, data) == 0
    assert calls(log) == []
    again = pd.read_parquet(tmp / "labels.parquet")
    assert again[again["split"] == "augmented"]["text"].tolist() == aug["text"].tolist()
    # only the unlabeled split: the same variants of those texts, no more teacher calls
    params.write_text(text.replace("variants: 3", "variants: 3\n  splits: [unlabeled]"))
    assert run(tmp, params, data) == 0 and calls(log) == []
    only = pd.read_parquet(tmp / "labels.parquet")
    only_aug = only[only["split"] == "augmented"]
    assert set(only_aug["origin_id"]) == set(aug["origin_id"]) & set(unlabeled["id"])
    assert set(only_aug["text"]) == set(aug.loc[aug["origin_id"].isin(set(unlabeled["id"])), "text"])


def test_labeling_in_chunks_writes_the_rows_one_chunk_does(work):
    from pipeline.config import load_params
    from pipeline.label import label_table, write_labels

    tmp, _ = work
    data = write_ingested(tmp / "ingested.parquet", 60)
    outs = {}
    for name, chunk_rows in (("one", 1000), ("many", 7)):
        params = write_params(tmp / f"{name}.yaml", tmp / f"cache-{name}", chunk_rows=chunk_rows)
        params.write_text(params.read_text().replace("variants: 0", "variants: 2"))
        assert run(tmp, params, data) == 0
        (tmp / "labels.parquet").rename(tmp / f"{name}.parquet")
        outs[name] = (pd.read_parquet(tmp / f"{name}.parquet"), json.loads((tmp / "label.json").read_text()))
    one, many = outs["one"], outs["many"]
    assert pq.ParquetFile(tmp / "many.parquet").num_row_groups > 1  # appended chunk by chunk
    a, b = (frame.sort_values("id").reset_index(drop=True) for frame in (one[0], many[0]))
    assert a[["id", "text", "split", "origin_id", "pred"]].equals(b[["id", "text", "split", "origin_id", "pred"]])
    assert np.array_equal(np.stack(a["probs"]), np.stack(b["probs"]))
    for key in ("rows", "labeled_rows", "cache_misses", "texts_sent", "augmented_rows"):
        assert one[1][key] == many[1][key], key
    # a text met in two chunks (a variant equal to another row's text) is a miss, then a cache hit
    assert many[1]["distinct_texts"] - one[1]["distinct_texts"] == many[1]["cache_hits"] - one[1]["cache_hits"] >= 0
    assert (many[0]["split"] == "augmented").any()

    # one chunk: the stage's file is byte for byte what the whole table labeled in memory gives
    params = load_params(tmp / "one.yaml")
    kept, names, _ = label_table(pd.read_parquet(data), params, tmp / "teacher")
    write_labels(tmp / "memory.parquet", kept, names)
    assert (tmp / "memory.parquet").read_bytes() == (tmp / "one.parquet").read_bytes()
    # feedback texts follow the last chunk, minus those already in the data
    frame = pd.read_parquet(data)
    feedback = pd.DataFrame({"text": ["a brand new complaint", frame["text"][3], "a brand new complaint"]})
    chunked, _, metrics = label_table((frame[i:i + 9] for i in range(0, len(frame), 9)), params, tmp / "teacher",
                                      feedback=feedback)
    assert metrics["feedback_rows"] == 1
    assert chunked["text"].tolist()[-1] == "a brand new complaint" and chunked["split"].tolist()[-1] == "feedback"
    assert sorted(chunked["id"]) == sorted(label_table(frame, params, tmp / "teacher", feedback=feedback)[0]["id"])
