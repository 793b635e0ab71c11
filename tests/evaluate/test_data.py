"""Evaluation data read from the ingested and labels tables: sources without groups (CSV, JSONL) store NA
groups, and large tables are read in batches down to a bounded, id-hashed sample."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config.evaluate import EvaluateConfig
from pipeline.distill.data import in_validation
from pipeline.evaluate.data import read_eval_data
from pipeline.evaluate.suites.base import EvalContext
from pipeline.evaluate.suites.slices import slice_masks
from pipeline.keys import text_key

pytestmark = pytest.mark.unit

LABELS = ["account", "billing", "technical"]


def _write(tmp_path, ingested: pd.DataFrame, labels: pd.DataFrame):
    ingested.astype(pd.StringDtype()).to_parquet(tmp_path / "ingested.parquet", index=False, row_group_size=7)
    table = pa.table({"id": labels["id"].tolist(), "text": labels["text"].tolist(), "split": labels["split"].tolist(),
                      "probs": pa.array(labels["probs"].tolist(), pa.list_(pa.float32()))})
    pq.write_table(table.replace_schema_metadata({"labels": json.dumps(LABELS)}), tmp_path / "labels.parquet",
                   row_group_size=7)
    return tmp_path / "ingested.parquet", tmp_path / "labels.parquet"


def test_slices_of_a_source_without_groups_skip_group_slices(tmp_path):
    # The ingest stage writes every column as a pandas string column: a missing group is pd.NA, not None.
    texts = ["refund my invoice", "app crashes", "reset my password", "charged twice", "error 500 on export"]
    ingested = pd.DataFrame({"id": [f"r{i}" for i in range(5)], "text": texts,
                             "label": ["billing", "technical", "account", "billing", "technical"],
                             "split": ["test"] * 5, "source": ["t.csv"] * 5, "group": [None] * 5})
    labels = pd.DataFrame({"id": ingested["id"], "text": texts, "split": ["test"] * 5,
                           "probs": [[0.2, 0.5, 0.3]] * 5})
    data, _, names = read_eval_data(*_write(tmp_path, ingested, labels), validation_share=0.1)
    assert names == LABELS and data.test_groups == [None] * 5
    cfg = EvaluateConfig.model_validate({"slices": {"groups": []}})
    masks = slice_masks(EvalContext(data=data, models={}, cfg=cfg))
    assert not any(name.startswith("slice/group=") for name in masks)
    assert any(name.startswith("slice/short") for name in masks)


def _numbered_rows(tmp_path, n: int, test_every: int):
    """``n`` rows "text i" (every ``test_every``-th a test row, the rest unlabeled) with distinct probabilities;
    (paths of the two tables, splits, probabilities)."""
    splits = ["test" if i % test_every == 0 else "unlabeled" for i in range(n)]
    ingested = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)],
                             "label": [LABELS[i % 3] for i in range(n)], "split": splits, "source": "t.csv",
                             "group": None})
    probs = [[i / 100, 0.5, 0.5 - i / 100] for i in range(n)]
    labels = pd.DataFrame({"id": ingested["id"], "text": ingested["text"], "split": splits, "probs": probs})
    return _write(tmp_path, ingested, labels), splits, probs


def test_rows_are_read_in_batches_and_capped_by_a_hash_of_the_id(tmp_path):
    n = 90
    paths, splits, probs = _numbered_rows(tmp_path, n, test_every=3)
    everything, known, _ = read_eval_data(*paths, validation_share=0.5)
    held = [f"text {i}" for i in range(n) if splits[i] != "test" and in_validation([f"r{i}"], 0.5)[0]]
    assert everything.test_texts == [f"text {i}" for i in range(0, n, 3)] and everything.heldout_texts == held
    row = int(held[0].split()[1])
    assert np.allclose(everything.heldout_teacher[0], np.float32(probs[row]))
    assert set(known) == {text_key(t) for t in everything.test_texts + held}

    capped, known, _ = read_eval_data(*paths, validation_share=0.5, max_rows=8)
    assert len(capped.test_texts) == 8 and len(capped.heldout_texts) == 8
    assert set(capped.test_texts) < set(everything.test_texts) and set(capped.heldout_texts) < set(held)
    assert capped.test_texts == sorted(capped.test_texts, key=lambda t: int(t.split()[1]))  # file order kept
    again, _, _ = read_eval_data(*paths, validation_share=0.5, max_rows=8)
    assert again.test_texts == capped.test_texts and again.heldout_texts == capped.heldout_texts
    assert set(known) == {text_key(t) for t in capped.test_texts + capped.heldout_texts}


def test_kept_probabilities_own_their_memory_and_not_their_batch(tmp_path):
    """A view into a batch's probability matrix would keep the whole batch alive: at 10M label rows, every
    batch that held one evaluated row (9 GB for 400k evaluated rows)."""
    n = 60
    paths, _, probs = _numbered_rows(tmp_path, n, test_every=4)
    _, known, _ = read_eval_data(*paths, validation_share=0.5, max_rows=3)
    assert len(known) == 6
    for key, p in known.items():
        assert p.base is None and p.shape == (3,) and p.dtype == np.float64, key
        row = next(i for i in range(n) if text_key(f"text {i}") == key)
        assert p.tolist() == np.float32(probs[row]).astype(np.float64).tolist()
