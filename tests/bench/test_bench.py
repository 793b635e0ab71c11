"""`distill bench` end to end on a tiny BANKING77 subset: every stage runs for real (encoder teacher,
cached labeling, distillation, gold-only baseline, ONNX export, timing) and bench.json is complete."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import require_banking77

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _subset(tmp_path):
    root = require_banking77()
    train, test = pd.read_csv(root / "train.csv"), pd.read_csv(root / "test.csv")
    classes = sorted(train["category"].unique())[:15]
    data = tmp_path / "data"
    data.mkdir()
    train[train["category"].isin(classes)].groupby("category").head(12).to_csv(data / "train.csv", index=False)
    test[test["category"].isin(classes)].groupby("category").head(4).to_csv(data / "test.csv", index=False)
    return data


def test_bench_writes_every_field_and_prints_the_table(tmp_path, monkeypatch):
    from pipeline.cli import app

    data = _subset(tmp_path)
    params = {
        "seed": 1,
        "ingest": {"source": {"kind": "csv", "path": "elsewhere/train.csv", "test_path": "elsewhere/test.csv",
                              "label_column": "category"}, "labeled_per_class": 4},
        "label": {"cache_dir": str(tmp_path / "cache")},
        "teacher": {"embedding_head": {"cache_dir": str(tmp_path / "embeddings")}},
        "distill": {"epochs": 3, "patience": 2, "validation_share": 0.2,
                    "featurizer": {"buckets": 2048, "char_ngrams": [3]}},
        "export": {"latency_texts": 10, "parity_rows": 60},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    missing = runner.invoke(app, ["bench", "--params", str(path)])
    assert missing.exit_code == 2
    assert "--data-dir" in missing.output and "DISTILL_BENCH_DATA_DIR" in missing.output

    result = runner.invoke(app, ["bench", "--params", str(path), "--workdir", "out", "--data-dir", str(data),
                                 "--threads", "1,2", "--speed-texts", "40", "--peers", "tfidf-lr"])
    assert result.exit_code == 0, result.output
    assert "| teacher |" in result.output and "retention" in result.output

    record = json.loads((tmp_path / "out" / "bench.json").read_text())
    q = record["quality"]
    assert record["rows"] == {"labeled": 60, "unlabeled": 120, "test": 60} and record["labels"] == 15
    for key in ("teacher_accuracy", "student_fp32_accuracy", "student_int8_accuracy", "gold_only_accuracy",
                "agreement_with_teacher"):
        assert 0.0 <= q[key] <= 1.0, key
    assert q["teacher_accuracy"] > 1 / 15  # the encoder head beats chance even on 4 labels per class
    # The headline numbers, measured again here from the artifacts the bench left, not from its formulas.
    from pipeline.bundle import load_bundle
    from pipeline.config import load_params
    from pipeline.teachers import load_teacher

    test = pd.read_csv(data / "test.csv")
    gold = test["category"].to_numpy()
    int8 = float((np.asarray(load_bundle(tmp_path / "out" / "bundle").predict(test["text"].tolist())) == gold).mean())
    teacher = load_teacher(load_params(path).teacher, tmp_path / "out" / "teacher")
    teacher_acc = float((teacher.predict_proba(test["text"].tolist()).argmax(axis=1)
                         == [teacher.labels.index(g) for g in gold]).mean())
    assert q["student_int8_accuracy"] == pytest.approx(int8, abs=1e-9)
    assert q["teacher_accuracy"] == pytest.approx(teacher_acc, abs=1e-9)
    assert q["retention"] == pytest.approx(int8 / teacher_acc, abs=1e-6)
    assert q["gain_over_gold_only"] == pytest.approx(int8 - q["gold_only_accuracy"], abs=1e-6)
    for model in ("teacher", "student_torch", "student_int8"):
        for threads in ("1", "2"):
            speed = record["speed"][model][threads]
            assert speed["texts_per_s"] > 0 and 0 < speed["p50_ms"] <= speed["p99_ms"], (model, threads)
    sizes = record["bytes"]
    assert sizes["teacher"] > sizes["student_fp32"] > sizes["student_int8"] > 0
    int8_file = (tmp_path / "out" / "bundle" / "model.int8.onnx").stat().st_size
    assert sizes["student_int8"] == int8_file
    assert record["size_ratio_teacher_to_int8"] == pytest.approx(sizes["teacher"] / int8_file, rel=1e-6)
    assert record["parity"]["passed"] is True
    assert set(record["stages_s"]) == {"ingest", "teacher", "label", "distill", "distill_gold_only", "peers",
                                       "export", "speed"}
    # the peers, trained on the student's labels and on gold only, with their documented keys
    assert set(record["peers"]) == {"tfidf-lr", "tfidf-lr-gold-only"}
    for key, peer in record["peers"].items():
        for field in ("accuracy", "agreement_with_teacher", "texts_per_s", "bytes", "val_score"):
            assert isinstance(peer[field], (int, float)) and peer[field] >= 0, (key, field)
        assert 0.0 <= peer["accuracy"] <= 1.0 and peer["bytes"] > 0 and set(peer["settings"]) == {"C"}
        assert set(peer["texts_per_s_by_threads"]) == {"1", "2"}
        assert f"| tfidf-lr, {'gold labels only' if 'gold' in key else 'the student' + chr(39) + 's labels'} |" \
            in result.output
    # the cascade curve: with no deferral it is the student alone; every row holds shares
    cascade = record["cascade"]
    assert [r["target_rate"] for r in cascade] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    assert cascade[0]["deferred"] == 0.0 and cascade[0]["accuracy"] == pytest.approx(q["student_int8_accuracy"])
    assert all(0.0 <= r["deferred"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 for r in cascade)
    assert "| cascade: target deferral" in result.output
    # the cost report prices the run's own speed numbers: the cascade costs the student plus its share of teacher
    cost = record["cost"]
    price = cost["usd_per_core_hour"]
    student_usd = price / 3600 / record["speed"]["student_int8"]["1"]["texts_per_s"] * 1e6
    teacher_usd = price / 3600 / record["speed"]["teacher"]["1"]["texts_per_s"] * 1e6
    assert cost["per_million"]["student"] == pytest.approx(student_usd)
    assert cost["per_million"]["teacher"] == pytest.approx(teacher_usd)
    at_target = next(r for r in cascade if r["target_rate"] == 0.1)
    assert cost["per_million"]["cascade"] == pytest.approx(student_usd + at_target["deferred"] * teacher_usd)
    assert cost["cascade_curve"][0]["per_million"] == pytest.approx(student_usd)
    assert cost["labeling"]["texts_sent"] == record["label"]["cache_misses"] > 0
    assert "cost per 1M predictions" in result.output
    assert q["margin_over_best_peer"] == pytest.approx(q["student_int8_accuracy"] - q["best_peer"]["accuracy"])
    assert q["best_peer"] == {"model": "tfidf-lr", "accuracy": record["peers"]["tfidf-lr"]["accuracy"]}
    best_gold = max(q["gold_only_accuracy"], record["peers"]["tfidf-lr-gold-only"]["accuracy"])
    assert q["best_gold_only"]["accuracy"] == best_gold
    assert q["gain_over_best_gold_only"] == pytest.approx(q["student_int8_accuracy"] - best_gold)
    assert all(v >= 0 for v in record["stages_s"].values())
    assert record["student"]["gold_only"]["train_rows"] < record["rows"]["labeled"]  # gold rows minus validation

    # A second run reuses the fitted teacher and the label cache: nothing goes to the teacher again.
    again = runner.invoke(app, ["bench", "--params", str(path), "--workdir", "out", "--data-dir", str(data),
                                "--threads", "1", "--speed-texts", "20", "--peers", ""])
    assert again.exit_code == 0, again.output
    record = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert record["label"]["cache_misses"] == 0
    assert record["peers"] == {} and record["quality"]["best_peer"] is None
    # every text was embedded once, into the embedding cache; the speed rows time the teacher without it
    from pipeline.bench import uncached_teacher
    from pipeline.label.cache import LabelCache

    with LabelCache(tmp_path / "embeddings") as store:
        assert store.count(teacher.encoder.cache_key) == record["label"]["distinct_texts"]
    assert teacher.encoder.cache_dir is not None
    assert uncached_teacher(load_params(path), tmp_path / "out" / "teacher").encoder.cache_dir is None
