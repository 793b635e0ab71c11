"""Deterministic, stratified assignment of rows to ``test`` / ``labeled`` / ``unlabeled``.

Within each label, rows are ranked by ``sha256(f"{seed}:{id}")``: the split depends only on the
seed and the row ids (never on input order), and adding rows later leaves most assignments alone.
Order: ``test`` first (``test_fraction`` of each label, or the rows of a given test file), then
``labeled`` from what remains (``labeled_per_class`` rows, or ``labeled_fraction`` with at least
one per class), and the rest ``unlabeled``. Rows without a gold label can only be ``unlabeled``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _rank(ids: "pd.Series", seed: int) -> list:
    """Index labels of ``ids`` ordered by a seeded hash of the id."""
    return sorted(ids.index, key=lambda i: hashlib.sha256(f"{seed}:{ids[i]}".encode()).hexdigest())


def assign_splits(frame: "pd.DataFrame", seed: int, test_fraction: float, labeled_fraction: float,
                  labeled_per_class: int | None, fixed_test: "pd.Series | None" = None) -> "pd.Series":
    """The ``split`` of every row of ``frame`` (needs columns ``id`` and ``label``).

    ``fixed_test`` (bool per row) marks rows of a given test file; when it has any True value the
    test split is exactly those rows and ``test_fraction`` is not used.
    """
    import pandas as pd

    split = pd.Series("unlabeled", index=frame.index, dtype=object)
    has_label = frame["label"].notna()
    given_test = fixed_test is not None and bool(fixed_test.any())
    if given_test:
        split[fixed_test.astype(bool)] = "test"
    pool = frame[has_label & (split != "test")]
    for _, rows in pool.groupby("label", sort=True):
        order = _rank(rows["id"], seed)
        n_test = 0 if given_test else int(round(len(order) * test_fraction))
        split[order[:n_test]] = "test"
        rest = order[n_test:]
        if labeled_per_class is not None:
            n_labeled = min(labeled_per_class, len(rest))
        else:
            n_labeled = min(len(rest), max(1, int(round(len(rest) * labeled_fraction))))
        split[rest[:n_labeled]] = "labeled"
    return split
