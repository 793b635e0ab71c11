"""Ingest in batches: the same table and report whatever the batch size, and the file it streams out
is the one a whole-table write gives."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import pipeline.ingest.tables as tables
import pipeline.io as io
from pipeline.config.ingest import IngestConfig
from pipeline.errors import DataError
from pipeline.ingest import ingest, ingest_to

pytestmark = pytest.mark.data


def _messy(n: int = 240) -> pd.DataFrame:
    """Rows that need every cross-row decision: duplicates far apart, case clashes whose canonical
    spelling is decided by counts over the whole file, blank and spaced labels, partial ids."""
    rows = []
    for i in range(n):
        label = ["billing", "refund", "card"][i % 3]
        if i % 7 == 0:
            label = label.upper()
        if i % 11 == 0:
            label = f"  {label} "
        if i % 13 == 0:
            label = None
        text = f"message {i % 150} about {label}"  # rows 150.. repeat earlier texts
        if i % 17 == 0:
            text = "   "
        if i % 19 == 0:
            text += "\x07"
        rows.append({"text": text, "label": label, "ref": f"r{i}" if i % 2 else None})
    return pd.DataFrame(rows)


def _write(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                                for r in frame.to_dict("records")))


def _cfg(tmp_path, kind: str, **extra) -> IngestConfig:
    frame = _messy()
    path, test = tmp_path / f"pool.{kind}", tmp_path / f"test.{kind}"
    _write(frame, path)
    _write(frame.iloc[::9], test)
    return IngestConfig(source={"kind": kind, "path": str(path), "test_path": str(test), "id_column": "ref"},
                        labeled_fraction=0.3, **extra)


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_small_batches_give_the_table_and_report_of_one_batch(tmp_path, monkeypatch, kind):
    cfg = _cfg(tmp_path, kind)
    whole = ingest(cfg, 3)
    assert whole.report["dropped"]["duplicate_text"] > 0 and whole.report["repaired"]["label_case_merged"] > 0
    monkeypatch.setattr(tables, "BATCH_ROWS", 16)  # 240 rows read as 15 frames, written in 10-row groups
    monkeypatch.setattr(io, "PARQUET_ROW_GROUP", 10)
    batched = ingest(cfg, 3)
    pd.testing.assert_frame_equal(batched.table, whole.table)
    assert batched.report == whole.report


def test_the_streamed_file_is_the_whole_table_written_at_once(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "csv")
    monkeypatch.setattr(tables, "BATCH_ROWS", 16)
    monkeypatch.setattr(io, "PARQUET_ROW_GROUP", 10)
    report = ingest_to(tmp_path / "ingested.parquet", cfg, 3)
    table = ingest(cfg, 3).table
    table.to_parquet(tmp_path / "whole.parquet", index=False, row_group_size=10)
    assert (tmp_path / "ingested.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "ingested.parquet").metadata.num_row_groups == -(-report["rows"] // 10)


def test_a_bad_cell_in_a_later_batch_names_its_row_in_the_file(tmp_path, monkeypatch):
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(40)], "label": [1.0, 2.0] * 20})
    frame.loc[33, "label"] = 2.5  # not a class name
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False)
    monkeypatch.setattr(tables, "BATCH_ROWS", 8)
    with pytest.raises(DataError, match=r"row 34, column 'label'"):
        ingest(IngestConfig(source={"kind": "parquet", "path": str(path)}), 1)


def test_a_jsonl_column_first_seen_in_a_later_batch_is_read(tmp_path, monkeypatch):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": f"text {i}", **({"label": "ab"[i % 2]} if i >= 20 else {})}) + "\n"
                            for i in range(30)))
    monkeypatch.setattr(tables, "BATCH_ROWS", 8)
    result = ingest(IngestConfig(source={"kind": "jsonl", "path": str(path)}), 1)
    assert result.report["unlabeled"] == {"missing_label": 20}
    assert result.table["label"].notna().sum() == 10


def test_read_ingested_reads_only_the_splits_asked_for(tmp_path):
    from pipeline.outputs import read_ingested

    cfg = _cfg(tmp_path, "csv")
    path = tmp_path / "ingested.parquet"
    ingest_to(path, cfg, 3)
    whole = pd.read_parquet(path)
    labeled = read_ingested(path, ("id", "text", "label"), splits=("labeled",))
    expected = whole[whole["split"] == "labeled"].reset_index(drop=True)
    pd.testing.assert_frame_equal(labeled.reset_index(drop=True), expected)
    whole.drop(columns=["split"]).to_parquet(tmp_path / "nosplit.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['split'\]"):
        read_ingested(tmp_path / "nosplit.parquet", ("id",), splits=("labeled",))
