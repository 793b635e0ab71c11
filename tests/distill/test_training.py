"""Training, resume, DDP, export parity and checkpoint errors on small BANKING77 subsets.

Soft labels are simulated from gold (tests/student_data.py) until the label stage lands.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.config import parse_params
from pipeline.distill import CHECKPOINT_NAME, train_from_frames, write_outputs
from tests.student_data import banking77_frames

pytestmark = pytest.mark.model


def _cfg(**overrides):
    distill = {"featurizer": {"buckets": 4096}, "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}},
               "epochs": 6, "patience": 3, "lr": 0.03, "validation_share": 0.15}
    distill.update(overrides)
    return parse_params({"ingest": {}, "distill": distill}).distill


@pytest.fixture(scope="module")
def frames():
    return banking77_frames(per_class_train=16, test_rows=300, seed=0)


@pytest.fixture(scope="module")
def trained(frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return train_from_frames(*frames, _cfg(), seed=7, out_dir=out)


def test_bag_student_learns_well_above_chance(trained, tmp_path):
    m = trained.metrics
    # 77 classes: chance is 1.3 %; a 1,200-row transfer set gets the bag student far above it
    assert m["test_accuracy"] > 0.35, m
    assert m["test_agreement"] > 0.3 and m["val_agreement"] > 0.3
    assert 1 <= m["best_epoch"] <= m["epochs_run"] <= 6
    write_outputs(trained, tmp_path / "distill.json", tmp_path / "plots")
    history = (tmp_path / "plots" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,val_agreement" and len(history) == m["epochs_run"] + 1
    confusion = (tmp_path / "plots" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == m["test_rows"] + 1


def test_hidden_gold_of_unlabeled_rows_is_never_a_target(frames):
    from pipeline.distill.data import build_transfer_set

    ingested, labels, names = frames
    data = build_transfer_set(ingested, labels, names, 0.15)
    labeled_texts = set(ingested.loc[ingested.split == "labeled", "text"])
    has_gold = [t in labeled_texts for t in data.train_texts]
    assert ((data.train_targets >= 0) == np.array(has_gold)).all()
    assert not set(data.val_texts) & set(data.train_texts)
    assert not set(data.test_texts) & (set(data.train_texts) | set(data.val_texts))


@pytest.mark.parametrize("schedule", [{}, {"schedule": "cosine", "ema": 0.9}], ids=["constant", "cosine-ema"])
def test_resume_after_stop_matches_uninterrupted(frames, tmp_path, schedule):
    import torch

    cfg = _cfg(epochs=3, patience=5, **schedule)
    full = train_from_frames(*frames, cfg, seed=3, out_dir=tmp_path / "full")
    part = train_from_frames(*frames, cfg, seed=3, out_dir=tmp_path / "resumed", stop_after_epoch=1)
    assert part.metrics["epochs_run"] == 1 and not part.metrics["finished"]
    resumed = train_from_frames(*frames, cfg, seed=3, out_dir=tmp_path / "resumed")
    assert resumed.metrics["epochs_run"] == 3
    a = torch.load(tmp_path / "full" / CHECKPOINT_NAME, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / CHECKPOINT_NAME, weights_only=True)["state_dict"]
    for key in a:  # same steps in the same order: equal up to float rounding (tolerance 1e-5)
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert [h["val_agreement"] for h in full.history] == [h["val_agreement"] for h in resumed.history]


def test_cosine_schedule_decays_from_lr_to_zero_and_the_average_lags_the_weights(frames, tmp_path):
    import torch

    from pipeline.distill.train import WeightAverage, learning_rate

    cfg = _cfg(schedule="cosine", lr=0.1)
    assert [round(learning_rate(cfg, s, 100), 6) for s in (0, 50, 100, 150)] == [0.1, 0.05, 0.0, 0.0]
    assert learning_rate(_cfg(lr=0.1), 99, 100) == 0.1
    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, 0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(step=0)  # the ramp: decay (1 + 0) / (10 + 0) = 0.1, so 90 % of the new weights
    assert torch.allclose(average.avg["weight"], start + 0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(step=1000)  # past the ramp: the decay asked for, halfway to the new weights
    assert torch.allclose(average.avg["weight"], start + 1.45)
    with average.swapped_in():
        assert torch.allclose(model.weight, start + 1.45)
    assert torch.allclose(model.weight, start + 2.0)  # training goes on from the raw weights


def test_ddp_with_two_processes_writes_a_checkpoint(frames, tmp_path):
    from pipeline.distill.checkpoint import load_student

    result = train_from_frames(*frames, _cfg(epochs=2, processes=2), seed=1, out_dir=tmp_path)
    assert result.metrics["epochs_run"] == 2
    student = load_student(result.checkpoint)
    assert student.labels == frames[2]
    assert result.metrics["val_agreement"] > 0.05  # learned something in two epochs


def test_export_parity_and_torch_free_serving(trained, frames, tmp_path):
    from pipeline.export import export_bundle

    cfg = parse_params({"ingest": {}, "export": {"latency_texts": 20}}).export
    texts = frames[0].loc[frames[0].split == "test", "text"].tolist()
    m = export_bundle(trained.checkpoint, tmp_path / "bundle", cfg, texts)
    assert m["passed"], m["problems"]
    assert m["fp32"]["label_agreement"] == 1.0 and m["fp32"]["max_prob_diff"] < 1e-4
    assert m["int8"]["label_agreement"] >= 0.98 and m["int8"]["max_prob_diff"] < 0.1
    assert m["files_bytes"]["int8"] < 0.35 * m["files_bytes"]["fp32"]  # the embedding table is quantized
    assert m["speed_int8"]["texts_per_s"] > 0 and m["threads"] == 2

    # serving: featurization identical to training's, predictions without importing torch
    code = f"""
import sys, json, numpy as np
from pipeline.bundle import load_bundle
b = load_bundle({str(tmp_path / 'bundle')!r})
texts = json.load(sys.stdin)
p = b.predict_proba(texts, variant="int8")
print(json.dumps({{"torch": "torch" in sys.modules, "shape": list(p.shape), "ids": b.featurizer(texts).tolist(),
                   "sum": float(p.sum(axis=1).mean()), "labels": b.labels == {frames[2]!r}}}))
"""
    import json

    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts[:8]), capture_output=True, text=True,
                         check=True, env=dict(os.environ))
    got = json.loads(out.stdout)
    assert got["torch"] is False and got["shape"] == [8, 77] and got["labels"]
    assert abs(got["sum"] - 1.0) < 1e-5

    from pipeline.distill.checkpoint import load_student
    from pipeline.students.featurize import Featurizer

    train_ids = Featurizer(load_student(trained.checkpoint).featurizer_spec)(texts[:8])
    assert np.array_equal(np.array(got["ids"]), train_ids)


def test_export_reads_a_bounded_sample_in_batches_and_measures_what_the_whole_table_gives(trained, frames, tmp_path):
    import pandas as pd

    from pipeline.errors import DataError
    from pipeline.export import evaluation_limit, evaluation_texts, export_bundle, stream_evaluation_texts

    ingested, labels, _ = frames
    # a transfer set larger than the sample, so the stage must stop early; written in small row groups
    transfer = pd.DataFrame({"text": list(labels["text"]) + [t + " please" for t in labels["text"]]})
    ingested.to_parquet(tmp_path / "ingested.parquet", row_group_size=97)
    transfer.to_parquet(tmp_path / "labels.parquet", row_group_size=97)
    whole = evaluation_texts(ingested.loc[ingested.split == "test", "text"], transfer["text"])  # no limit
    cfg = parse_params({"ingest": {}, "export": {"latency_texts": 20}}).export
    limit = evaluation_limit(cfg)
    assert len(whole) > limit
    for batch_rows in (50, 65_536):  # many batches, one batch: the same texts in the same order
        assert stream_evaluation_texts(tmp_path / "ingested.parquet", tmp_path / "labels.parquet", limit,
                                       batch_rows) == whole[:limit]
    assert stream_evaluation_texts(tmp_path / "ingested.parquet", tmp_path / "labels.parquet", 120, 50) == whole[:120]

    sampled = export_bundle(trained.checkpoint, tmp_path / "sampled", cfg, whole[:limit])
    full = export_bundle(trained.checkpoint, tmp_path / "full", cfg, whole)
    for key in ("parity_rows", "fp32", "int8", "files_bytes", "passed"):
        assert sampled[key] == full[key], key

    with pytest.raises(DataError, match="missing column"):
        stream_evaluation_texts(tmp_path / "labels.parquet", tmp_path / "labels.parquet", limit)
    with pytest.raises(DataError, match="run the label stage first"):
        stream_evaluation_texts(tmp_path / "ingested.parquet", tmp_path / "absent.parquet", limit)


def test_the_words_featurizer_trains_exports_and_serves_without_a_tokenizer_file(frames, tmp_path):
    from pipeline.bundle import load_bundle
    from pipeline.distill.checkpoint import load_student
    from pipeline.export import export_bundle
    from pipeline.students.featurize import Featurizer

    cfg = _cfg(featurizer={"tokenizer": "words", "buckets": 4096, "char_ngrams": [3, 4]})
    result = train_from_frames(*frames, cfg, seed=7, out_dir=tmp_path / "student")
    assert result.metrics["test_accuracy"] > 0.35, result.metrics
    texts = frames[0].loc[frames[0].split == "test", "text"].tolist()
    export_cfg = parse_params({"ingest": {}, "export": {"latency_texts": 10}}).export
    m = export_bundle(result.checkpoint, tmp_path / "bundle", export_cfg, texts)
    assert m["passed"], m["problems"]
    assert not (tmp_path / "bundle" / "tokenizer.json").exists() and m["files_bytes"]["tokenizer"] == 0
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.featurizer.spec.words
    spec = load_student(result.checkpoint).featurizer_spec
    assert np.array_equal(bundle.featurizer(texts[:20]), Featurizer(spec)(texts[:20]))


def test_export_fails_when_parity_thresholds_are_breached(trained, frames, tmp_path):
    from pipeline.export import export_bundle

    # int8 always differs a little from fp32: with an impossible max_prob_diff the gate must trip
    cfg = parse_params({"ingest": {}, "export": {"max_prob_diff": 1e-9, "latency_texts": 10}}).export
    m = export_bundle(trained.checkpoint, tmp_path / "b", cfg, frames[0].text.tolist()[:50])
    assert not m["passed"] and any("int8 max probability difference" in p for p in m["problems"])


def test_corrupt_and_incompatible_checkpoints_give_clear_errors(trained, tmp_path):
    import torch

    from pipeline.distill.checkpoint import CheckpointError, load_student
    from pipeline.stages.export import main as export_main

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(trained.checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_student(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "someone-else/3", "weights": {}}, other)
    with pytest.raises(CheckpointError, match="format 'someone-else/3'"):
        load_student(other)
    ckpt = torch.load(trained.checkpoint, weights_only=True)
    ckpt["student"]["kwargs"] = {"dim": 16}  # architecture no longer fits the weights
    mismatched = tmp_path / "mismatched.pt"
    torch.save(ckpt, mismatched)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_student(mismatched)
    # the stage entry point turns it into a one-line error and exit code 2
    code = export_main(["--checkpoint", str(bad), "--data", "x", "--labels", "y", "--out", str(tmp_path / "o"),
                        "--metrics", str(tmp_path / "m.json"), "--params", str(_params_file(tmp_path))])
    assert code == 2


def _params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("ingest: {}\n")
    return path
