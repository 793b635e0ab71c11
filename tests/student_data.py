"""Small BANKING77 fixtures in the formats of data/ingested.parquet and data/labels.parquet.

Soft labels are simulated from gold: the gold class gets most of the mass, the rest is spread with
seeded noise, and a share of rows get a wrong teacher argmax, so the student learns from an imperfect
teacher as it would from a real one.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from tests.conftest import require_banking77


def simulated_teacher_probs(gold: np.ndarray, k: int, seed: int, confidence: float = 0.7,
                            wrong_share: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.dirichlet(np.full(k, 0.3), size=len(gold))
    target = gold.copy()
    flip = rng.random(len(gold)) < wrong_share
    target[flip] = rng.integers(0, k, flip.sum())
    probs = (1 - confidence) * noise
    probs[np.arange(len(gold)), target] += confidence
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def banking77_frames(per_class_train: int | None = 20, test_rows: int | None = 400, labeled_share: float = 0.1,
                     seed: int = 0):
    """(ingested, labels_frame, label_names) built from a BANKING77 subset (None = all rows)."""
    root = require_banking77()
    train = pd.read_csv(root / "train.csv")
    test = pd.read_csv(root / "test.csv")
    if per_class_train is not None:
        train = train.groupby("category", group_keys=False).head(per_class_train)
    if test_rows is not None:
        test = test.sample(n=min(test_rows, len(test)), random_state=seed)
    names = sorted(train["category"].unique())
    index = {n: i for i, n in enumerate(names)}
    rng = np.random.default_rng(seed)
    split = np.where(rng.random(len(train)) < labeled_share, "labeled", "unlabeled")
    rows = pd.concat([
        pd.DataFrame({"text": train["text"].values, "label": train["category"].values, "split": split}),
        pd.DataFrame({"text": test["text"].values, "label": test["category"].values, "split": "test"}),
    ], ignore_index=True)
    rows["id"] = [hashlib.sha1(f"{i}:{t}".encode()).hexdigest()[:16] for i, t in enumerate(rows["text"])]
    rows["source"] = "banking77"
    rows["group"] = None
    ingested = rows[["id", "text", "label", "split", "source", "group"]]
    gold = rows["label"].map(index).to_numpy()
    probs = simulated_teacher_probs(gold, len(names), seed)
    labels_frame = pd.DataFrame({
        "id": rows["id"], "text": rows["text"], "split": rows["split"], "origin_id": None,
        "probs": list(probs), "pred": [names[i] for i in probs.argmax(1)], "fingerprint": "simulated-from-gold",
    })
    return ingested, labels_frame, names


def write_labels_parquet(path, labels_frame, names) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(labels_frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"labels": json.dumps(names).encode()})
    pq.write_table(table, path)
