"""Loss terms for distillation, by registry name, combined by weights from params.yaml.

``distill.losses: {kd: {weight: 0.9, temperature: 4.0}, ce: {weight: 0.1}}`` builds
``0.9 * kd(T=4) + 0.1 * ce``. Each term lives in its own module with its formula in the docstring and
has the signature ``term(student_logits, teacher_probs, targets) -> scalar tensor`` where ``targets``
are the hard labels (gold where known, else the teacher's argmax). torch is imported only when a loss
is built, so the config can check names without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.errors import DistillError
from pipeline.plugins import Plugins


class LossConfigError(DistillError):
    """A loss term was given arguments it does not take."""


# Loss builders by name (``build(**kwargs) -> term``), and the module that registers each.
LOSSES: Plugins[Callable] = Plugins("distill.losses entry", LossConfigError, kwargs_key="distill.losses.{name}",
                                    modules={"kd": "pipeline.losses.kd", "ce": "pipeline.losses.ce"})


def build_loss(name: str, **kwargs: Any) -> Callable:
    """Build one registered loss term, checking its keyword arguments."""
    return LOSSES.build(name, **kwargs)


def build_objective(terms: Mapping[str, Any]) -> Callable:
    """Weighted sum of loss terms from the ``distill.losses`` mapping (name -> LossTerm or dict)."""
    built = []
    for name, term in terms.items():
        if hasattr(term, "kwargs"):
            weight, kwargs = term.weight, term.kwargs()
        else:
            term = dict(term)
            weight, kwargs = float(term.pop("weight", 1.0)), term
        if weight > 0:
            built.append((name, weight, build_loss(name, **kwargs)))

    def objective(student_logits, teacher_probs, targets):
        total = 0.0
        for _name, weight, fn in built:
            total = total + weight * fn(student_logits, teacher_probs, targets)
        return total

    return objective
