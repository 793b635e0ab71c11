"""Bad input to ingest: a clear DataError naming what to fix, or a counted outcome; nothing silently lost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.ingest import IngestConfig
from pipeline.errors import DataError
from pipeline.ingest import ingest

pytestmark = pytest.mark.data


def _cfg(path, **source):
    kind = source.pop("kind", Path(path).suffix.lstrip(".") if Path(path).suffix else "email_dir")
    return IngestConfig(source={"kind": kind, "path": str(path), **source}, test_fraction=0.2)


def _csv(tmp_path, frame, name="d.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        ingest(_cfg(tmp_path / "nope.csv"), 1)


def test_missing_column_lists_the_columns_that_exist(tmp_path):
    path = _csv(tmp_path, pd.DataFrame({"body": ["a b"], "category": ["x"]}))
    with pytest.raises(DataError, match=r"'text', 'label' not found; the file has columns 'body', 'category'"):
        ingest(_cfg(path), 1)


def test_empty_dataset(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n")
    with pytest.raises(DataError, match="no rows"):
        ingest(_cfg(header_only), 1)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        ingest(_cfg(empty), 1)


def test_nan_labels_become_unlabeled_and_are_counted(tmp_path):
    frame = pd.DataFrame({"text": [f"message {i}" for i in range(20)], "label": ["a", "b", None, None] * 5})
    result = ingest(_cfg(_csv(tmp_path, frame)), 1)
    table = result.table
    assert result.report["unlabeled"] == {"missing_label": 10}
    assert (table.loc[table["label"].isna(), "split"] == "unlabeled").all()
    assert len(table) == 20  # nothing dropped


def test_all_labels_missing_is_an_error(tmp_path):
    frame = pd.DataFrame({"text": ["one", "two", "three"], "label": [None, None, None]})
    with pytest.raises(DataError, match="no labeled rows remain for training"):
        ingest(_cfg(_csv(tmp_path, frame)), 1)


def test_non_utf8_bytes_name_the_file_and_suggest_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nna\u00efve caf\u00e9,a\nplain,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: byte \d+ is not valid utf-8.*ingest\.source\.encoding"):
        ingest(_cfg(path), 1)
    table = ingest(_cfg(path, encoding="latin-1"), 1).table
    assert "na\u00efve caf\u00e9" in set(table["text"])


def test_ten_megabyte_text_is_capped_and_counted(tmp_path):
    frame = pd.DataFrame({"text": ["x" * 10_000_000, "short one", "short two"], "label": ["a", "a", "b"]})
    result = ingest(_cfg(_csv(tmp_path, frame), kind="csv").model_copy(update={"max_chars": 1000}), 1)
    assert result.table["text"].str.len().max() == 1000
    assert result.report["capped"] == {"longer_than_max_chars": 1}


def test_duplicates_and_empty_texts_are_counted(tmp_path):
    frame = pd.DataFrame({"text": ["same", "same", "  ", None, "other"], "label": ["a", "a", "a", "b", "b"]})
    report = ingest(_cfg(_csv(tmp_path, frame)), 1).report
    assert report["dropped"] == {"duplicate_text": 1, "empty_text": 1, "missing_text": 1}
    assert report["rows_read"] == 5 and report["rows"] == 2


def test_jsonl_bad_lines_are_counted_and_id_column_is_used(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"uid": i, "body": f"text {i}", "y": "ab"[i % 2]}) for i in range(6)] + ["{not json"]
    path.write_text("\n".join(lines) + "\n")
    result = ingest(_cfg(path, text_column="body", label_column="y", id_column="uid"), 1)
    assert result.report["dropped"] == {"bad_json_line": 1}
    assert sorted(result.table["id"]) == [str(i) for i in range(6)]


def test_parquet_with_given_test_file(tmp_path):
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    pd.DataFrame({"text": [f"t{i}" for i in range(20)], "category": ["p", "q"] * 10}).to_parquet(train)
    pd.DataFrame({"text": ["e1", "e2", "t0"], "category": ["p", "q", "p"]}).to_parquet(test)
    result = ingest(_cfg(train, label_column="category", test_path=str(test)), 1)
    table = result.table
    assert sorted(table.loc[table["split"] == "test", "text"]) == ["e1", "e2", "t0"]
    assert result.report["dropped"] == {"duplicate_text": 1}  # the training copy of t0, so no leakage


def test_email_dir_with_eml_mbox_and_malformed_message(tmp_path):
    (tmp_path / "spam").mkdir()
    (tmp_path / "ham").mkdir()
    (tmp_path / "spam" / "1.eml").write_text("Subject: cheap pills\nFrom: x@y\n\nbuy now\n")
    (tmp_path / "spam" / "2.eml").write_bytes(b"Subject: broken\nContent-Type: multipart/mixed; boundary=Q\n\n"
                                              b"--Q\nContent-Type: text/plain\n\nhalf a message\xff\n")
    (tmp_path / "ham" / "box.mbox").write_text(
        "From a@b Thu Aug 22 13:17:22 2002\nSubject: meeting\n\nat ten\n\n"
        "From c@d Thu Aug 22 13:18:22 2002\nSubject: notes\n\nattached below\n")
    (tmp_path / "loose.eml").write_text("Subject: no folder\n\nwho am I\n")
    result = ingest(_cfg(tmp_path), 1)
    table = result.table.set_index("text")
    assert table.loc["cheap pills\nbuy now", "label"] == "spam"
    assert table.loc["meeting\nat ten", "label"] == "ham" and table.loc["notes\nattached below", "label"] == "ham"
    assert result.report["repaired"]["malformed_mime"] == 1
    assert result.report["unlabeled"] == {"file_in_root_folder": 1, "missing_label": 1}
    assert len(table) == 5


def test_unknown_source_kind_is_rejected_by_config():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        IngestConfig(source={"kind": "excel", "path": "x.xlsx"})
