"""The self-describing student checkpoint (``models/student/checkpoint.pt``).

One ``torch.save`` dict, loadable with ``weights_only=True``::

    format       "distill-student/1"
    student      {"name", "kwargs"}                   architecture by registry name
    labels       [label names]                        column order of the logits
    featurizer   {"config": {...}, "tokenizer_json"}  everything featurize.py needs
    num_features int
    state_dict   best weights so far (what export ships)
    training     {fingerprint, epoch, last_state, optimizer, best_epoch, best_val, bad_epochs,
                  history, done}                      what resume needs

Export and serving rebuild the model from this file alone, without params.yaml.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import DistillError
from pipeline.io import atomic_write_bytes

FORMAT = "distill-student/1"
_KEYS = ("student", "labels", "featurizer", "num_features", "state_dict")


class CheckpointError(DistillError):
    """A checkpoint is missing, unreadable or from an incompatible format."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    import torch

    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint dict; every failure names the file and what to do."""
    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found (run the distill stage first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
                              "delete it and re-run the distill stage") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: checkpoint format {got!r} is not {FORMAT!r}; re-run the distill stage")
    missing = [k for k in _KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; re-run the distill stage")
    return ckpt


@dataclass
class LoadedStudent:
    model: Any  # torch.nn.Module in eval mode
    labels: list[str]
    featurizer_spec: Any  # FeaturizerSpec
    student: dict[str, Any]
    checkpoint: dict[str, Any]


def load_student(path: str | Path) -> LoadedStudent:
    """Rebuild the trained student (best weights) and its featurizer spec from a checkpoint."""
    from pipeline.students import build_student
    from pipeline.students.featurize import spec_from_dict

    ckpt = read_checkpoint(path)
    feat = ckpt["featurizer"]
    spec = spec_from_dict(feat["config"], feat["tokenizer_json"])
    student = ckpt["student"]
    kwargs = dict(student.get("kwargs", {}))
    # the trained weights replace any initialization from the teacher
    model = build_student(student["name"], ckpt["num_features"], len(ckpt["labels"]), spec,
                          initialize=False, **kwargs)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {student['name']} "
                              f"{kwargs}: {str(exc).splitlines()[0]}") from None
    model.eval()
    return LoadedStudent(model=model, labels=list(ckpt["labels"]), featurizer_spec=spec, student=student,
                         checkpoint=ckpt)
