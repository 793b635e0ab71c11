"""The hint loss (pipeline/distill/hints.py): the teacher's sentence embeddings travel with the train rows,
the student's features learn them through a map that is never saved, and the stored path matches memory."""

import zlib

import numpy as np
import pytest
import torch

from pipeline.distill import CHECKPOINT_NAME, train_from_files, train_from_frames
from pipeline.distill.data import build_transfer_set, stream_transfer_set
from pipeline.distill.hints import teacher_embedder, with_hints
from tests.distill.test_rows import files  # noqa: F401  (the module-scoped Parquet fixture)
from tests.distill.test_training import _cfg
from tests.student_data import banking77_frames

pytestmark = pytest.mark.model

DIM = 24


def embedder(texts):
    """A stand-in sentence encoder: a fixed random map of each text's words (similar texts, similar rows)."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM)
    return out


@pytest.fixture(scope="module")
def frames():
    return banking77_frames(per_class_train=16, test_rows=300, seed=0)


@pytest.mark.parametrize("hidden", [0, 16])
def test_features_then_classify_is_the_students_forward(hidden):
    from pipeline.students import build_student

    model = build_student("hashed-ngram-bag", 500, 5, None, dim=8, hidden=hidden)
    ids = torch.randint(0, 500, (4, 7))
    assert torch.equal(model.classify(model.features(ids)), model(ids))
    assert model.features(ids).shape == (4, hidden or 8)


def test_train_rows_carry_the_embedding_after_the_probabilities(frames):
    data = build_transfer_set(*frames, 0.15)
    hinted = with_hints(data, embedder)
    k = len(data.labels)
    assert hinted.train_probs.shape == (len(data.train_texts), k + DIM)
    assert np.array_equal(hinted.train_probs[:, :k], data.train_probs)
    assert np.allclose(hinted.train_probs[:, k:], embedder(data.train_texts))
    assert hinted.val_probs is data.val_probs and hinted.digest != data.digest


def test_stored_hints_equal_the_in_memory_ones(files, tmp_path):  # noqa: F811
    root, ingested, labels, _, names = files
    memory = with_hints(build_transfer_set(ingested, labels, names, 0.15), embedder)
    stored = with_hints(stream_transfer_set(root / "ingested.parquet", root / "labels.parquet", 0.15, True, tmp_path,
                                            batch_rows=50), embedder, tmp_path / "hinted", batch_rows=1000)
    texts, probs, targets = stored.train.read(0, stored.train.n)
    assert texts == memory.train_texts and np.array_equal(targets, memory.train_targets)
    assert np.allclose(probs, memory.train_probs) and stored.digest == memory.digest


def test_the_features_learn_the_embeddings_and_the_saved_student_has_no_map(frames, tmp_path):
    from pipeline.distill.checkpoint import load_student

    plain = train_from_frames(*frames, _cfg(hint_weight=1.0), seed=3, out_dir=tmp_path / "plain")
    assert "hint" not in plain.metrics  # no embedder given: nothing to learn from
    hinted = train_from_frames(*frames, _cfg(hint_weight=1.0, student={"name": "hashed-ngram-bag",
                                                                       "kwargs": {"dim": 32, "hidden": 32}}),
                               seed=3, out_dir=tmp_path / "hinted", hints=embedder)
    hint = hinted.metrics["hint"]
    assert hint["weight"] == 1.0 and hint["dim"] == DIM
    cosines = [h["hint_cosine"] for h in hinted.history]
    assert cosines[-1] > cosines[0] + 0.1 and hint["cosine"] > 0.5, cosines
    assert hinted.metrics["test_accuracy"] > 0.2, hinted.metrics  # 77 classes, chance 1.3 %; a word-noise encoder
    saved = torch.load(tmp_path / "hinted" / CHECKPOINT_NAME, weights_only=True)
    student = load_student(tmp_path / "hinted" / CHECKPOINT_NAME)
    assert set(saved["state_dict"]) == set(student.model.state_dict())  # the map is not part of the student
    assert saved["training"]["hint_state"]["weight"].shape == (DIM, 32)


def test_a_resumed_hinted_run_ends_where_an_uninterrupted_one_does(frames, tmp_path):
    cfg = _cfg(hint_weight=0.5, epochs=4, patience=4)
    whole = train_from_frames(*frames, cfg, seed=2, out_dir=tmp_path / "whole", hints=embedder)
    train_from_frames(*frames, cfg, seed=2, out_dir=tmp_path / "killed", hints=embedder, stop_after_epoch=2)
    resumed = train_from_frames(*frames, cfg, seed=2, out_dir=tmp_path / "killed", hints=embedder)
    assert resumed.history == whole.history and resumed.metrics == whole.metrics


def test_the_distill_stage_streams_the_same_hinted_rows(files, tmp_path):  # noqa: F811
    root, ingested, labels, _, names = files
    cfg = _cfg(hint_weight=1.0, epochs=2)
    a = train_from_frames(ingested, labels, names, cfg, seed=5, out_dir=tmp_path / "frames", hints=embedder)
    b = train_from_files(root / "ingested.parquet", root / "labels.parquet", cfg, seed=5, out_dir=tmp_path / "files",
                         hints=embedder)
    assert a.metrics == b.metrics and a.history == b.history


def test_only_a_teacher_with_a_sentence_encoder_gives_hints():
    class Encoder:
        def embed(self, texts):
            return np.ones((len(texts), 3))

    class WithEncoder:
        encoder = Encoder()

    class ProbabilitiesOnly:
        pass

    assert teacher_embedder(ProbabilitiesOnly()) is None
    assert teacher_embedder(WithEncoder())(["a", "b"]).dtype == np.float32


def test_two_ddp_ranks_train_the_hint_from_their_own_windows(files, tmp_path):  # noqa: F811
    root, *_, names = files
    result = train_from_files(root / "ingested.parquet", root / "labels.parquet",
                              _cfg(hint_weight=1.0, epochs=2, processes=2, window_rows=1024), seed=1,
                              out_dir=tmp_path, hints=embedder)
    assert result.metrics["epochs_run"] == 2 and result.metrics["hint"]["dim"] == DIM
    cosines = [h["hint_cosine"] for h in result.history]
    assert cosines[1] > cosines[0], cosines  # the projection's gradients reach both ranks' updates
