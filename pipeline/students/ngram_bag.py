"""``hashed-ngram-bag``: fastText-style student. Mean of the embeddings of token ids and hashed token
n-grams (see featurize.py), then a linear layer (or one hidden ReLU layer and a linear layer).

Written as Gather + sum / count rather than ``nn.EmbeddingBag``: the latter exports to an ONNX Loop
whose Gather int8 quantization leaves alone, while a plain Gather is quantized (4x smaller).
``hidden > 0`` puts one ReLU layer of that width between the pooled bag and the class logits: the plain
bag is a linear model of its features (what TF-IDF + logistic regression also is), the hidden layer lets
the student combine them, which is where it gains over the linear peers on the teacher's soft labels.
``sparse=True`` gives the embedding sparse gradients: a step touches only the rows of the batch, which
is what keeps training a 100k-row table fast on a CPU (see train.py's optimizer split).
"""

from __future__ import annotations


from pipeline.students import STUDENTS


@STUDENTS.register("hashed-ngram-bag")
def build(num_features: int, num_classes: int, featurizer=None, dim: int = 64, init_scale: float = 0.1,
          sparse: bool = True, hidden: int = 0):
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

        def forward(self, ids):
            # The padding row stays zero (padding_idx; int8 maps 0 to its zero point exactly), so the sum
            # needs no mask: one pass over the gathered rows fewer than a masked mean.
            count = (ids != 0).sum(dim=1, keepdim=True).to(torch.float32).clamp_min(1.0)
            return self.head(self.embedding(ids).sum(dim=1) / count)

    return NgramBag()
