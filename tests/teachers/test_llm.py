"""The llm teacher against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/fake_openai.py).

Every test scripts the server's answers, then checks what the teacher made of them and what the server
saw (request bodies, arrival times, requests in flight). Timing checks use generous tolerances.
"""

import asyncio
import math

import numpy as np
import pytest

from pipeline.config.teacher_llm import LLMTeacherConfig
from pipeline.teachers import build_teacher
from pipeline.teachers.base import TeacherError
from tests.fake_openai import FakeOpenAI, FakeRequest, Reply, completion, keyword_model

pytestmark = pytest.mark.integration

LABELS = {"spam": "unsolicited bulk mail", "ham": "ordinary personal or work mail", "other": "anything else"}
LABELS_ORDER = list(LABELS)
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_retries": 3, "timeout_s": 5.0}


@pytest.fixture
def server():
    fake = FakeOpenAI(keyword_model({"win": "A"}, default="B"))
    with fake:
        yield fake


def make(server, **overrides):
    """An llm teacher on the fake server with fast retries; ``overrides`` are teacher.llm keys."""
    cfg = LLMTeacherConfig(**({"base_url": server.base_url, "labels": LABELS, "model": "fake-1"} | FAST | overrides))
    return build_teacher("llm", cfg, None)


def test_soft_labels_from_logprobs_golden(server):
    top = {"A": -0.1, "B": -2.5, "Sure": -3.0}  # C missing -> floor -10
    server.responder = lambda req: completion("A", top)
    teacher = make(server)
    probs = teacher.predict_proba(["win a prize", "lunch?"])
    golden = [0.9167851, 0.0831689, 0.0000460]
    np.testing.assert_allclose(probs, [golden, golden], atol=1e-6)
    assert probs.dtype == np.float32 and teacher.labels == ["spam", "ham", "other"]
    body = server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0.0
    assert body["model"] == "fake-1"
    assert "A: spam - unsolicited bulk mail" in body["messages"][-1]["content"]


def test_keyword_model_orders_rows_like_the_input(server):
    texts = [f"text {i}" + (" win" if i % 3 == 0 else "") for i in range(9)]
    probs = make(server, concurrency=4).predict_proba(texts)
    predicted = [LABELS_ORDER[j] for j in probs.argmax(1)]
    assert predicted == ["spam" if i % 3 == 0 else "ham" for i in range(9)]


def test_fallback_votes_when_endpoint_has_no_logprobs(server):
    # The endpoint ignores logprobs and n: every request yields one choice; answers cycle A, A, B, A, C.
    answers = ["A", "A", "B", "A", "C"]
    samples = []

    def respond(req: FakeRequest) -> Reply:
        if req.wants_logprobs:
            return completion("A")  # a valid code, but no logprobs
        samples.append(req.body)
        return completion(answers[(req.attempt - 2) % len(answers)])

    server.responder = respond
    teacher = make(server, samples=5, sample_temperature=0.8)
    probs = teacher.predict_proba(["one text"])
    np.testing.assert_allclose(probs[0], [4 / 8, 2 / 8, 2 / 8], atol=1e-6)  # (3+1, 1+1, 1+1) / (5+3)
    assert [b["n"] for b in samples] == [5, 4, 3, 2, 1] and all(b["temperature"] == 0.8 for b in samples)
    # auto mode remembers: the next text goes straight to sampling, no logprob probe
    server.requests.clear()
    teacher.predict_proba(["another text"])
    assert not any(r.wants_logprobs for r in server.requests)


def test_vote_method_uses_n_in_one_request(server):
    server.responder = keyword_model({"win": "A"}, default="B", logprobs=False)
    teacher = make(server, method="vote", samples=4)
    probs = teacher.predict_proba(["win now"])
    np.testing.assert_allclose(probs[0], [5 / 7, 1 / 7, 1 / 7], atol=1e-6)
    assert len(server.requests) == 1 and server.requests[0].body["n"] == 4
    assert "logprobs" not in server.requests[0].body


def test_slow_answer_times_out_then_retry_succeeds(server):
    good = keyword_model({}, default="B")
    server.responder = lambda req: Reply(delay=1.5) if req.attempt == 1 else good(req)
    teacher = make(server, timeout_s=0.3)
    probs = teacher.predict_proba(["slow"])
    assert probs[0].argmax() == 1
    assert teacher.usage["retries"] == 1 and teacher.usage["calls"] == 2


def test_server_error_then_success(server):
    good = keyword_model({}, default="B")
    server.responder = lambda req: Reply(status=500, json={"error": "boom"}) if req.attempt <= 2 else good(req)
    teacher = make(server)
    assert teacher.predict_proba(["x"])[0].argmax() == 1
    assert [r.attempt for r in server.requests] == [1, 2, 3]


def test_429_retry_after_is_honoured(server):
    good = keyword_model({}, default="B")
    server.responder = lambda req: (Reply(status=429, json={"error": "slow down"}, headers={"Retry-After": "1"})
                                    if req.attempt == 1 else good(req))
    teacher = make(server)  # backoff alone would wait <= 0.05 s
    teacher.predict_proba(["x"])
    first, second = server.requests
    assert 0.95 <= second.time - first.time <= 3.0


def test_malformed_answers_are_retried_then_the_text_fails(server):
    bad = [completion("Q"), Reply(raw="<html>gateway</html>"), Reply(json={"object": "chat.completion"})]
    good = keyword_model({}, default="B")

    def respond(req: FakeRequest) -> Reply:
        if req.text == "always bad":
            return bad[(req.attempt - 1) % 3]
        if req.text == "bad once" and req.attempt == 1:
            return completion("I think it is spam")
        return good(req)

    server.responder = respond
    teacher = make(server, max_retries=2)
    texts = ["fine", "always bad", "bad once"]
    probs, failures = teacher.predict_proba_partial(texts)
    assert list(failures) == [1]
    assert "no choices" in failures[1] and "gave up after 3 attempts" in failures[1]
    assert np.isnan(probs[1]).all() and not np.isnan(probs[[0, 2]]).any()
    assert len(server.requests_for("always bad")) == 3 and len(server.requests_for("bad once")) == 2
    assert teacher.usage["failures"] == 1
    with pytest.raises(TeacherError, match=r"failed on 1 of 3 texts: text 1: malformed answer"):
        teacher.predict_proba(texts)


def test_rejected_request_fails_that_text_without_retry(server):
    good = keyword_model({}, default="B")
    server.responder = lambda req: (Reply(status=400, json={"error": "context length exceeded"})
                                    if req.text == "huge" else good(req))
    probs, failures = make(server).predict_proba_partial(["huge", "ok"])
    assert "HTTP 400" in failures[0] and "context length" in failures[0]
    assert len(server.requests_for("huge")) == 1 and probs[1].argmax() == 1


def test_unauthorized_stops_the_run_with_a_clear_error(server):
    server.responder = lambda req: Reply(status=401, json={"error": "bad key"})
    with pytest.raises(TeacherError, match="HTTP 401.*DISTILL_LLM_API_KEY"):
        make(server).predict_proba(["a", "b", "c"])


def test_connection_refused_is_retried_then_fails():
    cfg = LLMTeacherConfig(base_url="http://127.0.0.1:9/v1", labels=LABELS, **(FAST | {"max_retries": 1}))
    probs, failures = build_teacher("llm", cfg, None).predict_proba_partial(["x"])
    assert "connection error" in failures[0] and "after 2 attempts" in failures[0]


def test_concurrency_limit_is_never_exceeded(server):
    good = keyword_model({}, default="B")
    server.responder = lambda req: Reply(**{**good(req).__dict__, "delay": 0.1})
    teacher = make(server, concurrency=3)
    teacher.predict_proba([f"t{i}" for i in range(12)])
    assert server.max_in_flight == 3  # reached (so requests do overlap) and never exceeded
    assert len(server.requests) == 12


def test_usage_and_cost_accumulate_golden(server):
    def respond(req: FakeRequest) -> Reply:
        if req.text == "flaky" and req.attempt == 1:
            return Reply(status=503)
        return completion("A", {"A": -0.01, "B": -5.0}, prompt_tokens=100, completion_tokens=1)

    server.responder = respond
    teacher = make(server, price_per_1k_prompt=0.15, price_per_1k_completion=0.6)
    teacher.predict_proba(["a", "flaky", "c"])
    teacher.predict_proba(["d"])
    usage = teacher.usage
    assert {k: usage[k] for k in ("calls", "retries", "failures", "prompt_tokens", "completion_tokens")} == {
        "calls": 5, "retries": 1, "failures": 0, "prompt_tokens": 400, "completion_tokens": 4}
    assert usage["cost_usd"] == pytest.approx(400 / 1000 * 0.15 + 4 / 1000 * 0.6, abs=1e-9)  # 0.0624


def test_77_labels_get_distinct_codes_and_map_back(server):
    labels = {f"intent_{i}": f"description {i}" for i in range(77)}
    # the "model" answers the code written after 'pick ' in the text
    server.responder = lambda req: completion(req.text.split("pick ")[1], {req.text.split("pick ")[1]: -0.05,
                                                                          "10": -3.0})
    teacher = make(server, labels=labels)
    probs = teacher.predict_proba(["pick 86", "pick 42"])
    assert teacher.labels[int(probs[0].argmax())] == "intent_76"
    assert teacher.labels[int(probs[1].argmax())] == "intent_32"
    prompt = server.requests[0].prompt
    assert all(f"{10 + i}: intent_{i} - description {i}" in prompt for i in range(77))


def test_fingerprint_changes_with_prompt_not_with_key_or_transport(server, monkeypatch):
    monkeypatch.setenv("DISTILL_LLM_API_KEY", "key-one")
    base = make(server).fingerprint
    monkeypatch.setenv("DISTILL_LLM_API_KEY", "key-two")
    assert make(server).fingerprint == base
    assert make(server, concurrency=2, timeout_s=9.0, max_retries=1).fingerprint == base
    assert make(server, prompt="Label it.\n{labels}\n{text}").fingerprint != base
    assert make(server, labels={**LABELS, "other": "something else"}).fingerprint != base
    assert make(server, model="fake-2").fingerprint != base


def test_api_key_is_sent_and_required_off_loopback(server, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-test")
    make(server, api_key_env="MY_LLM_KEY").predict_proba(["x"])
    assert server.requests[0].headers.get("Authorization") == "Bearer sk-test"
    monkeypatch.delenv("MY_LLM_KEY")
    make(server, api_key_env="MY_LLM_KEY").predict_proba(["x"])  # loopback: a key is optional
    assert "Authorization" not in server.requests[1].headers
    with pytest.raises(TeacherError, match="MY_LLM_KEY is not set"):
        build_teacher("llm", LLMTeacherConfig(base_url="https://api.example.com/v1", labels=LABELS,
                                              api_key_env="MY_LLM_KEY"), None)
    with pytest.raises(TeacherError, match="labels is empty"):
        build_teacher("llm", LLMTeacherConfig(base_url=server.base_url), None)


def test_works_when_called_inside_a_running_event_loop(server):
    teacher = make(server)

    async def inside():
        return teacher.predict_proba(["win big"])

    probs = asyncio.run(inside())
    assert probs[0].argmax() == 0 and math.isclose(float(probs[0].sum()), 1.0, abs_tol=1e-5)
