"""Build the evaluation data from the pipeline's tables (docs/contracts.md).

- test rows: ``split == "test"`` of data/ingested.parquet with their gold labels and groups;
- held-out rows: the student's validation slice of the transfer set, chosen by the distill stage's own
  rule (``pipeline.distill.data.in_validation`` with ``distill.validation_share``; augmented rows excluded),
  with the teacher's stored probabilities from data/labels.parquet;
- the teacher's stored answers on every labeled text, so scoring the teacher costs no calls.
"""

from __future__ import annotations

import numpy as np

from pipeline.distill.data import in_validation  # the distill stage's own rule: one rule for both stages
from pipeline.errors import DataError
from pipeline.keys import text_key
from pipeline.evaluate.suites.base import EvalData


def build_eval_data(ingested, labels_frame, label_names: list[str], validation_share: float,
                    group_column: str = "group") -> tuple[EvalData, dict[str, np.ndarray]]:
    """(EvalData, teacher's known probabilities by text key) from the two tables."""
    for col in ("text", "label", "split"):
        if col not in ingested.columns:
            raise DataError(f"ingested data has no {col!r} column")
    index = {name: i for i, name in enumerate(label_names)}
    test = ingested[ingested["split"] == "test"]
    unknown = sorted({str(v) for v in test["label"].dropna() if v not in index})
    if unknown:
        raise DataError(f"test labels {unknown[:5]} are not among the teacher's labels {label_names}")
    targets = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in test["label"]], dtype=np.int64)
    # A source without groups (CSV, JSONL) stores missing values (pd.NA in a string column): keep them as None.
    groups = ([g if isinstance(g, str) else None for g in test[group_column].tolist()]
              if group_column in test.columns else None)
    known = {text_key(t): np.asarray(p, dtype=np.float64) for t, p in zip(labels_frame["text"], labels_frame["probs"])}
    transfer = labels_frame[labels_frame["split"].isin(["labeled", "unlabeled"])]
    held = transfer[in_validation(transfer["id"].tolist(), validation_share)]
    data = EvalData(labels=list(label_names), test_texts=test["text"].astype(str).tolist(), test_targets=targets,
                    test_groups=groups, heldout_texts=held["text"].astype(str).tolist(),
                    heldout_teacher=np.stack([np.asarray(p, dtype=np.float64) for p in held["probs"]])
                    if len(held) else None)
    return data, known
