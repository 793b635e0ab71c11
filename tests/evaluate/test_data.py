"""Evaluation data built from the ingested table: sources without groups (CSV, JSONL) store NA groups."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config.evaluate import EvaluateConfig
from pipeline.evaluate.data import build_eval_data
from pipeline.evaluate.suites.base import EvalContext
from pipeline.evaluate.suites.slices import slice_masks

pytestmark = pytest.mark.unit


def test_slices_of_a_source_without_groups_skip_group_slices():
    # The ingest stage writes every column as a pandas string column: a missing group is pd.NA, not None.
    texts = ["refund my invoice", "app crashes", "reset my password", "charged twice", "error 500 on export"]
    ingested = pd.DataFrame({"id": [f"r{i}" for i in range(5)], "text": texts,
                             "label": ["billing", "technical", "account", "billing", "technical"],
                             "split": ["test"] * 5, "source": ["t.csv"] * 5, "group": [None] * 5})
    ingested = ingested.astype(pd.StringDtype())
    labels = pd.DataFrame({"id": ingested["id"], "text": texts, "split": ["test"] * 5,
                           "probs": [[0.2, 0.5, 0.3]] * 5})
    data, _ = build_eval_data(ingested, labels, ["account", "billing", "technical"], validation_share=0.1)
    assert data.test_groups == [None] * 5
    cfg = EvaluateConfig.model_validate({"slices": {"groups": []}})
    masks = slice_masks(EvalContext(data=data, models={}, cfg=cfg))
    assert not any(name.startswith("slice/group=") for name in masks)
    assert any(name.startswith("slice/short") for name in masks)
