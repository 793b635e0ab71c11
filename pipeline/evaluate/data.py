"""Build the evaluation data from the pipeline's tables (docs/contracts.md).

- test rows: ``split == "test"`` of data/ingested.parquet with their gold labels and groups;
- held-out rows: the student's validation slice of the transfer set, chosen by the distill stage's own
  rule (``pipeline.distill.data.in_validation`` with ``distill.validation_share``; augmented rows excluded),
  with the teacher's stored probabilities from data/labels.parquet;
- the teacher's stored answers on those texts, so scoring the teacher on them costs no calls.

With ``max_rows``, at most that many test rows and that many held-out rows are used, chosen by a hash of
the row id and kept in file order: every row when there are fewer. :func:`read_eval_data` reads both
tables in Parquet batches, so memory holds the chosen rows, not the tables.
"""

from __future__ import annotations

import hashlib

import numpy as np

from pipeline.distill.data import in_validation  # the distill stage's own rule: one rule for both stages
from pipeline.errors import DataError
from pipeline.keys import text_key
from pipeline.evaluate.suites.base import EvalData


def read_eval_data(data_path, labels_path, validation_share: float, group_column: str = "group",
                   max_rows: int | None = None) -> tuple[EvalData, dict[str, np.ndarray], list[str]]:
    """(EvalData, teacher's known probabilities by text key, label names) from data/ingested.parquet and
    data/labels.parquet, read in batches: the test rows (filtered by split), then the labels file twice,
    once for the ids of held-out rows and once for the chosen rows' texts and probabilities."""
    from pipeline.outputs import column_batches, read_ingested, read_label_names

    names = read_label_names(labels_path)
    test = _chosen(read_ingested(data_path, ("id", "text", "label", "split"), splits=("test",)), max_rows)
    wanted = {text_key(t) for t in test["text"]}
    missing = "run the label stage first"
    ids, start = [], 0
    for batch in column_batches(labels_path, ["id", "split"], missing):
        transfer = np.array([i for i, split in enumerate(batch.column("split").to_pylist()) if split in TRANSFER_SPLITS],
                            dtype=np.int64)
        id_list = batch.column("id").to_pylist()
        rows = transfer[in_validation([id_list[i] for i in transfer], validation_share)]
        ids.append(([id_list[i] for i in rows], start + rows))
        start += batch.num_rows
    held_ids = [i for chunk, _ in ids for i in chunk]
    held_rows = np.concatenate([rows for _, rows in ids]) if ids else np.zeros(0, dtype=np.int64)
    held_rows = held_rows[_chosen_positions(held_ids, max_rows)]
    del ids, held_ids
    texts, probs, known, start = {}, {}, {}, 0
    take = set(held_rows.tolist())
    for batch in column_batches(labels_path, ["text", "split", "probs"], missing):
        batch_texts, split = batch.column("text").to_pylist(), batch.column("split").to_pylist()
        keep = []  # (position in the batch, text, held-out row number or None, text key)
        for i, (text, row_split) in enumerate(zip(batch_texts, split)):
            row = start + i
            if row in take:
                keep.append((i, text, row, text_key(text)))
            elif row_split == "test" and (key := text_key(text)) in wanted:
                keep.append((i, text, None, key))
        start += batch.num_rows
        if not keep:
            continue
        column = batch.column("probs")
        flat = column.flatten().to_numpy(zero_copy_only=False)
        matrix = flat.reshape(-1, len(names)) if len(flat) == batch.num_rows * len(names) else None
        for i, text, row, key in keep:
            # np.array copies: a view would keep the whole batch's matrix alive (at 10M rows, every batch)
            p = np.array(matrix[i] if matrix is not None else column[i].as_py(), dtype=np.float64)
            if row is not None:
                texts[row], probs[row] = text, p
            known[key] = p
    order = sorted(texts)
    return (_eval_data(test, names, group_column, [str(texts[r]) for r in order], [probs[r] for r in order]), known,
            names)


TRANSFER_SPLITS = ["labeled", "unlabeled"]  # rows of data/labels.parquet the student may have trained on


def _chosen_positions(ids: list, max_rows: int | None) -> np.ndarray:
    """Positions of at most ``max_rows`` of ``ids``: those with the smallest sha1 of the id, in their order."""
    if max_rows is None or len(ids) <= max_rows:
        return np.arange(len(ids))
    rank = np.array([int.from_bytes(hashlib.sha1(f"eval:{i}".encode()).digest()[:8], "big") for i in ids],
                    dtype=np.uint64)
    return np.sort(np.lexsort((np.arange(len(ids)), rank))[:max_rows])


def _chosen(frame, max_rows: int | None):
    """The rows of ``frame`` that :func:`_chosen_positions` picks."""
    return frame.iloc[_chosen_positions(frame["id"].tolist(), max_rows)]


def _eval_data(test, label_names: list[str], group_column: str, held_texts: list[str],
               held_probs: list[np.ndarray]) -> EvalData:
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({str(v) for v in test["label"].dropna() if v not in index})
    if unknown:
        raise DataError(f"test labels {unknown[:5]} are not among the teacher's labels {label_names}")
    targets = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in test["label"]], dtype=np.int64)
    # A source without groups (CSV, JSONL) stores missing values (pd.NA in a string column): keep them as None.
    groups = ([g if isinstance(g, str) else None for g in test[group_column].tolist()]
              if group_column in test.columns else None)
    return EvalData(labels=list(label_names), test_texts=test["text"].astype(str).tolist(), test_targets=targets,
                    test_groups=groups, heldout_texts=held_texts,
                    heldout_teacher=np.stack(held_probs) if held_probs else None)
