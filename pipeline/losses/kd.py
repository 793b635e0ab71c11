"""Knowledge-distillation loss: KL(teacher_T || student_T) * T^2, averaged over the batch.

The teacher is stored as probabilities p (its logits are not part of the labels artifact), so it is
tempered in probability space: ``p_T = p^(1/T) / sum_j p_j^(1/T)``, which equals softmax(log p / T),
i.e. exactly what softmax(z / T) gives for the teacher's logits z up to a constant shift. The student is
``q_T = softmax(s / T)``. Then

    kd = T^2 * mean_batch sum_k p_T,k * (log p_T,k - log q_T,k)

The T^2 factor keeps gradient magnitudes comparable across temperatures (Hinton et al.). Zero teacher
probabilities are clamped to 1e-12 before the logarithm so tempering stays finite.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pipeline.losses import LOSSES


@LOSSES.register("kd")
def build(temperature: Annotated[float, Field(gt=0)] = 1.0):
    if not temperature > 0:
        from pipeline.losses import LossConfigError

        raise LossConfigError(f"distill.losses.kd.temperature must be > 0, got {temperature}")

    def kd(student_logits, teacher_probs, targets=None):
        import torch
        import torch.nn.functional as F

        t = float(temperature)
        log_p = F.log_softmax(torch.log(teacher_probs.clamp_min(1e-12)) / t, dim=-1)
        log_q = F.log_softmax(student_logits / t, dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
        return kl.mean() * t * t

    return kd
