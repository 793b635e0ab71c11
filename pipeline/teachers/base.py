"""The teacher protocol and its registry.

A teacher has ``labels`` (class names, in the column order of its probabilities), a ``fingerprint``
(a string that changes whenever its weights, prompt or settings change: the label cache is keyed by it)
and ``predict_proba(texts) -> float array [n, k]`` whose rows sum to 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pipeline.errors import DistillError
from pipeline.plugins import Plugins


class TeacherError(DistillError):
    """A teacher could not be built or gave an answer that cannot be used."""

    reason = "teacher_error"


class MalformedAnswer(TeacherError):
    """A teacher answered, but not with probabilities; ``reason`` names the defect for failure counts."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@runtime_checkable
class Teacher(Protocol):
    labels: list[str]

    @property
    def fingerprint(self) -> str: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


# Teachers by ``teacher.kind``, and the module that registers each.
TEACHERS: Plugins[Callable[..., Teacher]] = Plugins("teacher.kind", TeacherError, modules={
    "embedding-head": "pipeline.teachers.embedding_head",
    "hf": "pipeline.teachers.hf",
    "llm": "pipeline.teachers.llm",
    "onnx": "pipeline.teachers.onnx",
    "python": "pipeline.teachers.python",
})
register = TEACHERS.register


def build_teacher(kind: str, *args: Any, **kwargs: Any) -> Teacher:
    """Build the teacher registered under ``kind`` (importing its module on first use)."""
    return TEACHERS.get(kind)(*args, **kwargs)


def weight_bytes(teacher: Teacher) -> int | None:
    """Bytes of the files serving this teacher takes (``teacher.weight_files()``); None when it runs
    elsewhere (an API) or does not say."""
    files = getattr(teacher, "weight_files", lambda: [])()
    return sum(Path(f).stat().st_size for f in files) or None


def fingerprint_of(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (settings, file digests, prompt text)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_probabilities(probs: Any, n: int, k: int, atol: float = 1e-3) -> np.ndarray:
    """Return ``probs`` as float32 [n, k] or raise TeacherError saying what is wrong with it."""
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MalformedAnswer(f"teacher answer is not a numeric array: {exc}", "wrong_shape") from None
    if arr.shape != (n, k):
        raise MalformedAnswer(f"teacher answer has shape {arr.shape}, expected {(n, k)}", "wrong_shape")
    if not np.all(np.isfinite(arr)):
        raise MalformedAnswer("teacher answer holds NaN or infinite values", "non_finite")
    if np.any(arr < -atol):
        raise MalformedAnswer("teacher answer holds negative probabilities", "negative")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise MalformedAnswer(f"{bad.size} teacher rows do not sum to 1 (e.g. row {bad[0]} sums to {sums[bad[0]]:.4f})",
                              "bad_sum")
    return np.clip(arr, 0.0, 1.0).astype(np.float32)
