"""Cross-entropy on hard labels: gold where the row is labeled, else the teacher's argmax.

    ce = mean_batch -log softmax(s)_y,   y = gold if known else argmax_k p_k

``targets`` holds the gold label index or -1 where there is none; -1 is replaced by the teacher argmax.
"""

from __future__ import annotations


from pipeline.losses import LOSSES


@LOSSES.register("ce")
def build():
    def ce(student_logits, teacher_probs, targets):
        import torch
        import torch.nn.functional as F

        y = torch.where(targets >= 0, targets, teacher_probs.argmax(dim=-1))
        return F.cross_entropy(student_logits, y)

    return ce
