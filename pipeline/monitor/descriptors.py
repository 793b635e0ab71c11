"""Text descriptors the drift report compares: length, out-of-vocabulary share, non-letter share.

The vocabulary is the set of words in the transfer set the student learned from, so a rising OOV share
means traffic uses words the student never saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[^\W\d_]+")

DESCRIPTORS = ("length", "oov_share", "nonletter_share")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    vocab: set[str] = set()
    for text in texts:
        vocab.update(words(text))
    return frozenset(vocab)


def describe(texts: Iterable[str], vocab: frozenset[str]):
    """A frame with one row per text: ``length`` (chars), ``oov_share`` (words not in ``vocab``),
    ``nonletter_share`` (characters that are neither letters nor spaces)."""
    import pandas as pd

    rows = []
    for text in texts:
        ws = words(text)
        chars = [c for c in text if not c.isspace()]
        rows.append({
            "length": float(len(text)),
            "oov_share": (sum(w not in vocab for w in ws) / len(ws)) if ws else 1.0,
            "nonletter_share": (sum(not c.isalpha() for c in chars) / len(chars)) if chars else 0.0,
        })
    return pd.DataFrame(rows, columns=list(DESCRIPTORS))
