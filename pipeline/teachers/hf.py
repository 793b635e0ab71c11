"""``hf`` teacher: a transformers sequence classifier from a local directory or a hub id.

Labels are the model config's ``id2label`` in index order. The fingerprint covers the model's file
digest (a local directory) or its id and revision (hub), and ``max_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.teacher import HFConfig
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register
from pipeline.teachers.files import source_digest, weight_files_in


class HFTeacher:
    def __init__(self, cfg: HFConfig):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise in stage and flow logs

        if not cfg.model:
            raise TeacherError("teacher.hf.model is not set: give a local model directory or a hub id")
        local = Path(cfg.model).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, revision=cfg.revision, local_files_only=local)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                cfg.model, revision=cfg.revision, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise TeacherError(f"teacher.hf.model {cfg.model!r} could not be loaded: {exc}") from None
        self.model.eval()
        id2label = self.model.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]
        self.cfg = cfg
        digest = source_digest(cfg.model) if local else f"{cfg.model}@{cfg.revision or 'main'}"
        self._fingerprint = fingerprint_of("hf", digest, cfg.max_length)

    def weight_files(self) -> list[Path]:
        return weight_files_in(self.cfg.model)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.cfg.batch_size):
                batch = self.tokenizer(texts[start:start + self.cfg.batch_size], truncation=True, padding=True,
                                       max_length=self.cfg.max_length, return_tensors="pt")
                out.append(torch.softmax(self.model(**batch).logits.double(), dim=-1).numpy())
        probs = np.concatenate(out) if out else np.zeros((0, len(self.labels)))
        return check_probabilities(probs, len(texts), len(self.labels))


@register("hf")
def build(cfg: HFConfig, model_dir: str | Path) -> HFTeacher:
    return HFTeacher(cfg)
