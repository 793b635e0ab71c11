"""The hint loss: the student's features also learn the teacher encoder's sentence embedding of each text.

A teacher that classifies from a sentence encoder (``embedding-head``) knows more about a text than its
class probabilities say: the embedding places it among every other text the encoder has seen. With
``distill.hint_weight`` > 0 the student's representation before its class layer (``features``: the
hidden ReLU layer of ``hashed-ngram-bag``) goes through a linear map to the encoder's width, and the
objective adds ``hint_weight * (1 - cosine(map(features), embedding))``, averaged over the batch. The
map is a training aid only: it is not part of the student's weights, its export or its speed.

The embeddings are the ones the teacher computed when it labeled the text (its embedding cache,
``teacher.embedding_head.cache_dir``, answers them without running the encoder again); only rows the
teacher labeled get one, so a labeling budget is never exceeded. They travel with the training rows,
after the probabilities: a train row holds ``k + d`` values (``k`` labels, ``d`` the encoder width) and
the training loop splits them. Validation and test rows are unchanged.

Measured (docs/benchmarks.md, "The hint loss"): weight 1.0 raised the mean validation agreement of three
seeds on BANKING77 in both regimes and left it unchanged on the demo's e-mails.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.distill.data import StoredTransferSet, TransferSet, _stored_digest
from pipeline.distill.rows import BLOCK_ROWS, RowWriter, chunks

log = logging.getLogger("distill.distill")

Embedder = Callable[[list[str]], np.ndarray]


def teacher_embedder(teacher) -> Embedder | None:
    """The teacher's sentence encoder (``texts -> [n, d]`` float32), or None when it has none (LLM, ONNX,
    Hugging Face classifiers and Python teachers answer with probabilities only)."""
    encoder = getattr(teacher, "encoder", None)
    embed = getattr(encoder, "embed", None)
    if not callable(embed):
        return None

    def embedder(texts: list[str]) -> np.ndarray:
        return np.asarray(embed(texts), dtype=np.float32)

    return embedder


def stage_embedder(teacher_cfg, teacher_dir: str | Path) -> Embedder | None:
    """The fitted teacher's sentence encoder for the distill stage, or None for a teacher without one
    (only ``embedding-head`` has one; the others are not loaded)."""
    if teacher_cfg.kind != "embedding-head":
        log.info("teacher %s has no sentence encoder: the student trains without the hint loss", teacher_cfg.kind)
        return None
    from pipeline.teachers import load_teacher

    return teacher_embedder(load_teacher(teacher_cfg, teacher_dir))


def with_hints(data: TransferSet | StoredTransferSet, embed: Embedder | None, folder: str | Path | None = None,
               batch_rows: int = 8192) -> TransferSet | StoredTransferSet:
    """``data`` with each train row's embedding after its probabilities (``[n, k + d]``); ``data`` itself
    when ``embed`` is None.

    The train rows are embedded about ``batch_rows`` at a time (whole blocks), with progress in the log. A
    :class:`TransferSet` is extended in memory; a :class:`StoredTransferSet` is copied into a new train
    store under ``folder``."""
    if embed is None:
        return data
    stored = isinstance(data, StoredTransferSet)
    if stored and folder is None:
        raise ValueError("a stored transfer set needs a folder for its hinted train rows")
    rows = data.train_rows()
    writer, parts, done = None, [], 0
    for texts, probs, targets in chunks(rows, max(1, batch_rows // BLOCK_ROWS) * BLOCK_ROWS):
        hinted_probs = np.concatenate([probs, embed(texts)], axis=1)
        if not stored:
            parts.append(hinted_probs)
        else:
            writer = writer or RowWriter(Path(folder), hinted_probs.shape[1])
            writer.append(texts, hinted_probs, targets)
        done += len(texts)
        log.info("hint embeddings: %d of %d train texts", done, rows.n)
    if not stored:
        return dataclasses.replace(data, train_probs=np.concatenate(parts))
    train = writer.close()
    return dataclasses.replace(data, train=train, digest=_stored_digest(data.labels, train, data.val))


def hinted(model, width: int):
    """A training module around ``model`` (a student with ``features``, ``classify`` and ``feature_width``):
    ``forward(ids) -> (logits, projected features)``; the projection (``feature_width`` -> ``width``) is its
    only parameter of its own."""
    from torch import nn

    class Hinted(nn.Module):
        def __init__(self):
            super().__init__()
            self.student = model
            self.projection = nn.Linear(model.feature_width, width)

        def forward(self, ids):
            features = self.student.features(ids)
            return self.student.classify(features), self.projection(features)

    return Hinted()


def hint_loss(projected, embeddings):
    """Mean cosine distance between the projected features and the teacher's embeddings."""
    import torch

    return (1.0 - torch.nn.functional.cosine_similarity(projected, embeddings, dim=1)).mean()
