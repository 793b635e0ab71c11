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

from pipeline.distill.rows import MemoryRows, RowStore, RowWriter, chunks
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

    def train_rows(self) -> MemoryRows:
        return MemoryRows(self.train_texts, self.train_probs, self.train_targets)

    def val_rows(self) -> MemoryRows:
        return MemoryRows(self.val_texts, self.val_probs, np.full(len(self.val_texts), -1, dtype=np.int64))

    def test_rows(self) -> MemoryRows:
        return MemoryRows(self.test_texts, self.test_probs, self.test_gold)


@dataclass
class StoredTransferSet:
    """The same split as :class:`TransferSet`, with each part in a :class:`RowStore` on disk (the distill stage).
    ``test.probs`` is absent when the teacher did not label the test split; its targets are gold (-1 unknown)."""

    labels: list[str]
    train: RowStore
    val: RowStore
    test: RowStore
    digest: str  # equal to the digest a TransferSet of the same rows has

    def train_rows(self) -> RowStore:
        return self.train

    def val_rows(self) -> RowStore:
        return self.val

    def test_rows(self) -> RowStore:
        return self.test


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


def stream_transfer_set(ingested_path, labels_path, validation_share: float, use_gold: bool,
                        folder, batch_rows: int = 65_536) -> StoredTransferSet:
    """:func:`build_transfer_set` over the two Parquet files, read in batches of ``batch_rows`` and written
    to row stores under ``folder``: memory holds one batch and the gold labels of ``labeled`` and ``test``
    rows, never the tables. The rows, their order and the digest equal what :func:`build_transfer_set`
    gives on the same files."""
    from pathlib import Path

    from pipeline.outputs import column_batches, read_label_names

    label_names = read_label_names(labels_path)
    k = len(label_names)
    if k < 2:
        raise DataError(f"labels data names {k} label(s); need at least 2")
    index = {name: i for i, name in enumerate(label_names)}
    folder = Path(folder)
    gold: dict[str, int | str] = {}  # id -> label index (the label itself when it is not a teacher label)
    for batch in column_batches(ingested_path, ["id", "label", "split"], "run the ingest stage first", batch_rows):
        for i, label, split in zip(*(batch.column(c).to_pylist() for c in ("id", "label", "split"))):
            if label is not None and split in ("labeled", "test"):
                gold[i] = index.get(label, label)
    import pyarrow.parquet as pq

    has_origin = "origin_id" in pq.read_schema(labels_path).names
    columns = ["id", "text", "split", "probs"] + (["origin_id"] if has_origin else [])
    train, val = RowWriter(folder / "train", k), RowWriter(folder / "val", k)
    test: RowWriter | None = None
    for batch in column_batches(labels_path, columns, "run the label stage first", batch_rows):
        probs = _probs_matrix(batch.column("probs"), k)
        ids = batch.column("id").to_pylist()
        origin = batch.column("origin_id").to_pylist() if has_origin else ids
        keys = [o if isinstance(o, str) and o else i for o, i in zip(origin, ids)]
        split = np.array(batch.column("split").to_pylist(), dtype=object)
        texts = [t if isinstance(t, str) else str(t) for t in batch.column("text").to_pylist()]
        transfer = np.isin(split, TRANSFER_SPLITS)
        in_val = in_validation(keys, validation_share) & transfer
        is_val = in_val & (split != "augmented")
        is_train = transfer & ~in_val
        targets = np.full(len(ids), -1, dtype=np.int64)
        if use_gold:
            for i in np.flatnonzero((split == "labeled") & is_train):
                g = gold.get(ids[i])
                if isinstance(g, str):
                    raise DataError(f"labeled row {ids[i]}: gold label {g!r} is not one of the teacher's labels")
                if g is not None:
                    targets[i] = g
        for writer, mask in ((train, is_train), (val, is_val)):
            rows = np.flatnonzero(mask)
            writer.append([texts[i] for i in rows], probs[rows], targets[rows])
        rows = np.flatnonzero(split == "test")
        if len(rows):
            test = test or RowWriter(folder / "test", k)
            gold_index = np.array([_index(gold.get(ids[i])) for i in rows], dtype=np.int64)
            test.append([texts[i] for i in rows], probs[rows], gold_index)
    train_rows, val_rows = train.close(), val.close()
    if train_rows.n == 0 or val_rows.n == 0:
        raise DataError(f"transfer set too small: {train_rows.n} train / {val_rows.n} validation rows "
                        f"(validation_share={validation_share}); label more data or change the share")
    if test is None:  # the teacher did not label the test split: accuracy only
        test = RowWriter(folder / "test", None)
        for batch in column_batches(ingested_path, ["id", "text", "split"], "run the ingest stage first", batch_rows):
            split = batch.column("split").to_pylist()
            rows = [i for i, s in enumerate(split) if s == "test"]
            if rows:
                texts, ids = batch.column("text").to_pylist(), batch.column("id").to_pylist()
                test.append([str(texts[i]) for i in rows], None,
                            np.array([_index(gold.get(ids[i])) for i in rows], dtype=np.int64))
    return StoredTransferSet(labels=list(label_names), train=train_rows, val=val_rows, test=test.close(),
                             digest=_stored_digest(label_names, train_rows, val_rows))


def _index(gold) -> int:
    return gold if isinstance(gold, int) else -1


def _probs_matrix(column, k: int) -> np.ndarray:
    """A Parquet ``list<float>`` column as a float32 ``[rows, k]`` matrix, without a Python object per row."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        raise DataError("labels data: some rows have no probs")
    widths = np.diff(column.offsets.to_numpy())
    if len(widths) and (widths != k).any():
        raise DataError(f"labels data: probs rows have width ({int(widths[widths != k][0])},) but there are {k} "
                        "label names")
    probs = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, k)
    if not np.isfinite(probs).all():
        raise DataError("labels data: probs hold NaN or infinite values")
    return probs


def _stored_digest(label_names: list[str], train: RowStore, val: RowStore) -> str:
    """:attr:`TransferSet.digest` of the stored rows, read back in chunks."""
    h = hashlib.sha256(json.dumps(label_names).encode())
    for rows in (train, val):
        first = True
        for texts, _, _ in chunks(rows):
            h.update(("" if first else "\x1f").encode() + "\x1f".join(texts).encode())
            first = False
    for path in (train.folder / "probs.f32", train.folder / "targets.i64", val.folder / "probs.f32"):
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]
