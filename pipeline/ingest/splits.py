"""Deterministic, stratified assignment of rows to ``test`` / ``labeled`` / ``unlabeled``.

Within each label, rows are ranked by ``sha256(f"{seed}:{id}")``: the split depends only on the
seed and the row ids (never on input order), and adding rows later leaves most assignments alone.
Order: ``test`` first (``test_fraction`` of each label, or the rows of a given test file), then
``labeled`` from what remains (``labeled_per_class`` rows, or ``labeled_fraction`` with at least
one per class), and the rest ``unlabeled``. Rows without a gold label can only be ``unlabeled``.

The work runs on arrays (:func:`split_codes`: one 16-byte rank key and one label code per row), so
ingest can split millions of rows without holding their texts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SPLIT_NAMES = ("unlabeled", "labeled", "test")  # the split of code 0, 1, 2
UNLABELED, LABELED, TEST = 0, 1, 2


def rank_keys(ids: Iterable[str], seed: int) -> np.ndarray:
    """The first 16 bytes of ``sha256(f"{seed}:{id}")`` of every id, as (n, 2) big-endian uint64 words:
    sorting by the two words sorts by the hex digest (ties beyond 128 bits cannot occur in practice)."""
    raw = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:16] for i in ids)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)


def split_codes(label_codes: np.ndarray, keys: np.ndarray, test_fraction: float, labeled_fraction: float,
                labeled_per_class: int | None, fixed_test: np.ndarray | None = None) -> np.ndarray:
    """The split code (:data:`SPLIT_NAMES`) of every row.

    ``label_codes``: one int per row, -1 for rows without a gold label; ``keys``: :func:`rank_keys` of the
    row ids. ``fixed_test`` (bool per row) marks rows of a given test file; when any is True the test split
    is exactly those rows and ``test_fraction`` is not used. Ties (equal ids) keep row order."""
    split = np.full(len(label_codes), UNLABELED, dtype=np.int8)
    given_test = fixed_test is not None and bool(fixed_test.any())
    if given_test:
        split[fixed_test.astype(bool)] = TEST
    pool = np.flatnonzero((label_codes >= 0) & (split != TEST))
    if not len(pool):
        return split
    order = pool[np.lexsort((pool, keys[pool, 1], keys[pool, 0], label_codes[pool]))]
    grouped = label_codes[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    for start, end in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
        size = end - start
        n_test = 0 if given_test else int(round(size * test_fraction))
        split[order[start:start + n_test]] = TEST
        rest = size - n_test
        if labeled_per_class is not None:
            n_labeled = min(labeled_per_class, rest)
        else:
            n_labeled = min(rest, max(1, int(round(rest * labeled_fraction))))
        split[order[start + n_test:start + n_test + n_labeled]] = LABELED
    return split


def assign_splits(frame: "pd.DataFrame", seed: int, test_fraction: float, labeled_fraction: float,
                  labeled_per_class: int | None, fixed_test: "pd.Series | None" = None) -> "pd.Series":
    """The ``split`` name of every row of ``frame`` (needs columns ``id`` and ``label``): :func:`split_codes`
    on a table in memory."""
    import pandas as pd

    codes, _ = pd.factorize(frame["label"], use_na_sentinel=True)
    fixed = None if fixed_test is None else fixed_test.to_numpy(dtype=bool)
    split = split_codes(codes, rank_keys(frame["id"], seed), test_fraction, labeled_fraction, labeled_per_class, fixed)
    return pd.Series(np.array(SPLIT_NAMES, dtype=object)[split], index=frame.index, dtype=object)
