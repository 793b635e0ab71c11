"""Student architectures, by registry name (``distill.student.name`` in params.yaml).

Every student is a ``torch.nn.Module`` mapping the featurizer's int64 id matrix ``[batch, width]``
(0 = padding) to logits ``[batch, classes]``, built by ``build_student(name, num_features, num_classes,
featurizer_spec, **kwargs)``. The forward pass uses only Gather, masked pooling and dense layers so the
ONNX export has dynamic batch and length and int8 quantization shrinks every weight.
torch is imported when a student is built, never when this registry is imported.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import DistillError
from pipeline.plugins import Plugins


class StudentConfigError(DistillError):
    """A student was asked for with arguments it does not take, or with an unsuitable featurizer."""


# Student builders by name (``build(num_features, num_classes, featurizer, **kwargs) -> nn.Module``),
# and the module that registers each.
STUDENTS: Plugins = Plugins("distill.student.name", StudentConfigError, kwargs_key="distill.student.kwargs", modules={
    "hashed-ngram-bag": "pipeline.students.ngram_bag",
    "wordpiece-cnn": "pipeline.students.wordpiece_cnn",
})


def build_student(name: str, num_features: int, num_classes: int, featurizer, initialize: bool = True,
                  **kwargs: Any):
    """Build a registered student; unknown keyword arguments are an error naming the key.

    ``initialize=False`` skips costly initialization from the teacher (``init_from_teacher``) when
    trained weights are about to be loaded anyway.
    """
    import inspect

    if not initialize and "init_from_teacher" in inspect.signature(STUDENTS.get(name)).parameters:
        kwargs["init_from_teacher"] = False
    return STUDENTS.build(name, num_features=num_features, num_classes=num_classes, featurizer=featurizer,
                          fixed=("num_features", "num_classes", "featurizer"), **kwargs)
