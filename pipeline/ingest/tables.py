"""Table sources: CSV, Parquet and JSONL files with configurable text / label / id columns.

``ingest.source.path`` is the training pool; ``ingest.source.test_path`` (optional) is a given test
split (BANKING77: ``train.csv`` + ``test.csv`` with ``label_column: category``). Bytes that do not
decode in ``ingest.source.encoding`` stop ingest with an error naming the file (never a silent
replacement), because a wrong encoding silently corrupts every non-ASCII text.
"""

from __future__ import annotations

import json
import re
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

    # The C parser ends a field at a NUL byte ("crash\0 on start" -> "crash"); the python parser keeps it,
    # and ingest's control-character rule then decides (ingest.control_chars). Only such files pay for it.
    engine = "python" if _has_nul(path) else "c"
    try:
        return pd.read_csv(path, dtype=str, encoding=src.encoding, engine=engine)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV file: {exc}") from None


def _has_nul(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(b"\0" in block for block in iter(lambda: fh.read(1 << 20), b""))


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
            for column in (src.text_column, src.label_column, src.id_column):
                value = record.get(column) if column else None
                if isinstance(value, str) and _SURROGATE.search(value):
                    raise DataError(f"{path}:{lineno}: column {column!r} holds a lone surrogate "
                                    f"({_SURROGATE.search(value).group()!a}), which is not valid Unicode; fix the "
                                    "line (a \\uD8xx escape needs its low half)")
            record[_LINE] = lineno
            records.append(record)
    return pd.DataFrame.from_records(records)


_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE = "\0line"  # where a JSONL row came from (for error messages); never a real column name


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


def _cell(value, path: str, row: str, column: str, text: bool):
    """A cell as a string, None when missing; a value that is not text is an error naming where it is."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, dict, tuple, bool)) and not hasattr(value, "__len__") and pd.isna(value):
        return None
    if not text and not isinstance(value, bool):  # labels and ids may be numbers: 3 and 3.0 are the class "3"
        if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
            return str(int(value))
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise DataError(f"{path}: {row}, column {column!r}: expected {'text' if text else 'a string or an integer'}, "
                    f"got {type(value).__name__} {shown}; ingest never turns such values into strings")


def _rows(frame: "pd.DataFrame", src: "SourceConfig", source: str, fixed_split: str | None, path: str) -> list[dict]:
    lines = frame[_LINE].tolist() if _LINE in frame.columns else None
    texts = frame[src.text_column].tolist()
    labels = frame[src.label_column].tolist() if src.label_column else [None] * len(frame)
    ids = frame[src.id_column].tolist() if src.id_column else [None] * len(frame)
    out = []
    for n, (t, lab, i) in enumerate(zip(texts, labels, ids)):
        row = f"line {lines[n]}" if lines is not None else f"row {n + 1}"  # data rows count from 1
        out.append({"id": _cell(i, path, row, src.id_column or "", False),
                    "text": _cell(t, path, row, src.text_column, True),
                    "label": _cell(lab, path, row, src.label_column or "", False),
                    "group": None, "source": source, "fixed_split": fixed_split})
    return out


def read_tables(cfg: "IngestConfig", seed: int) -> SourceData:
    """Reader for csv / parquet / jsonl: the pool file plus the optional given test file."""
    src = cfg.source
    counts: Counter = Counter()
    rows = []
    # The given test file comes first so that, when a text sits in both files, the test copy is kept
    # and the training copy is the one removed as a duplicate (no leakage, test set unchanged).
    if src.test_path:
        rows += _rows(read_table(src.test_path, src, counts), src, Path(src.test_path).name, "test", src.test_path)
    rows += _rows(read_table(src.path, src, counts), src, Path(src.path).name, None, src.path)
    description = {"kind": src.kind, "path": src.path, "test_path": src.test_path, "text_column": src.text_column,
                   "label_column": src.label_column, "id_column": src.id_column, "encoding": src.encoding}
    return SourceData(raw_frame(rows), counts, description)


for _kind in _FORMATS:
    register(_kind)(read_tables)
