"""Budgeted and active labeling: what is always labeled, what the budget buys, rounds that resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.config import load_params
from pipeline.label import label_table
from pipeline.label.budgeted import diverse_pick
from tests.helpers.banking_teacher import BANKING77, LABELS
from tests.helpers.labeling import calls

ROOT = Path(__file__).resolve().parents[2]


def banking_ingested(path: Path, per_class: int = 60, labeled_share: float = 0.1) -> Path:
    """Eight BANKING77 intents: a few gold rows per class, the rest unlabeled, and a test split."""
    train = pd.read_csv(BANKING77 / "train.csv")
    test = pd.read_csv(BANKING77 / "test.csv")
    train = train[train.category.isin(LABELS)].groupby("category").head(per_class).reset_index(drop=True)
    test = test[test.category.isin(LABELS)].groupby("category").head(10).reset_index(drop=True)
    rng = np.random.default_rng(0)
    split = np.where(rng.random(len(train)) < labeled_share, "labeled", "unlabeled")
    frame = pd.concat([
        pd.DataFrame({"id": [f"t{i}" for i in range(len(train))], "text": train.text, "label": train.category,
                      "split": split}),
        pd.DataFrame({"id": [f"x{i}" for i in range(len(test))], "text": test.text, "label": test.category,
                      "split": "test"}),
    ], ignore_index=True).assign(source="banking77", group=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def write_params(path: Path, cache: Path, **label) -> Path:
    path.write_text(yaml.safe_dump({
        "seed": 3, "ingest": {},
        "teacher": {"kind": "python", "python": {"function": "tests.helpers.banking_teacher:oracle", "labels": LABELS}},
        "label": {"cache_dir": str(cache), "batch_size": 16, "progress_every_s": 0.5, **label},
        "augment": {"variants": 0},
        "distill": {"featurizer": {"buckets": 4096}, "student": {"kwargs": {"dim": 32}}, "lr": 0.08,
                    "validation_share": 0.2},
    }))
    return path


@pytest.mark.unit
def test_diverse_pick_takes_the_most_uncertain_spread_over_predicted_classes():
    margins = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.5, 0.06, 0.9])
    predicted = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    # the 6 most uncertain are rows 0-4 and 6: one from each predicted class before a second from any
    assert diverse_pick(margins, predicted, 3, 2).tolist() == [0, 4, 6]
    assert diverse_pick(margins, predicted, 3, 1).tolist() == [0, 1, 2]  # no room for diversity: plain uncertainty
    assert len(diverse_pick(margins, predicted, 20, 3)) == 8


@pytest.mark.integration
def test_budget_labels_the_fixed_rows_first_and_then_a_stable_sample_of_the_pool(tmp_path):
    data = pd.read_parquet(banking_ingested(tmp_path / "ingested.parquet"))
    log = tmp_path / "calls.log"
    os.environ["DISTILL_TEST_CALL_LOG"] = str(log)
    try:
        params = load_params(write_params(tmp_path / "params.yaml", tmp_path / "cache", budget={"calls": 300}))
        kept, _, metrics = label_table(data, params, tmp_path / "teacher")
        sent = calls(log)
        assert len(sent) == metrics["texts_sent"] <= 300
        fixed = metrics["budgeted"]["always_labeled_rows"]
        assert (kept["split"] == "test").sum() == (data["split"] == "test").sum()  # the gate's rows are all there
        assert (kept["split"] == "labeled").sum() == (data["split"] == "labeled").sum()
        assert metrics["left_out_by_budget"] == len(data) - len(kept) > 0 and metrics["failed_rows"] == 0
        assert metrics["budgeted"]["pool_labeled_rows"] == len(kept) - fixed
        # a re-run asks nothing and picks the same rows
        log.unlink()
        kept2, _, metrics2 = label_table(data, params, tmp_path / "teacher")
        assert calls(log) == [] and kept2["id"].tolist() == kept["id"].tolist()
        # too small to cover the rows that are always labeled: a clear error, nothing half-done
        tiny = load_params(write_params(tmp_path / "tiny.yaml", tmp_path / "cache2", budget={"calls": 20}))
        with pytest.raises(Exception, match="always labeled"):
            label_table(data, tiny, tmp_path / "teacher")
        # a USD budget stops at the price the teacher reports (0.001 per text)
        usd = load_params(write_params(tmp_path / "usd.yaml", tmp_path / "cache3", budget={"usd": 0.35}))
        _, _, m3 = label_table(data, usd, tmp_path / "teacher")
        assert m3["usage"]["cost_usd"] <= 0.35 + 0.016 and m3["left_out_by_budget"] > 0  # at most one batch over
    finally:
        del os.environ["DISTILL_TEST_CALL_LOG"]


@pytest.mark.integration
def test_active_rounds_are_deterministic_and_pick_uncertain_texts_across_classes(tmp_path):
    data = pd.read_parquet(banking_ingested(tmp_path / "ingested.parquet"))
    runs = []
    for name in ("a", "b"):
        params = load_params(write_params(tmp_path / f"{name}.yaml", tmp_path / f"cache-{name}", strategy="active",
                                          budget={"calls": 330}, active={"initial_share": 0.1, "round_share": 0.1,
                                                                         "patience": 5}))
        kept, _, metrics = label_table(data, params, tmp_path / "teacher", state_path=tmp_path / f"{name}.json")
        runs.append((kept, metrics, json.loads((tmp_path / f"{name}.json").read_text())))
    (kept, metrics, state), (kept_b, _, state_b) = runs
    assert [r["chosen_ids"] for r in state["rounds"]] == [r["chosen_ids"] for r in state_b["rounds"]]  # same seed
    rounds = metrics["rounds"]
    assert len(rounds) >= 2 and rounds[0]["how"] == "random" and rounds[1]["how"] == "uncertain"
    assert all(r["done"] and 0 <= r["val_agreement"] <= 1 for r in rounds)
    assert metrics["texts_sent"] <= 330 and rounds[-1]["texts_sent"] == metrics["texts_sent"]
    # an uncertain round spans several of the classes the teacher gives its texts
    second = set(state["rounds"][1]["chosen_ids"])
    assert kept[kept["id"].isin(second)]["pred"].nunique() >= 4


@pytest.mark.e2e
def test_active_labeling_killed_mid_round_resumes_that_round_asking_only_what_was_in_flight(tmp_path):
    from pipeline.stages.teacher import main as teacher_main

    data = banking_ingested(tmp_path / "ingested.parquet")
    params = write_params(tmp_path / "params.yaml", tmp_path / "cache", strategy="active", batch_size=8,
                          budget={"calls": 330}, active={"initial_share": 0.1, "round_share": 0.1, "patience": 5})
    assert teacher_main(["--params", str(params), "--data", str(data), "--out", str(tmp_path / "teacher")]) == 0
    state = tmp_path / "rounds.json"
    cmd = [sys.executable, "-m", "pipeline.stages.label", "--params", str(params), "--data", str(data),
           "--teacher-dir", str(tmp_path / "teacher"), "--out", str(tmp_path / "labels.parquet"),
           "--metrics", str(tmp_path / "label.json"), "--state", str(state), "--plots", str(tmp_path / "plots")]
    log = tmp_path / "calls.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTILL_TEST_CALL_LOG=str(log), DISTILL_TEST_DELAY_S="0.15")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)

    def in_round_one() -> bool:
        try:
            rounds = json.loads(state.read_text())["rounds"]
        except (OSError, ValueError, KeyError):
            return False
        return len(rounds) >= 2 and not rounds[1]["done"] and len(calls(log)) > rounds_sent(rounds) + 8

    def rounds_sent(rounds) -> int:
        return rounds[0].get("texts_sent", 10 ** 9)

    deadline = time.time() + 120
    while not in_round_one() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed mid-round"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_state = json.loads(state.read_text())
    in_flight = set(killed_state["rounds"][1]["chosen_ids"])
    before = calls(log)
    log.unlink()
    env.pop("DISTILL_TEST_DELAY_S")
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    after = calls(log)
    final = json.loads(state.read_text())
    # round 1 resumed with the same chosen rows; what it sent again is only what had not been answered
    assert final["rounds"][1]["chosen_ids"] == killed_state["rounds"][1]["chosen_ids"]
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    from pipeline.keys import text_key

    chosen_texts = {text_key(t) for t in labels[labels["id"].isin(in_flight)]["text"]}
    asked_twice = set(before) & set(after)
    # only the batch in flight at the kill (sent, never committed) is asked again, and it is of round 1
    assert 0 < len(asked_twice) <= 8 and asked_twice <= chosen_texts
    assert len(after) == len(set(after)) and chosen_texts <= set(before) | set(after)
    metrics = json.loads((tmp_path / "label.json").read_text())
    assert metrics["rounds"][1]["done"] and (tmp_path / "plots" / "rounds.csv").read_text().count("\n") == \
        len(metrics["rounds"]) + 1
