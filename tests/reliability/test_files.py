"""Catalogue, files: bad data files through the real ingest stage (``distill ingest``).

Each case is either refused (exit code 2, one line that names the file and what to fix, no traceback,
the previous outputs untouched) or handled by a documented rule whose counts reach metrics/ingest.json,
with every row accounted for (read = kept + counted drops)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.stages.ingest import main as ingest_main
from tests.reliability.helpers import assert_one_clear_line, digest_tree

pytestmark = pytest.mark.data


def _run(tmp_path: Path, source: dict, capsys, **ingest) -> tuple[int, str]:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": {"source": source, "test_fraction": 0.0, "labeled_fraction": 1.0,
                                                 **ingest}}))
    code = ingest_main(["--params", str(params), "--out", str(tmp_path / "out.parquet"),
                        "--metrics", str(tmp_path / "out.json")])
    return code, capsys.readouterr().err


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _parquet(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_parquet(path)
    return path


GOOD = "text,label\nmy card is lost,card\nrefund please,refund\n"

# (id, file name, content or a builder of the file, source overrides, needles of the one-line error)
REFUSED = [
    ("missing-file", None, None, {}, ["nope.csv", "file not found"]),
    ("empty-file", "e.csv", "", {}, ["e.csv", "empty"]),
    ("header-only", "h.csv", "text,label\n", {}, ["no rows"]),
    ("missing-column", "c.csv", "body,category\nx,y\n", {}, ["'text'", "columns 'body', 'category'"]),
    ("latin-1-bytes", "l.csv", "text,label\ncaf\u00e9 menu,a\n".encode("latin-1"), {}, ["l.csv", "not valid utf-8",
                                                                                         "ingest.source.encoding"]),
    ("broken-csv-quote", "q.csv", 'text,label\n"never closed,a\nb,c\n', {}, ["q.csv"]),
    ("corrupt-parquet", "x.parquet", b"PAR1 this is not parquet", {"kind": "parquet"}, ["x.parquet", "Parquet"]),
    ("jsonl-list-label", "a.jsonl", '{"text": "refund me", "label": ["billing"]}\n', {"kind": "jsonl"},
     ["a.jsonl", "line 1", "'label'", "list"]),
    ("jsonl-object-text", "b.jsonl", '{"text": {"a": 1}, "label": "x"}\n', {"kind": "jsonl"},
     ["b.jsonl", "line 1", "'text'", "dict"]),
    ("jsonl-bool-label", "c.jsonl", '{"text": "ok", "label": "a"}\n{"text": "two", "label": true}\n',
     {"kind": "jsonl"}, ["c.jsonl", "line 2", "bool"]),
    ("jsonl-number-text", "d.jsonl", '{"text": 12345, "label": "a"}\n', {"kind": "jsonl"}, ["line 1", "'text'", "int"]),
    ("jsonl-lone-surrogate", "s.jsonl", '{"text": "bad \\ud800 here", "label": "x"}\n', {"kind": "jsonl"},
     ["s.jsonl:1", "lone surrogate"]),
    ("parquet-list-text", "p.parquet", lambda t: _parquet(t, "p.parquet", pd.DataFrame(
        {"text": [["a", "b"], ["c"]], "label": ["x", "y"]})), {"kind": "parquet"}, ["p.parquet", "row 1", "'text'"]),
    ("parquet-float-label", "f.parquet", lambda t: _parquet(t, "f.parquet", pd.DataFrame(
        {"text": ["a b", "c d"], "label": [1.5, 2.0]})), {"kind": "parquet"}, ["f.parquet", "row 1", "'label'"]),
    ("all-labels-missing", "n.csv", "text,label\none,\ntwo,\n", {}, ["no labeled rows"]),
    ("only-blank-texts", "w.csv", 'text,label\n"   ",a\n"\t",b\n', {}, ["no usable rows"]),
    ("label-case-error", "k.csv", "text,label\none,billing\ntwo,Billing\nthree,refund\n", {},
     ["differ only in case", "'Billing'", "ingest.label_case"]),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_file_is_refused_in_one_line_and_nothing_changes(tmp_path, capsys, case):
    name, filename, content, source, needles = case
    old_out = {"out.parquet": b"previous output", "out.json": b'{"previous": true}'}
    for out, data in old_out.items():
        (tmp_path / out).write_bytes(data)
    if filename is None:
        path = tmp_path / "nope.csv"
    elif callable(content):
        path = content(tmp_path)
    else:
        path = _write(tmp_path, filename, content)
    before = digest_tree(path)
    extra = {"label_case": "error"} if name == "label-case-error" else {}
    code, err = _run(tmp_path, {"kind": "csv", "path": str(path), **source}, capsys, **extra)
    assert code == 2
    assert_one_clear_line(err, "distill ingest: error:", *needles)
    assert digest_tree(path) == before  # the input is never touched
    for out, data in old_out.items():  # and the outputs of the last good run stay as they were
        assert (tmp_path / out).read_bytes() == data
    assert not list((tmp_path / ".distill").glob("tmp/*")) if (tmp_path / ".distill").exists() else True


def _report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out.json").read_text())


def _table(tmp_path: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "out.parquet")


def _accounted(report: dict) -> None:
    dropped = sum(report["dropped"].values())
    assert report["rows_read"] == report["rows"] + dropped, report


def test_nul_byte_is_removed_by_rule_never_truncating(tmp_path, capsys):
    path = _write(tmp_path, "z.csv", b'text,label\n"crash\x00 on start",bug\n"fine text",ok\n')
    code, _ = _run(tmp_path, {"kind": "csv", "path": str(path)}, capsys)
    assert code == 0
    texts = set(_table(tmp_path)["text"])
    assert "crash on start" in texts  # the whole text, without the NUL
    assert _report(tmp_path)["repaired"]["control_characters"] == 1
    _accounted(_report(tmp_path))


def test_control_characters_can_be_rejected_and_are_counted(tmp_path, capsys):
    path = _write(tmp_path, "r.csv", 'text,label\n"bell \x07 here",a\n"clean text",b\n"tab\tand newline",a\n')
    code, _ = _run(tmp_path, {"kind": "csv", "path": str(path)}, capsys, control_chars="reject")
    assert code == 0
    report = _report(tmp_path)
    assert report["dropped"]["control_characters"] == 1  # tab and newline are text, not control noise
    assert set(_table(tmp_path)["text"]) == {"clean text", "tab\tand newline"}
    _accounted(report)


def test_label_variants_merge_into_the_common_spelling_and_are_reported(tmp_path, capsys):
    path = _write(tmp_path, "v.csv", "text,label\none,billing\ntwo,Billing \nthree,billing\nfour, refund\nfive,refund\n")
    code, _ = _run(tmp_path, {"kind": "csv", "path": str(path)}, capsys)
    assert code == 0
    report = _report(tmp_path)
    assert sorted(_table(tmp_path)["label"].unique()) == ["billing", "refund"]  # 2 classes, not 4
    assert report["label_variants"] == {"billing": ["Billing", "billing"]}
    assert report["repaired"]["label_whitespace"] == 2 and report["repaired"]["label_case_merged"] == 1
    _accounted(report)


def test_label_case_keep_makes_distinct_classes(tmp_path, capsys):
    path = _write(tmp_path, "kk.csv", "text,label\none,billing\ntwo,Billing\n")
    code, _ = _run(tmp_path, {"kind": "csv", "path": str(path)}, capsys, label_case="keep")
    assert code == 0 and sorted(_table(tmp_path)["label"]) == ["Billing", "billing"]


def test_integer_labels_are_class_names_not_floats(tmp_path, capsys):
    path = _parquet(tmp_path, "i.parquet", pd.DataFrame({"text": ["a b", "c d", "e f"], "label": [1, 2, None]}))
    code, _ = _run(tmp_path, {"kind": "parquet", "path": str(path)}, capsys)
    assert code == 0
    assert sorted(_table(tmp_path)["label"].dropna()) == ["1", "2"]  # not "1.0"


def test_bad_json_lines_are_dropped_and_counted(tmp_path, capsys):
    path = _write(tmp_path, "j.jsonl", '{"text": "good one", "label": "a"}\n{broken\n[1, 2]\n{"text": "two", "label": "b"}\n')
    code, _ = _run(tmp_path, {"kind": "jsonl", "path": str(path)}, capsys)
    assert code == 0 and _report(tmp_path)["dropped"] == {"bad_json_line": 2}
    assert len(_table(tmp_path)) == 2


def test_a_good_file_after_a_refused_one_writes_its_outputs(tmp_path, capsys):
    bad = _write(tmp_path, "bad.jsonl", '{"text": ["x"], "label": "a"}\n')
    assert _run(tmp_path, {"kind": "jsonl", "path": str(bad)}, capsys)[0] == 2
    good = _write(tmp_path, "good.csv", GOOD)
    assert _run(tmp_path, {"kind": "csv", "path": str(good)}, capsys)[0] == 0
    assert len(_table(tmp_path)) == 2
