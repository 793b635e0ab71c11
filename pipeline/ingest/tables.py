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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import DataError
from pipeline.ingest.sources import BATCH_ROWS, SourceData, raw_frame, register

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.ingest import IngestConfig, SourceConfig


def _read_csv(path: Path, src: "SourceConfig", counts: Counter) -> Iterator["pd.DataFrame"]:
    import pandas as pd

    # The C parser ends a field at a NUL byte ("crash\0 on start" -> "crash"); the python parser keeps it,
    # and ingest's control-character rule then decides (ingest.control_chars). Only such files pay for it.
    engine = "python" if _has_nul(path) else "c"
    # The C parser reads ahead: a broken quote can fail while the reader opens or at any later chunk.
    try:
        with pd.read_csv(path, dtype=str, encoding=src.encoding, engine=engine, chunksize=BATCH_ROWS) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV file: {exc}") from None


def _has_nul(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(b"\0" in block for block in iter(lambda: fh.read(1 << 20), b""))


def _read_parquet(path: Path, src: "SourceConfig", counts: Counter) -> Iterator["pd.DataFrame"]:
    import pyarrow.parquet as pq

    try:  # pyarrow raises several types for corrupt files
        table = pq.ParquetFile(path)
        wanted = [c for c in (src.text_column, src.label_column, src.id_column) if c]
        if any(c not in table.schema_arrow.names for c in wanted) or table.metadata.num_rows == 0:
            yield table.schema_arrow.empty_table().to_pandas()  # every column, for read_table's check
            return
        for batch in table.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield batch.to_pandas()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


def _read_jsonl(path: Path, src: "SourceConfig", counts: Counter) -> Iterator["pd.DataFrame"]:
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
            if len(records) == BATCH_ROWS:
                yield pd.DataFrame.from_records(records)
                records = []
    yield pd.DataFrame.from_records(records)


_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE = "\0line"  # where a JSONL row came from (for error messages); never a real column name


_FORMATS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def read_table(path: str | Path, src: "SourceConfig", counts: Counter) -> Iterator["pd.DataFrame"]:
    """Read one table file in the configured format, one frame of at most :data:`BATCH_ROWS` rows at a
    time, with errors that say what to fix. Every frame has the configured columns: a JSONL record without
    one gets None there, and a column no record has is an error once the file is read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (set ingest.source.path / test_path to an existing file)")
    wanted = [c for c in (src.text_column, src.label_column, src.id_column) if c]
    seen: list[str] = []
    frames = _FORMATS[src.kind](path, src, counts)
    fixed_columns = src.kind != "jsonl"  # a CSV header or a Parquet schema names every column up front
    try:
        for frame in frames:
            seen += [c for c in frame.columns if c not in seen]
            if fixed_columns:
                _check_columns(path, wanted, seen)
            yield frame.reindex(columns=list(frame.columns) + [c for c in wanted if c not in frame.columns])
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: byte {exc.start} is not valid {src.encoding} ({exc.reason}); set ingest.source.encoding "
            f"to the file's encoding (e.g. latin-1 or cp1252) or re-save the file as UTF-8"
        ) from None
    _check_columns(path, wanted, seen)


def _check_columns(path: Path, wanted: list[str], columns: list) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has columns "
            f"{', '.join(map(repr, map(str, columns)))} (set ingest.source.text_column / label_column / id_column)"
        )


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


def _rows(frame: "pd.DataFrame", src: "SourceConfig", source: str, fixed_split: str | None, path: str,
          first_row: int = 0) -> list[dict]:
    """Raw rows of one frame of a table file whose first data row is row ``first_row + 1`` of the file."""
    lines = frame[_LINE].tolist() if _LINE in frame.columns else None
    texts = frame[src.text_column].tolist()
    labels = frame[src.label_column].tolist() if src.label_column else [None] * len(frame)
    ids = frame[src.id_column].tolist() if src.id_column else [None] * len(frame)
    out = []
    for n, (t, lab, i) in enumerate(zip(texts, labels, ids)):
        row = f"line {lines[n]}" if lines is not None else f"row {first_row + n + 1}"  # data rows count from 1
        out.append({"id": _cell(i, path, row, src.id_column or "", False),
                    "text": _cell(t, path, row, src.text_column, True),
                    "label": _cell(lab, path, row, src.label_column or "", False),
                    "group": None, "source": source, "fixed_split": fixed_split})
    return out


def read_tables(cfg: "IngestConfig", seed: int) -> SourceData:
    """Reader for csv / parquet / jsonl: the pool file plus the optional given test file, batch by batch."""
    src = cfg.source
    counts: Counter = Counter()
    description = {"kind": src.kind, "path": src.path, "test_path": src.test_path, "text_column": src.text_column,
                   "label_column": src.label_column, "id_column": src.id_column, "encoding": src.encoding}
    return SourceData(_table_frames(src, counts), counts, description)


def _table_frames(src: "SourceConfig", counts: Counter) -> Iterator["pd.DataFrame"]:
    # The given test file comes first so that, when a text sits in both files, the test copy is kept
    # and the training copy is the one removed as a duplicate (no leakage, test set unchanged).
    files = ([(src.test_path, "test")] if src.test_path else []) + [(src.path, None)]
    for path, fixed_split in files:
        first_row = 0
        for frame in read_table(path, src, counts):
            yield raw_frame(_rows(frame, src, Path(path).name, fixed_split, path, first_row))
            first_row += len(frame)


for _kind in _FORMATS:
    register(_kind)(read_tables)
