"""Split assignment and ids: deterministic by seed, stratified, independent of input order."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config.ingest import IngestConfig
from pipeline.ingest import ingest
from pipeline.keys import content_id
from pipeline.ingest.splits import assign_splits

pytestmark = pytest.mark.unit


def _frame(n_a=60, n_b=40):
    labels = ["a"] * n_a + ["b"] * n_b
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(labels))], "label": labels})


def test_same_seed_same_splits_and_order_does_not_matter():
    frame = _frame()
    first = assign_splits(frame, 7, 0.2, 0.25, None)
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = assign_splits(shuffled, 7, 0.2, 0.25, None)
    assert first.to_dict() == again.sort_index().to_dict()
    assert assign_splits(frame, 8, 0.2, 0.25, None).to_dict() != first.to_dict()


def test_splits_are_stratified_by_label():
    frame = _frame()
    split = assign_splits(frame, 1, 0.2, 0.25, None)
    table = pd.crosstab(frame["label"], split)
    # a: 60 -> 12 test, 48 rest -> 12 labeled; b: 40 -> 8 test, 32 rest -> 8 labeled
    assert table.loc["a", "test"] == 12 and table.loc["b", "test"] == 8
    assert table.loc["a", "labeled"] == 12 and table.loc["b", "labeled"] == 8
    assert table.loc["a", "unlabeled"] == 36 and table.loc["b", "unlabeled"] == 24


def test_labeled_per_class_and_rows_without_label_stay_unlabeled():
    frame = _frame()
    frame.loc[[0, 1, 2], "label"] = None
    split = assign_splits(frame, 1, 0.0, 0.5, 5)
    assert (split[frame["label"].isna()] == "unlabeled").all()
    assert split[split == "labeled"].groupby(frame["label"]).size().to_dict() == {"a": 5, "b": 5}
    assert not (split == "test").any()


def test_given_test_rows_replace_the_test_fraction():
    frame = _frame()
    fixed = pd.Series(frame.index < 10, index=frame.index)
    split = assign_splits(frame, 1, 0.5, 0.1, None, fixed)
    assert list(split[split == "test"].index) == list(range(10))


def test_content_ids_are_stable_and_ingest_is_deterministic(tmp_path):
    assert content_id("hello") == "2cf24dba5fb0a30e"  # sha256("hello")[:16], fixed forever
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": [f"text number {i}" for i in range(50)],
                  "label": ["x", "y"] * 25}).to_csv(path, index=False)
    cfg = IngestConfig(source={"kind": "csv", "path": str(path)}, test_fraction=0.2, labeled_fraction=0.3)
    one, two = ingest(cfg, seed=5).table, ingest(cfg, seed=5).table
    pd.testing.assert_frame_equal(one, two)
    assert one.loc[one["text"] == "text number 3", "id"].item() == content_id("text number 3")
    assert ingest(cfg, seed=6).table["split"].tolist() != one["split"].tolist()
