"""The stage outputs: where they live, and one reader for each table.

Every path of the batch pipeline is written once, in the ``vars: paths`` block of dvc.yaml; the stage
commands there interpolate it (``${paths.ingested}``) and everything in Python that reads an output
(flows, the demo, the monitor, the bench, the registry CLI) asks :func:`path`::

    from pipeline import outputs
    outputs.path("gate")                  # Path("reports/gate.json")
    outputs.path("bundle", root=repo)     # repo / "models/bundle"

The paths are read from ``<root>/dvc.yaml`` when it has that block (a project's own dvc.yaml wins), else
from the dvc.yaml that ships with this package's source tree.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import DataError

_PACKAGE_DVC_YAML = Path(__file__).resolve().parents[1] / "dvc.yaml"
INGESTED_COLUMNS = ("id", "text", "label", "split", "source", "group")


@functools.lru_cache(maxsize=8)
def _paths_in(dvc_yaml: Path, mtime: float) -> dict[str, str]:
    import yaml

    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    for entry in spec.get("vars") or []:
        if isinstance(entry, dict) and isinstance(entry.get("paths"), dict):
            return {str(k): str(v) for k, v in entry["paths"].items()}
    return {}  # a dvc.yaml that spells its paths inline


def paths(root: str | Path = ".") -> dict[str, str]:
    """Every named output path (relative to the project root), from dvc.yaml."""
    for dvc_yaml in (Path(root) / "dvc.yaml", _PACKAGE_DVC_YAML):
        if dvc_yaml.is_file():
            found = _paths_in(dvc_yaml.resolve(), dvc_yaml.stat().st_mtime)
            if found:
                return dict(found)
    return {}


def path(name: str, root: str | Path = ".") -> Path:
    """The output ``name`` (e.g. ``ingested``, ``bundle``, ``gate``) under ``root``."""
    known = paths(root)
    if name not in known:
        raise DataError(f"no output named {name!r} in the `vars: - paths:` block of dvc.yaml; "
                        f"known: {', '.join(sorted(known)) or 'none'}")
    return Path(root) / known[name]


def stage_files(root: str | Path = ".") -> dict[str, dict[str, list[str]]]:
    """Stage name -> {"outs": [...], "metrics": [...], "plots": [...]}: dvc.yaml's paths with vars resolved."""
    import yaml

    dvc_yaml = Path(root) / "dvc.yaml"
    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    names = paths(root)
    resolve = lambda text: re.sub(r"\$\{paths\.([A-Za-z0-9_]+)\}", lambda m: names[m.group(1)], text)  # noqa: E731
    out: dict[str, dict[str, list[str]]] = {}
    for name, stage in (spec.get("stages") or {}).items():
        out[name] = {kind: [resolve(next(iter(e)) if isinstance(e, dict) else e) for e in stage.get(kind) or []]
                     for kind in ("outs", "metrics", "plots")}
    return out


def read_ingested(path: str | Path, columns: Sequence[str] = INGESTED_COLUMNS, splits: Sequence[str] | None = None):
    """Read ``data/ingested.parquet`` and check it holds the ``columns`` the caller needs. With ``splits``,
    only the rows of those splits are read (filtered row group by row group, never the whole table)."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: ingested table not found; run the ingest stage first (dvc repro ingest)")
    names = pq.read_schema(path).names
    missing = [c for c in [*columns, *(["split"] if splits is not None else [])] if c not in names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the ingest contract (docs/contracts.md)")
    if splits is None:
        return pd.read_parquet(path)
    return pd.read_parquet(path, filters=[("split", "in", list(splits))])


def column_batches(path: str | Path, columns: Sequence[str], missing: str, batch_rows: int = 65_536):
    """The ``columns`` of a Parquet file, one record batch (``batch_rows`` rows) at a time, so a reader
    that needs a bounded sample holds one batch, not the table. ``missing``: what to do when the file is
    absent (ends the error line)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; {missing}")
    table = pq.ParquetFile(path)
    absent = [c for c in columns if c not in table.schema_arrow.names]
    if absent:
        raise DataError(f"{path}: missing column(s) {absent}; expected the contract in docs/contracts.md")
    yield from table.iter_batches(batch_size=batch_rows, columns=list(columns))


def read_labels(path: str | Path):
    """Read ``data/labels.parquet`` and its label names (Parquet metadata key ``labels``)."""
    import pyarrow.parquet as pq

    names = read_label_names(path)
    return pq.read_table(path).to_pandas(), names


def read_label_names(path: str | Path) -> list[str]:
    """The label names of ``data/labels.parquet`` (Parquet metadata key ``labels``), read from its footer."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: labels file not found (run the label stage first)")
    meta = pq.read_schema(path).metadata or {}
    if b"labels" not in meta:
        raise DataError(f"{path}: Parquet metadata has no 'labels' key (the label names, see docs/contracts.md)")
    return list(json.loads(meta[b"labels"]))
