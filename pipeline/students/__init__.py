"""Student architectures, by registry name (``distill.student.name`` in params.yaml).

Every student is a ``torch.nn.Module`` mapping the featurizer's int64 id matrix ``[batch, width]``
(0 = padding) to logits ``[batch, classes]``, built by ``build_student(name, num_features, num_classes,
featurizer_spec, **kwargs)``. The forward pass uses only Gather, masked pooling and dense layers so the
ONNX export has dynamic batch and length and int8 quantization shrinks every weight.
torch is imported when a student is built, never when this registry is imported.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pipeline.errors import DistillError

# name -> module defining ``build(num_features, num_classes, featurizer, **kwargs) -> nn.Module``
_REGISTRY: dict[str, str] = {
    "hashed-ngram-bag": "pipeline.students.ngram_bag",
    "wordpiece-cnn": "pipeline.students.wordpiece_cnn",
}


class StudentConfigError(DistillError):
    """A student was asked for with arguments it does not take, or with an unsuitable featurizer."""


def registered_students() -> list[str]:
    return list(_REGISTRY)


def build_student(name: str, num_features: int, num_classes: int, featurizer, initialize: bool = True,
                  **kwargs: Any):
    """Build a registered student; unknown keyword arguments are an error naming the key.

    ``initialize=False`` skips costly initialization from the teacher (``init_from_teacher``) when
    trained weights are about to be loaded anyway.
    """
    if name not in _REGISTRY:
        raise StudentConfigError(f"unknown student {name!r}; registered: {sorted(_REGISTRY)}")
    build = importlib.import_module(_REGISTRY[name]).build
    params = inspect.signature(build).parameters
    allowed = {k for k in params if k not in ("num_features", "num_classes", "featurizer")}
    extra = sorted(set(kwargs) - allowed)
    if extra:
        raise StudentConfigError(f"distill.student.kwargs: {name} does not take {extra}; it takes {sorted(allowed)}")
    if not initialize and "init_from_teacher" in params:
        kwargs["init_from_teacher"] = False
    return build(num_features=num_features, num_classes=num_classes, featurizer=featurizer, **kwargs)
