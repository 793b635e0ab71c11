"""``python`` teacher: any callable ``module:function`` mapping a list of texts to probabilities.

Labels come from params (``teacher.python.labels``). The fingerprint covers the function's name and
the source of its whole module (helpers it calls included), so editing the code invalidates the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.teacher import PythonTeacherConfig
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register


class PythonTeacher:
    def __init__(self, cfg: PythonTeacherConfig):
        if not cfg.function or ":" not in cfg.function:
            raise TeacherError(f"teacher.python.function {cfg.function!r}: expected 'module:function'")
        if not cfg.labels:
            raise TeacherError("teacher.python.labels is not set: list the class names in output column order")
        module_name, func_name = cfg.function.split(":", 1)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise TeacherError(f"teacher.python.function: cannot import {module_name!r}: {exc}") from None
        self.function = getattr(module, func_name, None)
        if not callable(self.function):
            raise TeacherError(f"teacher.python.function: {module_name!r} has no callable {func_name!r}")
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            source = inspect.getsource(self.function)
        self.labels = list(cfg.labels)
        self.usage = getattr(module, "USAGE", None) if isinstance(getattr(module, "USAGE", None), dict) else None
        self._fingerprint = fingerprint_of("python", cfg.function, self.labels,
                                           hashlib.sha256(source.encode()).hexdigest())

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        try:
            probs = self.function(texts)
        except TeacherError:
            raise
        except Exception as exc:  # the user's code: any failure is a teacher failure, with its message
            raise TeacherError(f"{type(exc).__name__}: {exc}") from exc
        return check_probabilities(probs, len(texts), len(self.labels))


@register("python")
def build(cfg: PythonTeacherConfig, model_dir: str | Path) -> PythonTeacher:
    return PythonTeacher(cfg)
