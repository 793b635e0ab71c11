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

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import DataError
from pipeline.keys import content_id

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config.ingest import IngestConfig

COLUMNS = ["id", "text", "label", "split", "source", "group"]
SPLITS = ("labeled", "unlabeled", "test")


@dataclass
class IngestResult:
    """The ingested table (columns :data:`COLUMNS`) and the report written to ``metrics/ingest.json``."""

    table: "pd.DataFrame"
    report: dict[str, Any]


CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(frame: "pd.DataFrame", cfg: "IngestConfig", counts: Counter,
          variants: dict[str, list[str]] | None = None) -> "pd.DataFrame":
    """Normalize labels, handle control characters, drop empty/short texts, cap long ones, remove
    duplicate texts, fill ids. Counts every change; label spellings merged go into ``variants``."""
    missing = frame["text"].isna()
    counts["dropped.missing_text"] += int(missing.sum())
    frame = frame[~missing].copy()
    frame["label"] = normalize_labels(frame["label"], cfg.label_case, counts, variants if variants is not None else {})
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
    dup = frame["text"].duplicated(keep="first")
    counts["dropped.duplicate_text"] += int(dup.sum())
    frame = frame[~dup].copy()
    no_id = frame["id"].isna()
    frame.loc[no_id, "id"] = frame.loc[no_id, "text"].map(content_id)
    return frame


def normalize_labels(labels: "pd.Series", case: str, counts: Counter, variants: dict[str, list[str]]) -> "pd.Series":
    """Strip labels; merge, keep or refuse spellings that differ only in case (``ingest.label_case``)."""
    present = labels.notna()
    stripped = labels.copy()
    stripped[present] = labels[present].str.strip()
    changed = present & (stripped != labels)
    counts["repaired.label_whitespace"] += int(changed.sum())
    blank = present & stripped.eq("")
    counts["repaired.blank_label"] += int(blank.sum())
    stripped[blank] = None
    if case == "keep":
        return stripped
    spellings: dict[str, Counter] = {}
    for label in stripped.dropna():
        spellings.setdefault(label.casefold(), Counter())[label] += 1
    clashes = {key: c for key, c in spellings.items() if len(c) > 1}
    if not clashes:
        return stripped
    if case == "error":
        shown = "; ".join(" / ".join(repr(s) for s in c) for c in list(clashes.values())[:5])
        raise DataError(f"labels that differ only in case: {shown}; unify them in the data, or set "
                        "ingest.label_case: fold (merge) or keep (distinct classes)")
    mapping = {}
    for c in clashes.values():
        canonical = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        variants[canonical] = sorted(c)
        for spelling in c:
            if spelling != canonical:
                mapping[spelling] = canonical
    merged = stripped.isin(list(mapping))
    counts["repaired.label_case_merged"] += int(merged.sum())
    return stripped.replace(mapping)


def ingest(cfg: "IngestConfig", seed: int) -> IngestResult:
    """Read the configured source, clean it and assign splits. Raises DataError on unusable input."""
    import pandas as pd

    from pipeline.ingest.sources import read_source
    from pipeline.ingest.splits import assign_splits

    data = read_source(cfg, seed)
    counts = data.counts
    raw = data.frame
    if raw.empty:
        raise DataError(f"{_where(data.description)}: the dataset has no rows; check ingest.source")
    counts["read"] = len(raw)
    variants: dict[str, list[str]] = {}
    frame = clean(raw, cfg, counts, variants)
    if frame.empty:
        raise DataError(f"{_where(data.description)}: no usable rows left after cleaning ({_nonzero(counts)})")

    no_label = frame["label"].isna()
    counts["unlabeled.missing_label"] += int((no_label & frame["fixed_split"].isna()).sum())
    counts["test.missing_label"] += int((no_label & frame["fixed_split"].notna()).sum())
    fixed = frame["fixed_split"].eq("test")
    frame["split"] = assign_splits(frame, seed, cfg.test_fraction, cfg.labeled_fraction, cfg.labeled_per_class,
                                   fixed if fixed.any() else None)
    expects_labels = not (cfg.source.kind in {"csv", "parquet", "jsonl"} and cfg.source.label_column is None)
    if expects_labels and not frame["split"].eq("labeled").any():
        raise DataError(f"{_where(data.description)}: no labeled rows remain for training "
                        f"({int(no_label.sum())} of {len(frame)} rows have no label); check the label column / folders")

    table = frame[COLUMNS].reset_index(drop=True)
    for column in COLUMNS:
        table[column] = table[column].astype(pd.StringDtype())
    report = build_report(table, counts, data.description, seed)
    report["label_variants"] = variants  # canonical label -> every spelling merged into it
    return IngestResult(table, report)


def build_report(table: "pd.DataFrame", counts: Counter, description: dict, seed: int) -> dict[str, Any]:
    """The content of ``metrics/ingest.json``: sizes per split/label/group and every repair or drop."""
    def section(prefix: str) -> dict[str, int]:
        return {k.split(".", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith(prefix + ".") and v}

    per_label = {}
    for split in SPLITS:
        labels = table.loc[table["split"] == split, "label"].fillna("<none>")
        per_label[split] = {str(k): int(v) for k, v in sorted(labels.value_counts().items())}
    groups = table["group"].dropna().value_counts()
    return {
        "source": description,
        "seed": seed,
        "rows_read": int(counts.get("read", 0)),
        "rows": len(table),
        "splits": {split: int((table["split"] == split).sum()) for split in SPLITS},
        "labels": per_label,
        "groups": {str(k): int(v) for k, v in sorted(groups.items())},
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
