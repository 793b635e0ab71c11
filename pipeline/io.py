"""Small file helpers: atomic writes, so a killed stage never leaves a half-written output.

A file is written to a temporary name and renamed into place. Temporary files live in
``.distill/tmp/`` of the working directory (when it is on the same file system as the target), never
inside a DVC output, and carry their writer's process id: whatever a killed writer left there is
removed by the next writer. Files end with the mode the umask gives (``mkstemp`` alone would leave 0600).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import DataError

TMP_DIR = Path(".distill") / "tmp"


def _umask() -> int:
    try:  # Linux states it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0666 less the umask."""
    return 0o666 & ~_umask()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: Path) -> int:
    """Remove what writers that are no longer running left in ``folder``; returns how many entries."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


_swept: set[Path] = set()


def temp_dir_for(path: str | Path) -> Path:
    """Where temporaries of ``path`` go: ``.distill/tmp`` when on the target's file system, else beside it."""
    target_dir = Path(path).absolute().parent
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = TMP_DIR.absolute()
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        same_fs = os.stat(tmp).st_dev == os.stat(target_dir).st_dev
    except OSError:
        same_fs = False
    folder = tmp if same_fs else target_dir
    if folder not in _swept:
        sweep_stale(folder)
        _swept.add(folder)
    return folder


def _temp_file(path: Path) -> tuple[int, str]:
    """A new temporary file for ``path`` (fd, name), named after this process so a sweep can tell it is ours."""
    return tempfile.mkstemp(dir=temp_dir_for(path), prefix=f"{os.getpid()}-", suffix=f"-{path.name}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """A fresh folder to build ``path`` in; on success it replaces ``path`` whole, on failure it is removed."""
    path = Path(path)
    staging = Path(tempfile.mkdtemp(dir=temp_dir_for(path), prefix=f"{os.getpid()}-", suffix=f"-{path.name}"))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        if path.exists():
            old = staging.with_name(staging.name + "-old")
            os.rename(path, old)
            os.rename(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n").encode())


class JSONFileError(DataError, ValueError):
    """A file that should hold JSON does not; the message names the file and the place."""


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a file that is not JSON (or not UTF-8) is a :class:`JSONFileError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise JSONFileError(f"{path}: not valid JSON (byte {exc.start} is not UTF-8)") from None


PARQUET_ROW_GROUP = 131_072  # a reader that streams a table (label, distill, export) holds one row group


def write_parquet(path: str | Path, frame) -> None:
    """Write a pandas DataFrame to Parquet atomically, in row groups of :data:`PARQUET_ROW_GROUP` rows."""
    write_parquet_batches(path, [frame])


def write_parquet_batches(path: str | Path, frames) -> None:
    """Write pandas DataFrames (an iterable, e.g. a generator; the same columns and dtypes) as one Parquet
    file, atomically, in row groups of :data:`PARQUET_ROW_GROUP` rows: frames of exactly that many rows
    give the bytes ``DataFrame.to_parquet`` gives for their concatenation. Holds one frame at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    fd, tmp = _temp_file(path)
    os.close(fd)
    writer = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=PARQUET_ROW_GROUP)
        if writer is None:
            raise ValueError(f"{path}: no frame to write")
        writer.close()
        writer = None
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays, Paths
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
