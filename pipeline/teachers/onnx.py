"""``onnx`` teacher: a classifier exported to ONNX plus its tokenizer; labels come from params.

The graph's inputs are fed by name from the tokenizer's outputs (``input_ids``, ``attention_mask``,
``token_type_ids``, int64). Its first output is taken as probabilities when every row already is a
distribution, else as logits (softmax applied). The fingerprint covers the model and tokenizer files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.teacher import OnnxTeacherConfig
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register
from pipeline.teachers.files import source_digest, weight_files_in

BATCH = 32


class OnnxTeacher:
    def __init__(self, cfg: OnnxTeacherConfig):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        if not cfg.path or not Path(cfg.path).is_file():
            raise TeacherError(f"teacher.onnx.path {cfg.path!r}: not an ONNX file")
        if not cfg.tokenizer:
            raise TeacherError("teacher.onnx.tokenizer is not set: give a tokenizer directory or hub id")
        if not cfg.labels:
            raise TeacherError("teacher.onnx.labels is not set: list the class names in output column order")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.session = ort.InferenceSession(cfg.path, opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        local = Path(cfg.tokenizer).is_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer, local_files_only=local)
        self.labels = list(cfg.labels)
        self.cfg = cfg
        self._fingerprint = fingerprint_of("onnx", source_digest(cfg.path), source_digest(cfg.tokenizer), self.labels)

    def weight_files(self) -> list[Path]:
        return weight_files_in(self.cfg.path) + weight_files_in(self.cfg.tokenizer)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = []
        for start in range(0, len(texts), BATCH):
            enc = self.tokenizer(texts[start:start + BATCH], truncation=True, padding=True, return_tensors="np")
            missing = [name for name in self.inputs if name not in enc]
            if missing:
                raise TeacherError(f"ONNX teacher input(s) {missing} are not produced by the tokenizer")
            feeds = {name: enc[name].astype(np.int64) for name in self.inputs}
            out.append(np.asarray(self.session.run(None, feeds)[0], dtype=np.float64))
        raw = np.concatenate(out) if out else np.zeros((0, len(self.labels)))
        is_dist = raw.size and np.all(raw >= 0) and np.allclose(raw.sum(axis=1), 1.0, atol=1e-4)
        if not is_dist and raw.ndim == 2:
            raw = np.exp(raw - raw.max(axis=1, keepdims=True))
            raw = raw / raw.sum(axis=1, keepdims=True)
        return check_probabilities(raw, len(texts), len(self.labels))


@register("onnx")
def build(cfg: OnnxTeacherConfig, model_dir: str | Path) -> OnnxTeacher:
    return OnnxTeacher(cfg)
