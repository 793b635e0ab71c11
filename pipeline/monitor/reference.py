"""The reference set: ingested rows of ``monitor.reference_splits`` with the student's predictions on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.monitor.descriptors import describe, vocabulary

TRANSFER_SPLITS = ("labeled", "unlabeled")


def student_columns(bundle, texts: list[str], variant: str = "int8") -> dict[str, list]:
    """``label`` and ``confidence`` the bundle gives each text (the columns the prediction log holds)."""
    probs = bundle.predict_proba(texts, variant) if texts else np.zeros((0, len(bundle.labels)))
    return {"label": [bundle.labels[i] for i in probs.argmax(axis=1)], "confidence": probs.max(axis=1).astype(float).tolist()}


def build_reference(ingested, bundle, splits: list[str], max_rows: int, seed: int = 0):
    """(reference frame with text, descriptors, label, confidence; vocabulary of the transfer texts)."""
    import pandas as pd

    vocab = vocabulary(ingested.loc[ingested["split"].isin(TRANSFER_SPLITS), "text"].astype(str))
    ref = ingested[ingested["split"].isin(splits)]
    if ref.empty:
        raise ValueError(f"no ingested rows of splits {splits} for the monitor's reference set")
    if len(ref) > max_rows:
        ref = ref.sample(n=max_rows, random_state=seed)
    texts = ref["text"].astype(str).tolist()
    frame = pd.concat([pd.DataFrame({"text": texts}), describe(texts, vocab),
                       pd.DataFrame(student_columns(bundle, texts))], axis=1)
    return frame, vocab


def load_reference(ingested_path: str | Path, bundle_dir: str | Path, splits: list[str], max_rows: int, seed: int = 0):
    from pipeline.bundle import load_bundle
    from pipeline.outputs import read_ingested

    return build_reference(read_ingested(ingested_path), load_bundle(bundle_dir), splits, max_rows, seed)
