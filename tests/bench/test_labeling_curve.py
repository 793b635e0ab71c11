"""`distill bench --labeling-curve` on a tiny BANKING77 subset: random and active selection at each budget,
each trained with the real student and scored on the gold test split."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.bench.test_bench import _subset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_labeling_curve_spends_what_each_budget_allows_for_random_and_active(tmp_path, monkeypatch):
    from pipeline.cli import app

    data = _subset(tmp_path)
    params = {
        "seed": 1,
        "ingest": {"source": {"kind": "csv", "path": f"{data}/train.csv", "test_path": f"{data}/test.csv",
                              "label_column": "category"}, "labeled_per_class": 2},
        "label": {"cache_dir": str(tmp_path / "cache"), "active": {"initial_share": 0.1, "round_share": 0.1}},
        "teacher": {"embedding_head": {"cache_dir": str(tmp_path / "embeddings")}},
        "distill": {"epochs": 3, "patience": 2, "validation_share": 0.2,
                    "featurizer": {"buckets": 2048, "char_ngrams": [3]}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--params", str(path), "--workdir", "out", "--labeling-curve"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "labeling.json").read_text())
    points = record["points"]
    assert [(p["strategy"], p["budget_share"]) for p in points] == \
        [("random", s) for s in (0.05, 0.1, 0.25, 0.5, 1.0)] + [("active", s) for s in (0.05, 0.1, 0.25, 0.5)]
    pool = record["pool_texts"]
    for p in points:
        # each labeled set holds what its budget buys of the pool, never more
        assert p["pool_texts_labeled"] <= round(p["budget_share"] * pool) and 0 <= p["accuracy"] <= 1
        assert p["teacher_texts"] == record["fixed_texts"] + p["pool_texts_labeled"]
    whole = points[4]
    assert whole["pool_texts_labeled"] == pool and whole["share_of_whole_pool"] == 1.0
    assert next(p for p in points if p["strategy"] == "active" and p["budget_share"] == 0.5)["rounds"] >= 2
    assert "| active | 25% |" in result.output and "| random | 100% |" in result.output

