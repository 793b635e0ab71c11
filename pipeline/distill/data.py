"""The training view of the data: transfer set (soft labels), validation slice and test rows.

Built from the two artifacts of earlier stages (docs/contracts.md): ``data/ingested.parquet`` (gold
labels, splits) and ``data/labels.parquet`` (teacher probabilities). Rules:

- train on rows of splits ``labeled``, ``unlabeled``, ``augmented`` and ``feedback`` with the teacher's soft labels;
  a gold label is used only on ``labeled`` rows (gold labels of ``unlabeled`` rows are hidden);
- the validation slice is carved from the transfer set by a hash of the row id (an augmented row
  follows its ``origin_id``, so no variant of a validation text is trained on), never from ``test``;
- ``test`` rows are only evaluated: accuracy against gold, agreement with the teacher.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import DataError

TRANSFER_SPLITS = ("labeled", "unlabeled", "augmented", "feedback")  # feedback: monitor disagreements


@dataclass
class TransferSet:
    labels: list[str]
    train_texts: list[str]
    train_probs: np.ndarray  # float32 [n, k]
    train_targets: np.ndarray  # int64 [n], gold index on labeled rows else -1
    val_texts: list[str]
    val_probs: np.ndarray
    test_texts: list[str] = field(default_factory=list)
    test_gold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # -1 = unknown
    test_probs: np.ndarray | None = None

    @property
    def digest(self) -> str:
        """Changes when the texts, soft labels, targets or label names change (resume safety)."""
        h = hashlib.sha256(json.dumps(self.labels).encode())
        for texts in (self.train_texts, self.val_texts):
            h.update("\x1f".join(texts).encode())
        for arr in (self.train_probs, self.train_targets, self.val_probs):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]


def in_validation(keys, share: float) -> np.ndarray:
    out = np.empty(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        digest = hashlib.sha1(str(key).encode()).digest()
        out[i] = int.from_bytes(digest[:4], "big") / 2**32 < share
    return out


def _require(frame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; see docs/contracts.md for the format")


def build_transfer_set(ingested, labels_frame, label_names: list[str], validation_share: float,
                       use_gold: bool = True) -> TransferSet:
    """Split the labeled artifacts into train / validation / test arrays (pure; no files)."""
    _require(ingested, ["id", "text", "label", "split"], "ingested data")
    _require(labels_frame, ["id", "text", "split", "probs"], "labels data")
    k = len(label_names)
    if k < 2:
        raise DataError(f"labels data names {k} label(s); need at least 2")
    frame = labels_frame.reset_index(drop=True)
    probs = np.asarray(frame["probs"].tolist(), dtype=np.float32) if len(frame) else np.zeros((0, k), np.float32)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise DataError(f"labels data: probs rows have width {probs.shape[1:]} but there are {k} label names")
    if not np.isfinite(probs).all():
        raise DataError("labels data: probs hold NaN or infinite values")
    index = {name: i for i, name in enumerate(label_names)}
    gold_by_id = dict(zip(ingested["id"], ingested["label"]))
    origin = frame["origin_id"] if "origin_id" in frame.columns else frame["id"]
    keys = [o if isinstance(o, str) and o else i for o, i in zip(origin, frame["id"])]
    split = frame["split"].to_numpy()
    transfer = np.isin(split, TRANSFER_SPLITS)
    in_val = in_validation(keys, validation_share) & transfer
    val = in_val & (split != "augmented")
    train = transfer & ~in_val

    targets = np.full(len(frame), -1, dtype=np.int64)
    if use_gold:
        for i in np.flatnonzero((split == "labeled") & train):
            gold = gold_by_id.get(frame.at[i, "id"])
            if gold is None or (isinstance(gold, float) and np.isnan(gold)):
                continue
            if gold not in index:
                raise DataError(f"labeled row {frame.at[i, 'id']}: gold label {gold!r} is not one of the teacher's labels")
            targets[i] = index[gold]
    if train.sum() == 0 or val.sum() == 0:
        raise DataError(f"transfer set too small: {int(train.sum())} train / {int(val.sum())} validation rows "
                        f"(validation_share={validation_share}); label more data or change the share")

    test_mask = split == "test"
    texts = frame["text"].astype(str).tolist()
    if test_mask.any():
        test_texts = [texts[i] for i in np.flatnonzero(test_mask)]
        test_ids = frame["id"][test_mask].tolist()
        test_probs = probs[test_mask]
    else:  # the teacher did not label the test split: accuracy only
        rows = ingested[ingested["split"] == "test"]
        test_texts, test_ids, test_probs = rows["text"].astype(str).tolist(), rows["id"].tolist(), None
    test_gold = np.array([index.get(gold_by_id.get(i), -1) for i in test_ids], dtype=np.int64)
    return TransferSet(
        labels=list(label_names),
        train_texts=[texts[i] for i in np.flatnonzero(train)], train_probs=probs[train],
        train_targets=targets[train],
        val_texts=[texts[i] for i in np.flatnonzero(val)], val_probs=probs[val],
        test_texts=test_texts, test_gold=test_gold, test_probs=test_probs,
    )
