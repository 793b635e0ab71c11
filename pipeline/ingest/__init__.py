"""ingest: read a dataset into one table with deterministic splits (docs/contracts.md, ``data/ingested.parquet``).

    python -m pipeline.ingest --out data/ingested.parquet --metrics metrics/ingest.json [--set ingest.spamassassin.per_group=50]

Every source (the embedded SpamAssassin default, CSV / Parquet / JSONL tables, a folder of raw
emails) is read by a registered reader (:mod:`pipeline.ingest.sources`), then cleaned the same way:
rows without text or shorter than ``min_chars`` are dropped, texts longer than ``max_chars`` are
capped, exact duplicate texts are removed (first kept), and ids are the source id when
``id_column`` is set, else a content hash (first 16 hex digits of sha256 of the text), so ids are
stable across runs. Each of these is counted in the report; nothing disappears silently.

Splits (:mod:`pipeline.ingest.splits`): ``test``, ``labeled``, ``unlabeled``. Rows of the
``unlabeled`` split keep their gold label in ``label`` only as hidden evaluation data (e.g. to
measure teacher quality on the transfer set); training may use gold labels of ``labeled`` rows only.
Rows whose source label is missing become ``unlabeled`` and are counted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import DataError
from pipeline.ingest.splits import LABELED, SPLIT_NAMES

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.ingest import IngestConfig

log = logging.getLogger("distill.ingest")

COLUMNS = ["id", "text", "label", "split", "source", "group"]
SPLITS = ("labeled", "unlabeled", "test")


@dataclass
class IngestResult:
    """The ingested table (columns :data:`COLUMNS`) and the report written to ``metrics/ingest.json``."""

    table: "pd.DataFrame"
    report: dict[str, Any]


CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(frame: "pd.DataFrame", cfg: "IngestConfig", counts: Counter, spellings: dict[str, Counter]) -> "pd.DataFrame":
    """The row-by-row part of cleaning, on one raw frame: drop rows without text, strip labels (and count
    their spellings by case-folded form into ``spellings``), handle control characters, drop empty/short
    texts, cap long ones. Counts every change. Duplicates and label case are settled across all frames
    by :class:`Ingest`, since a duplicate or a clashing spelling can sit in another frame."""
    missing = frame["text"].isna()
    counts["dropped.missing_text"] += int(missing.sum())
    frame = frame[~missing].copy()
    frame["label"] = strip_labels(frame["label"], counts)
    for label in frame["label"].dropna():
        spellings.setdefault(label.casefold(), Counter())[label] += 1
    has_control = frame["text"].str.contains(CONTROL)
    if has_control.any():
        if cfg.control_chars == "reject":
            counts["dropped.control_characters"] += int(has_control.sum())
            frame = frame[~has_control].copy()
        else:
            counts["repaired.control_characters"] += int(has_control.sum())
            frame.loc[has_control, "text"] = frame.loc[has_control, "text"].str.replace(CONTROL, "", regex=True)
    stripped_len = frame["text"].map(lambda t: len(t.strip()))
    empty = stripped_len == 0
    counts["dropped.empty_text"] += int(empty.sum())
    short = ~empty & (stripped_len < cfg.min_chars)
    counts["dropped.shorter_than_min_chars"] += int(short.sum())
    frame = frame[~empty & ~short].copy()
    long = frame["text"].str.len() > cfg.max_chars
    counts["capped.longer_than_max_chars"] += int(long.sum())
    frame.loc[long, "text"] = frame.loc[long, "text"].str.slice(0, cfg.max_chars)
    return frame


def strip_labels(labels: "pd.Series", counts: Counter) -> "pd.Series":
    """Labels without surrounding whitespace; blank labels become missing."""
    present = labels.notna()
    stripped = labels.copy()
    stripped[present] = labels[present].str.strip()
    changed = present & (stripped != labels)
    counts["repaired.label_whitespace"] += int(changed.sum())
    blank = present & stripped.eq("")
    counts["repaired.blank_label"] += int(blank.sum())
    stripped[blank] = None
    return stripped


def case_mapping(spellings: dict[str, Counter], case: str, counts: Counter,
                 variants: dict[str, list[str]]) -> dict[str, str]:
    """Spelling -> canonical label for labels that differ only in case (``ingest.label_case``): ``fold``
    merges them into the most frequent spelling, ``keep`` leaves them distinct, ``error`` stops ingest."""
    clashes = {key: c for key, c in spellings.items() if len(c) > 1}
    if case == "keep" or not clashes:
        return {}
    if case == "error":
        shown = "; ".join(" / ".join(repr(s) for s in c) for c in list(clashes.values())[:5])
        raise DataError(f"labels that differ only in case: {shown}; unify them in the data, or set "
                        "ingest.label_case: fold (merge) or keep (distinct classes)")
    mapping = {}
    for c in clashes.values():
        canonical = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        variants[canonical] = sorted(c)
        for spelling, n in c.items():
            if spelling != canonical:
                mapping[spelling] = canonical
                counts["repaired.label_case_merged"] += n
    return mapping


class _Codes:
    """Small integer codes for the distinct strings of a column (labels, groups); None is -1."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, values) -> np.ndarray:
        index = self.index
        return np.fromiter((-1 if v is None else index.setdefault(v, len(index)) for v in values),
                           dtype=np.int32, count=len(values))

    def names(self) -> list[str]:
        return list(self.index)


def ingest(cfg: "IngestConfig", seed: int) -> IngestResult:
    """Read the configured source, clean it and assign splits, into one table in memory. Raises
    DataError on unusable input. The ingest stage writes the same table without holding it:
    :func:`ingest_to`."""
    import pandas as pd

    with Ingest(cfg, seed) as run:
        parts = list(run.tables())
    table = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return IngestResult(table, run.report)


def ingest_to(path: str | Path, cfg: "IngestConfig", seed: int) -> dict[str, Any]:
    """Ingest into the Parquet file ``path`` (written atomically, row group by row group) and return the
    report. Memory holds one batch of rows plus about 40 bytes per row (hashes and codes), never the texts."""
    from pipeline.io import write_parquet_batches

    with Ingest(cfg, seed) as run:
        write_parquet_batches(path, run.tables())
    return run.report


class Ingest:
    """One ingest run in two passes over the source.

    1. Every raw frame is cleaned (:func:`clean`) and spilled to a scratch Parquet file (``TMPDIR``);
       memory keeps per row a 16-byte hash of the final text, a 16-byte split rank key, a label code,
       a group code and whether it came from a given test file.
    2. With every row seen, duplicates (first kept), label case, splits and the report are settled on
       those arrays; :meth:`tables` then reads the scratch file back and yields the ingested table in
       frames of :data:`pipeline.io.PARQUET_ROW_GROUP` rows.

    The result is the one a single in-memory pass gives: the same rows, order, ids, splits and report.
    """

    def __init__(self, cfg: "IngestConfig", seed: int):
        self.cfg, self.seed = cfg, seed
        self._scratch = tempfile.TemporaryDirectory(prefix="distill-ingest-")
        try:
            self._first_pass()
        except BaseException:
            self._scratch.cleanup()
            raise

    def __enter__(self) -> "Ingest":
        return self

    def __exit__(self, *exc) -> None:
        self._scratch.cleanup()

    def _first_pass(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipeline.ingest.sources import read_source
        from pipeline.ingest.splits import rank_keys

        cfg = self.cfg
        data = read_source(cfg, self.seed)
        counts = self.counts = data.counts
        self.description = data.description
        spellings: dict[str, Counter] = {}
        labels, groups = _Codes(), _Codes()
        text_keys, split_keys, label_codes, group_codes, fixed = [], [], [], [], []
        self._spill = Path(self._scratch.name) / "cleaned.parquet"
        writer = None
        started = last_log = time.perf_counter()
        try:
            for raw in data.frames:
                counts["read"] += len(raw)
                frame = clean(raw, cfg, counts, spellings)
                if time.perf_counter() - last_log >= 10.0:
                    last_log = time.perf_counter()
                    log.info("ingest: read %d rows (%.0f rows/s)", counts["read"], counts["read"] / (last_log - started))
                if frame.empty:
                    continue
                digests = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in frame["text"]]
                no_id = frame["id"].isna().to_numpy()
                if no_id.any():  # content ids: the first 16 hex digits of the text's sha256 (pipeline.keys)
                    frame.loc[no_id, "id"] = [d[:8].hex() for d, missing in zip(digests, no_id) if missing]
                text_keys.append(np.frombuffer(b"".join(d[:16] for d in digests), dtype=">u8").reshape(-1, 2))
                split_keys.append(rank_keys(frame["id"], self.seed))
                label_codes.append(labels.encode(frame["label"].tolist()))
                group_codes.append(groups.encode(frame["group"].tolist()))
                fixed.append(np.fromiter((_FIXED.get(v, 2) for v in frame["fixed_split"]), dtype=np.int8,
                                         count=len(frame)))
                batch = pa.Table.from_pandas(frame[_SPILLED], schema=_spill_schema(), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(self._spill, _spill_schema())
                writer.write_table(batch)
        finally:
            if writer is not None:
                writer.close()
        where = _where(data.description)
        if not counts["read"]:
            raise DataError(f"{where}: the dataset has no rows; check ingest.source")
        if writer is None:
            raise DataError(f"{where}: no usable rows left after cleaning ({_nonzero(counts)})")
        text_key = np.concatenate(text_keys)
        keep = _first_of_each(text_key)
        del text_key, text_keys
        counts["dropped.duplicate_text"] += int(len(keep) - keep.sum())
        self._keep = keep

        self.variants: dict[str, list[str]] = {}
        mapping = case_mapping(spellings, cfg.label_case, counts, self.variants)
        spelled = labels.names()
        final = sorted({mapping.get(s, s) for s in spelled})
        code_of = {label: code for code, label in enumerate(final)}
        to_final = np.array([code_of[mapping.get(s, s)] for s in spelled] + [-1], dtype=np.int32)
        label = to_final[np.concatenate(label_codes)[keep]]  # -1 (no label) indexes the appended -1
        origin = np.concatenate(fixed)[keep]
        no_label = label < 0
        counts["unlabeled.missing_label"] += int((no_label & (origin == 0)).sum())
        counts["test.missing_label"] += int((no_label & (origin != 0)).sum())
        self._split = self._assign(label, np.concatenate(split_keys)[keep], origin == 1)
        if self._expects_labels() and not (self._split == LABELED).any():
            raise DataError(f"{where}: no labeled rows remain for training ({int(no_label.sum())} of {len(label)} "
                            "rows have no label); check the label column / folders")
        self._labels = np.array(final + [None], dtype=object)[label]
        self.report = self._report(label, final, np.concatenate(group_codes)[keep], groups.names())

    def _assign(self, label: np.ndarray, keys: np.ndarray, fixed_test: np.ndarray) -> np.ndarray:
        from pipeline.ingest.splits import split_codes

        cfg = self.cfg
        return split_codes(label, keys, cfg.test_fraction, cfg.labeled_fraction, cfg.labeled_per_class,
                           fixed_test if fixed_test.any() else None)

    def _expects_labels(self) -> bool:
        return not (self.cfg.source.kind in {"csv", "parquet", "jsonl"} and self.cfg.source.label_column is None)

    def _report(self, label: np.ndarray, names: list[str], group: np.ndarray, group_names: list[str]) -> dict:
        per_label = {}
        shown = np.array(names + ["<none>"], dtype=object)
        for code, split in enumerate(SPLIT_NAMES):
            values, n = np.unique(label[self._split == code], return_counts=True)
            per_label[split] = {str(shown[v]): int(c) for v, c in sorted(zip(values, n), key=lambda vc: str(shown[vc[0]]))}
        values, n = np.unique(group[group >= 0], return_counts=True)
        group_counts = {group_names[v]: int(c) for v, c in zip(values, n)}
        split_sizes = {split: int((self._split == code).sum()) for code, split in enumerate(SPLIT_NAMES)}
        report = build_report(self.counts, self.description, self.seed, len(label),
                              {s: split_sizes[s] for s in SPLITS}, {s: per_label[s] for s in SPLITS}, group_counts)
        report["label_variants"] = self.variants  # canonical label -> every spelling merged into it
        return report

    def tables(self) -> Iterator["pd.DataFrame"]:
        """The ingested table (columns :data:`COLUMNS`, string dtype), in frames of
        :data:`pipeline.io.PARQUET_ROW_GROUP` rows (the last may be shorter)."""
        import pandas as pd
        import pyarrow.parquet as pq

        from pipeline.io import PARQUET_ROW_GROUP

        names = np.array(SPLIT_NAMES, dtype=object)
        start = kept = 0
        pending: list[pd.DataFrame] = []
        size = 0
        for batch in pq.ParquetFile(self._spill).iter_batches(batch_size=PARQUET_ROW_GROUP):
            keep = self._keep[start:start + batch.num_rows]
            start += batch.num_rows
            frame = batch.to_pandas()[keep].reset_index(drop=True)
            n = len(frame)
            frame["label"] = self._labels[kept:kept + n]
            frame["split"] = names[self._split[kept:kept + n]]
            kept += n
            pending.append(frame[COLUMNS].astype(pd.StringDtype()))
            size += n
            while size >= PARQUET_ROW_GROUP:
                joined = pd.concat(pending, ignore_index=True)
                yield joined.iloc[:PARQUET_ROW_GROUP].reset_index(drop=True)
                pending, size = [joined.iloc[PARQUET_ROW_GROUP:].reset_index(drop=True)], size - PARQUET_ROW_GROUP
        if size or not kept:
            yield pd.concat(pending, ignore_index=True) if pending else pd.DataFrame(
                {c: pd.Series([], dtype=pd.StringDtype()) for c in COLUMNS})


_SPILLED = ["id", "text", "label", "source", "group"]
_FIXED = {None: 0, "test": 1}  # fixed_split of a raw row -> code (2: any other given split)


def _spill_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in _SPILLED])


def _first_of_each(keys: np.ndarray) -> np.ndarray:
    """True for the first row of each distinct (n, 2) key, in row order."""
    order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
    ranked = keys[order]
    first = np.r_[True, (ranked[1:] != ranked[:-1]).any(axis=1)]
    keep = np.zeros(len(keys), dtype=bool)
    keep[order[first]] = True
    return keep


def build_report(counts: Counter, description: dict, seed: int, rows: int, splits: dict[str, int],
                 labels: dict[str, dict[str, int]], groups: dict[str, int]) -> dict[str, Any]:
    """The content of ``metrics/ingest.json``: sizes per split/label/group and every repair or drop."""
    def section(prefix: str) -> dict[str, int]:
        return {k.split(".", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith(prefix + ".") and v}

    return {
        "source": description,
        "seed": seed,
        "rows_read": int(counts.get("read", 0)),
        "rows": rows,
        "splits": splits,
        "labels": labels,
        "groups": dict(sorted(groups.items())),
        "dropped": section("dropped"),
        "capped": section("capped"),
        "repaired": section("repaired"),
        "skipped": section("skipped"),
        "unlabeled": section("unlabeled"),
        "test_without_label": int(counts.get("test.missing_label", 0)),
    }


def _where(description: dict) -> str:
    return str(description.get("path") or description.get("package") or description.get("kind"))


def _nonzero(counts: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if v) or "nothing read"
