"""Table sources: CSV, Parquet and JSONL files with configurable text / label / id columns.

``ingest.source.path`` is the training pool; ``ingest.source.test_path`` (optional) is a given test
split (BANKING77: ``train.csv`` + ``test.csv`` with ``label_column: category``). Bytes that do not
decode in ``ingest.source.encoding`` stop ingest with an error naming the file (never a silent
replacement), because a wrong encoding silently corrupts every non-ASCII text.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import DataError
from pipeline.ingest.sources import SourceData, raw_frame, register

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.ingest import IngestConfig, SourceConfig


def _read_csv(path: Path, src: "SourceConfig", counts: Counter) -> "pd.DataFrame":
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, encoding=src.encoding)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV file: {exc}") from None


def _read_parquet(path: Path, src: "SourceConfig", counts: Counter) -> "pd.DataFrame":
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


def _read_jsonl(path: Path, src: "SourceConfig", counts: Counter) -> "pd.DataFrame":
    import pandas as pd

    records = []
    with path.open(encoding=src.encoding) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                counts["dropped.bad_json_line"] += 1
                continue
            if not isinstance(record, dict):
                counts["dropped.bad_json_line"] += 1
                continue
            records.append(record)
    return pd.DataFrame.from_records(records)


_FORMATS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def read_table(path: str | Path, src: "SourceConfig", counts: Counter) -> "pd.DataFrame":
    """Read one table file in the configured format, with errors that say what to fix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (set ingest.source.path / test_path to an existing file)")
    try:
        frame = _FORMATS[src.kind](path, src, counts)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: byte {exc.start} is not valid {src.encoding} ({exc.reason}); set ingest.source.encoding "
            f"to the file's encoding (e.g. latin-1 or cp1252) or re-save the file as UTF-8"
        ) from None
    wanted = [c for c in (src.text_column, src.label_column, src.id_column) if c]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has columns "
            f"{', '.join(map(repr, map(str, frame.columns)))} (set ingest.source.text_column / label_column / id_column)"
        )
    return frame


def _rows(frame: "pd.DataFrame", src: "SourceConfig", source: str, fixed_split: str | None) -> list[dict]:
    import pandas as pd

    def cell(value):
        return None if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)) else str(value)

    texts = frame[src.text_column].tolist()
    labels = frame[src.label_column].tolist() if src.label_column else [None] * len(frame)
    ids = frame[src.id_column].tolist() if src.id_column else [None] * len(frame)
    return [
        {"id": cell(i), "text": cell(t), "label": cell(lab), "group": None, "source": source, "fixed_split": fixed_split}
        for t, lab, i in zip(texts, labels, ids)
    ]


def read_tables(cfg: "IngestConfig", seed: int) -> SourceData:
    """Reader for csv / parquet / jsonl: the pool file plus the optional given test file."""
    src = cfg.source
    counts: Counter = Counter()
    rows = []
    # The given test file comes first so that, when a text sits in both files, the test copy is kept
    # and the training copy is the one removed as a duplicate (no leakage, test set unchanged).
    if src.test_path:
        rows += _rows(read_table(src.test_path, src, counts), src, Path(src.test_path).name, "test")
    rows += _rows(read_table(src.path, src, counts), src, Path(src.path).name, None)
    description = {"kind": src.kind, "path": src.path, "test_path": src.test_path, "text_column": src.text_column,
                   "label_column": src.label_column, "id_column": src.id_column, "encoding": src.encoding}
    return SourceData(raw_frame(rows), counts, description)


for _kind in _FORMATS:
    register(_kind)(read_tables)
