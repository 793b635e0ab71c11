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


def _python_rows(config: dict, texts: list[str]) -> list[list[int]]:
    from pipeline.students.featurize import Featurizer, spec_from_dict

    matrix = Featurizer(spec_from_dict(config, ""))(texts)
    return [[int(v) for v in row if v] for row in matrix]


@pytest.mark.parametrize("config", [
    {"tokenizer": "words", "lowercase": True, "max_tokens": 64, "max_chars": 1000, "ngrams": [1, 2], "buckets": 32768,
     "char_ngrams": [3, 4]},
    {"tokenizer": "words", "lowercase": False, "max_tokens": 20, "ngrams": [1, 2, 3], "buckets": 1000,
     "char_ngrams": [2, 3, 4, 5]},
    {"tokenizer": "words", "lowercase": True, "max_tokens": 512, "max_chars": 40, "ngrams": [1], "buckets": 7},
], ids=["default", "trigrams-cased", "unigrams-tiny"])
def test_web_featurizer_gives_the_python_featurizers_ids(config):
    from tests.student_data import require_banking77

    import pandas as pd

    texts = TRICKY + pd.read_csv(require_banking77() / "test.csv")["text"].head(300).tolist()
    js = run_node("features.mjs", {"config": config, "texts": texts})["rows"]
    py = _python_rows(config, texts)
    assert len(js) == len(py) == len(texts)
    mismatched = [(t, a, b) for t, a, b in zip(texts, py, js) if a != b]
    assert not mismatched, f"{len(mismatched)} texts differ; first: {mismatched[0]!r}"
    assert sum(len(r) for r in py) > 3 * len(texts)  # the rows are real feature lists, not empty ones


def test_a_wordpiece_bundle_is_refused_with_the_reason():
    config = {"lowercase": True, "max_tokens": 64, "ngrams": [1, 2], "buckets": 16384}
    proc = subprocess.run([node(), str(WEB / "scripts" / "features.mjs")], input=json.dumps({"config": config, "texts": ["hi"]}),
                          capture_output=True, text=True, timeout=60, cwd=WEB)
    assert proc.returncode != 0
    assert "WordPiece" in proc.stderr and "tokenizer: words" in proc.stderr
