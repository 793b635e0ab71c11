"""Source readers, registered by ``ingest.source.kind``.

Every reader turns its input into raw frames (columns ``id`` (source id or None), ``text``,
``label`` (or None), ``group`` (or None), ``source``, ``fixed_split`` ("test" for rows of a given
test file, else None)) plus counts of what it had to repair or skip, so that
:func:`pipeline.ingest.ingest` cleans, deduplicates and splits every source the same way. A reader
of large files yields its frames one batch at a time (table files: :data:`BATCH_ROWS` rows), so
ingest never holds the whole source; counts are complete once the frames are exhausted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import DataError
from pipeline.plugins import Plugins

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.ingest import IngestConfig

RAW_COLUMNS = ["id", "text", "label", "group", "source", "fixed_split"]
BATCH_ROWS = 131_072  # rows per raw frame a table reader yields


@dataclass
class SourceData:
    """What a reader returns: the raw rows (frames, in source order; may be a generator), counts of
    repairs/skips (filled while the frames are read), and a description for the report."""

    frames: Iterable["pd.DataFrame"]
    counts: Counter = field(default_factory=Counter)
    description: dict = field(default_factory=dict)


Reader = Callable[["IngestConfig", int], SourceData]
# Readers by the ``ingest.source.kind`` name they serve, and the module that registers each.
READERS: Plugins[Reader] = Plugins("ingest.source.kind", DataError, modules={
    "spamassassin": "pipeline.ingest.spamassassin", "email_dir": "pipeline.ingest.email_dir",
    "csv": "pipeline.ingest.tables", "parquet": "pipeline.ingest.tables", "jsonl": "pipeline.ingest.tables"})
register = READERS.register


def read_source(cfg: "IngestConfig", seed: int) -> SourceData:
    """Read the configured source with its registered reader."""
    return READERS.get(cfg.source.kind)(cfg, seed)


def raw_frame(rows: list[dict]) -> "pd.DataFrame":
    """A raw frame with exactly :data:`RAW_COLUMNS` (missing keys become None)."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in RAW_COLUMNS} for r in rows], columns=RAW_COLUMNS, dtype=object)
