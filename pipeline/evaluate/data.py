"""Build the evaluation data from the pipeline's tables (docs/contracts.md).

- test rows: ``split == "test"`` of data/ingested.parquet with their gold labels and groups;
- held-out rows: the student's validation slice of the transfer set, chosen by the same rule the distill
  stage uses (sha1 of the row id, first 4 bytes / 2^32 < ``validation_share``; augmented rows excluded),
  with the teacher's stored probabilities from data/labels.parquet;
- the teacher's stored answers on every labeled text, so scoring the teacher costs no calls.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from pipeline.errors import DataError
from pipeline.evaluate.predictors import text_key
from pipeline.evaluate.suites.base import EvalData


def in_validation(ids, share: float) -> np.ndarray:
    """The distill stage's validation rule over row ids (must stay in step with pipeline/distill)."""
    out = np.empty(len(ids), dtype=bool)
    for i, key in enumerate(ids):
        out[i] = int.from_bytes(hashlib.sha1(str(key).encode()).digest()[:4], "big") / 2**32 < share
    return out


def read_labels_table(path: str | Path):
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: labels file not found (run the label stage first)")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if b"labels" not in meta:
        raise DataError(f"{path}: Parquet metadata has no 'labels' key (docs/contracts.md)")
    return table.to_pandas(), list(json.loads(meta[b"labels"]))


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
