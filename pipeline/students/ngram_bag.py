"""``hashed-ngram-bag``: fastText-style student. Mean of the embeddings of token ids and hashed token
n-grams (see featurize.py), then a linear layer.

Written as Gather + masked mean rather than ``nn.EmbeddingBag``: the latter exports to an ONNX Loop
whose Gather int8 quantization leaves alone, while a plain Gather is quantized (4x smaller).
``sparse=True`` gives the embedding sparse gradients: a step touches only the rows of the batch, which
is what keeps training a 100k-row table fast on a CPU (see train.py's optimizer split).
"""

from __future__ import annotations


from pipeline.students import STUDENTS


@STUDENTS.register("hashed-ngram-bag")
def build(num_features: int, num_classes: int, featurizer=None, dim: int = 64, init_scale: float = 0.1,
          sparse: bool = True):
    import torch
    from torch import nn

    class NgramBag(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(num_features, dim, padding_idx=0, sparse=sparse)
            nn.init.uniform_(self.embedding.weight, -init_scale, init_scale)
            with torch.no_grad():
                self.embedding.weight[0].zero_()
            self.head = nn.Linear(dim, num_classes)

        def forward(self, ids):
            mask = (ids != 0).unsqueeze(-1).to(torch.float32)
            summed = (self.embedding(ids) * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp_min(1.0)
            return self.head(pooled)

    return NgramBag()
