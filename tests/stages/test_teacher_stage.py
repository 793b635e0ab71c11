"""The teacher stage reads the user suites against the teacher's labels before any labeling, so suite
files written for other labels stop a bring-your-own run there, not at the evaluate stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.stages.teacher import main as teacher_main
from tests.helpers.labeling import write_ingested, write_params

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, user_paths: list[str] | None = None) -> list[str]:
    data = write_ingested(tmp_path / "ingested.parquet", 24)  # labels billing, delivery, other
    params = write_params(tmp_path / "params.yaml", tmp_path / "cache")
    if user_paths is not None:
        raw = yaml.safe_load(params.read_text())
        raw["evaluate"] = {"user": {"paths": user_paths}}
        params.write_text(yaml.safe_dump(raw))
    (tmp_path / "suites").mkdir()
    shutil.copy(ROOT / "suites" / "spam_examples.yaml", tmp_path / "suites")  # the default: spam / ham
    return ["--params", str(params), "--data", str(data), "--out", str(tmp_path / "teacher"),
            "--suites-root", str(tmp_path)]


def test_suites_for_other_labels_stop_the_run_before_labeling(tmp_path, capsys):
    assert teacher_main(project(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "spam_examples.yaml:5: 'expect: spam' is not a label of the model (billing, delivery, other)" in err
    assert "Checked before labeling: evaluate.user.paths (suites/*.yaml, suites/*.jsonl)" in err


def test_suites_for_the_teachers_labels_or_none_pass(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tickets.yaml").write_text(
        "cases:\n  - text: 'my parcel is late'\n    expect: delivery\n  - text: 'hello'\n    expect_not: billing\n")
    assert teacher_main(project(tmp_path, ["mine/*.yaml"])) == 0
    assert (tmp_path / "teacher" / "teacher.json").exists()


def test_no_user_suites_is_no_check(tmp_path):
    assert teacher_main(project(tmp_path, [])) == 0


def test_gold_labels_the_teacher_does_not_know_stop_the_run_before_labeling(tmp_path, capsys):
    args = project(tmp_path, [])
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["teacher"]["python"]["labels"] = ["billing", "delivery", "misc"]  # the data says "other"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert teacher_main(args) == 2
    err = capsys.readouterr().err
    assert "gold labels of the labeled rows are not among the teacher's labels (billing, delivery, misc): " \
           "'other' (2 rows)" in err
