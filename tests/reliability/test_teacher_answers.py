"""Catalogue, teacher responses: a real OpenAI-compatible server on 127.0.0.1 (tests/fake_openai.py)
answering badly, through the label cache the label stage uses.

Each bad answer fails its text with a counted reason (or stops the run with one clear line), the
cache holds exactly the good answers, every call is on the spend ledger, and no error shows the key."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.teacher_llm import LLMTeacherConfig
from pipeline.label.cache import LabelCache
from pipeline.label.calls import cached_teacher_probs
from pipeline.teachers import build_teacher
from pipeline.teachers.base import TeacherError
from tests.fake_openai import FakeOpenAI, Reply, completion, keyword_model

pytestmark = pytest.mark.integration

LABELS = {"spam": "unsolicited bulk mail", "ham": "ordinary mail"}
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02, "max_retries": 1, "timeout_s": 0.5}
KEY = "sk-test-Very5ecretKey0123456789"
GOOD = keyword_model({"win": "A"}, default="B")

# (id, the bad answer to the text "bad one", the reason its failure is counted under)
BAD_ANSWERS = [
    ("code-never-offered", lambda req: completion("Q"), "malformed answer"),
    ("refusal", lambda req: completion("I'm sorry, I cannot classify this message."), "malformed answer"),
    ("empty-content", lambda req: completion(""), "malformed answer"),
    ("empty-choices", lambda req: Reply(json={"object": "chat.completion", "choices": []}), "malformed answer"),
    ("no-choices-key", lambda req: Reply(json={"object": "chat.completion"}), "malformed answer"),
    ("html-body", lambda req: Reply(raw="<html><body>502 Bad Gateway</body></html>"), "malformed answer"),
    ("truncated-json", lambda req: Reply(raw='{"choices": [{"message": {"content": "A"'), "malformed answer"),
    ("content-not-string", lambda req: Reply(json={"choices": [{"index": 0, "message": {"content": None}}]}),
     "malformed answer"),
    ("server-error-500", lambda req: Reply(status=500, json={"error": "boom"}), "HTTP 500"),
    ("overloaded-503", lambda req: Reply(status=503, raw="overloaded"), "HTTP 503"),
    ("rate-limited-429", lambda req: Reply(status=429, json={"error": "slow down"}), "HTTP 429"),
    ("too-slow", lambda req: Reply(delay=1.5), "no answer within"),
    ("request-rejected-400", lambda req: Reply(status=400, json={"error": "context length exceeded"}),
     "request rejected with HTTP 400"),
]


def _teacher(server):
    return build_teacher("llm", LLMTeacherConfig(base_url=server.base_url, labels=LABELS, model="fake-1", **FAST), None)


@pytest.mark.parametrize("case", BAD_ANSWERS, ids=[c[0] for c in BAD_ANSWERS])
def test_bad_answer_fails_its_text_only_and_is_never_cached(tmp_path, case):
    _, bad, reason = case
    texts = ["win a prize now", "bad one", "lunch at noon?"]
    with FakeOpenAI(lambda req: bad(req) if req.text == "bad one" else GOOD(req)) as server:
        teacher = _teacher(server)
        with LabelCache(tmp_path) as cache:
            got = cached_teacher_probs(teacher, texts, cache, batch_size=8, retries=0)
            assert len(got.probs) == 2  # the good answers, nothing for the bad text
            assert cache.count(teacher.fingerprint) == 2
            (only, count), = got.stats.reasons().items()  # one failed text, under its reason
            assert only.startswith(reason) and count == 1, got.stats.reasons()
            for probs in got.probs.values():
                assert np.isfinite(probs).all() and abs(float(probs.sum()) - 1) < 1e-5
            ledger = cache.spend_totals(teacher.fingerprint)
            assert ledger["calls"] == got.stats.calls >= 1  # what was paid for is on record
            # a second run asks only for the text that failed
            seen = len(server.requests)
            again = cached_teacher_probs(teacher, texts, cache, batch_size=8, retries=0)
            assert again.cached == 2 and again.sent == 1
            assert {r.text for r in server.requests[seen:]} == {"bad one"}


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_stops_with_one_line_and_never_prints_the_key(tmp_path, monkeypatch, status):
    monkeypatch.setenv("DISTILL_LLM_API_KEY", KEY)
    echo = lambda req: Reply(status=status, json={"error": f"invalid key {req.headers.get('authorization')}"})  # noqa: E731
    with FakeOpenAI(echo) as server:
        teacher = _teacher(server)
        with LabelCache(tmp_path) as cache, pytest.raises(TeacherError) as err:
            cached_teacher_probs(teacher, ["a text"], cache, batch_size=8, retries=0)
        message = str(err.value)
        assert f"HTTP {status}" in message and "DISTILL_LLM_API_KEY" in message
        assert KEY not in message and "Very5ecret" not in message
        with LabelCache(tmp_path) as cache:
            assert cache.count(teacher.fingerprint) == 0


def test_not_found_names_base_url_and_model(tmp_path):
    with FakeOpenAI(lambda req: Reply(status=404, json={"error": "no such model"})) as server:
        teacher = _teacher(server)
        with LabelCache(tmp_path) as cache, pytest.raises(TeacherError, match="teacher.llm.base_url.*fake-1"):
            cached_teacher_probs(teacher, ["a text"], cache, batch_size=8, retries=0)


def test_unreachable_endpoint_fails_the_texts_with_a_reason(tmp_path):
    cfg = LLMTeacherConfig(base_url="http://127.0.0.1:9/v1", labels=LABELS, **FAST)
    teacher = build_teacher("llm", cfg, None)
    with LabelCache(tmp_path) as cache:
        got = cached_teacher_probs(teacher, ["x", "y"], cache, batch_size=8, retries=0)
        assert got.probs == {} and cache.count(teacher.fingerprint) == 0
        assert got.stats.reasons() == {"connection error": 2}
