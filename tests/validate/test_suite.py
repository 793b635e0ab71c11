"""The Great Expectations suite catches each planted defect and names the failing expectation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.config.validate import ValidateConfig
from pipeline.stages.validate import main
from pipeline.validate import validate

pytestmark = pytest.mark.data

CFG = ValidateConfig(min_chars=1, max_chars=200, min_class_share=0.2, max_class_share=0.8, examples=3)


def _clean_table() -> pd.DataFrame:
    rows = []
    for i in range(30):
        split = "test" if i % 5 == 0 else ("labeled" if i % 3 == 0 else "unlabeled")
        rows.append({"id": f"id{i}", "text": f"message number {i}", "label": "spam" if i % 2 else "ham",
                     "split": split, "source": "unit", "group": None})
    return pd.DataFrame(rows)


def _failed(table: pd.DataFrame) -> dict[str, dict]:
    outcome = validate(table, CFG)
    assert outcome.success is False
    return {f["name"]: f for f in outcome.failures}


def test_clean_table_passes():
    outcome = validate(_clean_table(), CFG)
    assert outcome.success, outcome.failures
    assert outcome.metrics["expectations"]["id_unique"] == {"success": True, "unexpected_count": 0, "element_count": 30}


def test_empty_text_is_caught():
    table = _clean_table()
    table.loc[4, "text"] = "   "
    failed = _failed(table)
    assert failed["text_not_empty"]["unexpected_count"] == 1
    assert failed["text_not_empty"]["examples"][0]["id"] == "id4"


def test_duplicate_id_is_caught():
    table = _clean_table()
    table.loc[7, "id"] = "id8"
    assert set(_failed(table)) == {"id_unique"}


def test_unknown_label_is_caught():
    table = _clean_table()
    table.loc[1, "label"] = "eggs"  # row 1 is unlabeled; the label set is the labeled split's labels
    failed = _failed(table)
    assert set(failed) == {"label_in_label_set"}
    assert failed["label_in_label_set"]["examples"][0]["id"] == "id1"


def test_test_train_leakage_is_caught():
    table = _clean_table()
    table.loc[1, "text"] = table.loc[0, "text"]  # row 0 is test, row 1 unlabeled
    failed = _failed(table)
    assert set(failed) == {"no_test_leakage"}
    assert failed["no_test_leakage"]["unexpected_count"] == 2


def test_class_imbalance_is_caught():
    table = _clean_table()
    table.loc[table["split"] == "labeled", "label"] = "ham"
    table.loc[3, "label"] = "spam"  # 1 of 8 labeled rows
    failed = _failed(table)
    assert set(failed) == {"class_share"}
    shares = [(e["label"], round(float(e["share"]), 3)) for e in failed["class_share"]["examples"]]
    assert shares == [("ham", 0.875), ("spam", 0.125)]


def _many_classes(k: int, per_class: int, rare: int | None = None) -> pd.DataFrame:
    rows = []
    for c in range(k):
        for j in range(rare if (rare is not None and c == 0) else per_class):
            rows.append({"id": f"c{c}-{j}", "text": f"intent {c} example {j}", "label": f"intent_{c}",
                         "split": "labeled", "source": "unit", "group": None})
    return pd.DataFrame(rows)


def test_class_share_limits_scale_with_the_number_of_classes():
    """77 balanced classes hold 1.3 % each: the default limits accept them, as they accept 2 classes."""
    assert validate(_many_classes(77, 10), ValidateConfig()).success
    assert validate(_many_classes(2, 10), ValidateConfig()).success
    # one class of 77 with 1 example against 100 for the others: 0.01 of an even share, under 0.02
    outcome = validate(_many_classes(77, 100, rare=1), ValidateConfig(examples=3))
    failed = {f["name"]: f for f in outcome.failures}
    assert set(failed) == {"class_share_of_even"}, failed
    example = failed["class_share_of_even"]["examples"][0]
    assert example == {"label": "intent_0", "rows": 1, "share_of_even": 0.0101}  # the class named with its rows
    assert {type(v) for v in example.values()} == {float, str, int}  # plain numbers, no NumPy scalars


def test_a_rare_class_passes_and_a_stray_label_fails_with_two_classes():
    """Imbalance is data, not an error: 3 rows of 100 (0.06 of an even share) pass; 1 of 200 (0.01) fails."""
    assert validate(_many_classes(2, 97, rare=3), ValidateConfig()).success
    outcome = validate(_many_classes(2, 199, rare=1), ValidateConfig(examples=3))
    failed = {f["name"]: f for f in outcome.failures}
    assert set(failed) == {"class_share_of_even", "class_share"}, failed
    assert [e["label"] for e in failed["class_share_of_even"]["examples"]] == ["intent_0"]


def test_over_long_text_is_caught():
    table = _clean_table()
    table.loc[2, "text"] = "y" * 201
    failed = _failed(table)
    assert set(failed) == {"text_length"}
    assert failed["text_length"]["examples"][0]["id"] == "id2"


def test_missing_column_and_bad_split_value_are_caught():
    table = _clean_table().drop(columns=["group"])
    table.loc[5, "split"] = "train"
    assert set(_failed(table)) == {"column_exists:group", "split_in_set"}


def test_main_writes_report_then_raises_a_readable_error(tmp_path, capsys):
    table = _clean_table()
    table.loc[7, "id"] = "id8"
    data = tmp_path / "t.parquet"
    table.to_parquet(data)
    params = tmp_path / "params.yaml"
    params.write_text("ingest: {}\nvalidate: {max_chars: 200, min_class_share: 0.2, max_class_share: 0.8}\n")
    argv = ["--params", str(params), "--data", str(data), "--report", str(tmp_path / "r.json"),
            "--metrics", str(tmp_path / "m.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "- id_unique (expect_column_values_to_be_unique, column id): 2 of 30 rows" in err
    assert "'id': 'id8'" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["success"] is False and "table" in report["gx_results"]
    assert json.loads((tmp_path / "m.json").read_text())["failed"] == ["id_unique"]


def test_data_docs_show_the_failing_expectation_and_replace_an_earlier_run(tmp_path):
    docs = tmp_path / "data-docs"
    (docs / "validations").mkdir(parents=True)
    (docs / "validations" / "stale.html").write_text("an earlier run")
    table = _clean_table()
    table.loc[7, "id"] = "id8"
    outcome = validate(table, CFG, docs_dir=docs)
    assert outcome.success is False
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert "table" in index and "labeled_class_shares" in index
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2 and not (docs / "validations" / "stale.html").exists()
    failed = next(p for p in pages if "/table/" in p.as_posix()).read_text(encoding="utf-8")
    assert "expect_column_values_to_be_unique" in failed or "values must be unique" in failed.lower()
    assert "id8" in failed  # the failing rows are on the page


def test_a_file_validated_in_batches_gives_the_counts_of_the_whole_table(tmp_path, monkeypatch):
    import pipeline.io as io
    from pipeline.validate import validate_file

    table = pd.concat([_clean_table().assign(id=lambda t, k=k: t["id"] + f"-{k}", text=lambda t, k=k: t["text"] + f" {k}")
                       for k in range(4)], ignore_index=True)  # 120 rows
    table.loc[111, "text"] = table.loc[0, "text"]  # row 0 is test, 111 labeled: a leak between the first and the last batch
    table.loc[95, "id"] = table.loc[3, "id"]  # an id repeated across batches
    table.loc[[40, 41], "id"] = "twice"  # and within one
    table.loc[70, "text"] = " "
    table.loc[12, "split"] = "train"
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False)
    whole = validate(table, CFG)
    monkeypatch.setattr(io, "PARQUET_ROW_GROUP", 16)  # 8 batches, then the rows with repeated ids
    batched = validate_file(path, CFG)
    assert batched.metrics == whole.metrics
    assert {"id_unique", "no_test_leakage", "text_not_empty", "split_in_set"} <= set(batched.metrics["failed"])
    assert batched.metrics["expectations"]["id_unique"]["unexpected_count"] == 4
    assert batched.metrics["expectations"]["no_test_leakage"]["unexpected_count"] == 2
    assert len([k for k in batched.report["gx_results"] if k.startswith("table")]) == 9
    assert sorted(e["id"] for e in next(f for f in batched.failures if f["name"] == "id_unique")["examples"]) == \
        sorted(e["id"] for e in next(f for f in whole.failures if f["name"] == "id_unique")["examples"])
