"""What real models do to the llm teacher, replayed on the scripted server (tests/fake_openai.py).

The shapes come from llama.cpp's server with Gemma 3 270M (tests/e2e/test_llm_local.py runs the real
one): a base model opens its answer with a newline, answers words that are no label code, splits
two-digit codes into two tokens, and the completions endpoint answers ``text`` with per-token
``logprobs.content``. Each test scripts one of those and checks what the teacher made of it.
"""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.config.teacher_llm import LLMTeacherConfig
from pipeline.teachers import build_teacher
from pipeline.teachers.base import TeacherError
from pipeline.teachers.llm import _answer_token_top
from tests.fake_openai import FakeOpenAI, completion, text_completion

pytestmark = pytest.mark.integration

LABELS = {"spam": "unsolicited bulk mail", "ham": "ordinary mail"}
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_retries": 2, "timeout_s": 5.0}


def make(server, **overrides):
    cfg = LLMTeacherConfig(**({"base_url": server.base_url, "labels": LABELS, "model": "gemma"} | FAST | overrides))
    return build_teacher("llm", cfg, None)


def softmax(*logits):
    peak = max(logits)
    weights = [math.exp(x - peak) for x in logits]
    return [w / sum(weights) for w in weights]


def test_the_answer_token_is_the_first_that_is_not_whitespace():
    # llama.cpp, /v1/completions, Gemma 3 270M base: "\n" first, then the code (shape of a real answer)
    logprobs = {"content": [
        {"id": 107, "token": "\n", "logprob": -1.21, "top_logprobs": [{"token": "\n", "logprob": -1.21},
                                                                     {"token": " Spam", "logprob": -1.77}]},
        {"id": 236776, "token": "A", "logprob": -0.4, "top_logprobs": [{"token": "A", "logprob": -0.4},
                                                                       {"token": "B", "logprob": -1.3}]},
        {"id": 236787, "token": ":", "logprob": -0.2, "top_logprobs": [{"token": ":", "logprob": -0.2}]},
    ]}
    assert _answer_token_top(logprobs) == [("A", -0.4), ("B", -1.3)]
    # the legacy completions shape (OpenAI, vLLM): parallel lists, alternatives as {token: logprob}
    legacy = {"tokens": ["\n\n", " B"], "token_logprobs": [-0.5, -0.7],
              "top_logprobs": [{"\n\n": -0.5, "\n": -1.0}, {" B": -0.7, " A": -0.9}]}
    assert _answer_token_top(legacy) == [(" B", -0.7), (" A", -0.9)]
    assert _answer_token_top(None) is None and _answer_token_top({"content": []}) is None


def test_completion_endpoint_reads_text_and_per_token_logprobs():
    tops = [{"\n": -0.1, "A": -2.0}, {"A": -0.3, "B": -1.5, "The": -2.0}]
    with FakeOpenAI(lambda req: text_completion(["\n", "A"], tops, prompt_tokens=40)) as server:
        teacher = make(server, endpoint="completion", method="logprobs")
        probs = teacher.predict_proba(["win money now"])
        request = server.requests[0]
    assert request.path == "/v1/completions"
    assert request.body["logprobs"] == 20 and "messages" not in request.body
    assert request.body["prompt"].endswith("Answer with the code of the category only (A, B), nothing else.")
    np.testing.assert_allclose(probs[0], softmax(-0.3, -1.5), atol=1e-6)
    assert teacher.usage["prompt_tokens"] == 40 and teacher.usage["completion_tokens"] == 2


def test_few_shot_examples_are_earlier_turns_in_chat_and_earlier_prompts_in_completions():
    examples = [{"text": "cheap pills", "label": "spam"}, {"text": "lunch at noon?", "label": "ham"}]
    with FakeOpenAI(lambda req: completion("B", {"A": -3.0, "B": -0.1})) as server:
        make(server, examples=examples).predict_proba(["see you tomorrow"])
        chat = server.requests[0].body["messages"]
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant", "user"]
    assert '"""\ncheap pills\n"""' in chat[0]["content"] and chat[1]["content"] == "A" and chat[3]["content"] == "B"
    assert '"""\nsee you tomorrow\n"""' in chat[4]["content"]
    with FakeOpenAI(lambda req: text_completion([" B"], [{" B": -0.1, " A": -3.0}])) as server:
        make(server, examples=examples, endpoint="completion").predict_proba(["see you tomorrow"])
        prompt = server.requests[0].body["prompt"]
        assert server.requests[0].text == "see you tomorrow"
    assert prompt.index("cheap pills") < prompt.index("only (A, B), nothing else. A\n\n") < prompt.index("lunch")
    assert prompt.index("lunch at noon?") < prompt.index("nothing else. B\n\n") < prompt.index("see you tomorrow")


def test_a_code_token_glued_to_more_text_is_that_code():
    # Gemma few-shot over chat: "Yes" then Japanese without a space; the first word is no code, the token is
    with FakeOpenAI(lambda req: completion("Yesに行った", {"Yes": -0.2, "No": -1.8})) as server:
        teacher = make(server, codes=["Yes", "No"])
        probs = teacher.predict_proba(["win money now"])
    np.testing.assert_allclose(probs[0], softmax(-0.2, -1.8), atol=1e-6)
    assert teacher.usage["malformed"] == 0


def test_texts_are_cut_to_max_text_chars():
    with FakeOpenAI(lambda req: completion("A", {"A": -0.1, "B": -3.0})) as server:
        make(server, max_text_chars=10).predict_proba(["0123456789abcdefghij"])
        assert server.requests[0].text == "0123456789"


@pytest.mark.parametrize("on_malformed", ["retry", "vote", "fail"])
def test_answers_that_are_no_code_are_counted_with_their_text_and_handled_as_params_say(on_malformed):
    def respond(req):
        if req.body.get("logprobs"):  # the greedy answer of a small model: a word, not a code
            return completion("Classify the", {"Class": -1.3, "class": -2.1})
        return completion(["A", "The", "A", "B", "A"][: int(req.body.get("n") or 1)])

    with FakeOpenAI(respond) as server:
        teacher = make(server, on_malformed=on_malformed, samples=4)
        probs, failures = teacher.predict_proba_partial(["win money now"])
        greedy = [r for r in server.requests if r.body.get("logprobs")]
    if on_malformed == "retry":
        assert len(greedy) == 1 + FAST["max_retries"] and list(failures) == [0]
        assert "is not one of the label codes" in failures[0] and "gave up after 3 attempts" in failures[0]
    elif on_malformed == "fail":
        assert len(greedy) == 1 and list(failures) == [0] and "not retried" in failures[0]
    else:  # 4 valid votes wanted: A, The(no code), A, B, A -> A, A, B, A; add-one smoothing over 2 labels
        assert len(greedy) == 1 and failures == {}
        np.testing.assert_allclose(probs[0], [(3 + 1) / 6, (1 + 1) / 6], atol=1e-6)
    assert teacher.usage["malformed"] >= len(greedy)
    assert teacher.malformed_answers["Classify the"] == len(greedy)


def test_codes_that_are_several_tokens_stop_the_teacher_before_any_text_is_sent():
    # Gemma's tokenizer splits numbers into digits: the default codes for 27+ labels are two tokens
    labels = {f"intent_{i}": "" for i in range(30)}
    digits = lambda text: list(text) if text.isdigit() else [text]  # noqa: E731
    with FakeOpenAI(lambda req: completion("10", {"10": -0.1}), tokenizer=digits) as server:
        teacher = make(server, labels=labels)
        with pytest.raises(TeacherError, match=r"30 of the 30 label codes are several tokens.*'10' -> \['1', '0'\]"):
            teacher.predict_proba(["hello"])
        assert server.requests == []
        # one-token codes of the user's choosing pass the same check
        letters = [chr(ord("a") + i) for i in range(26)] + ["w1", "w2", "w3", "w4"]
        ok = make(server, labels=labels, codes=letters)
        server.responder = lambda req: completion("W2", {"W2": -0.1, "A": -4.0})
        assert ok.predict_proba(["hello"]).argmax() == 27


def test_without_a_tokenize_endpoint_the_codes_are_not_checked():
    with FakeOpenAI(lambda req: completion("A", {"A": -0.1, "B": -3.0})) as server:  # no tokenizer: /tokenize 404s
        assert make(server).predict_proba(["x"]).argmax() == 0
        assert len(server.requests) == 1


def test_codes_and_examples_must_fit_the_labels():
    with pytest.raises(ValidationError, match="codes has 1 entries for 2 labels"):
        LLMTeacherConfig(labels=LABELS, codes=["A"])
    with pytest.raises(ValidationError, match="codes must be distinct"):
        LLMTeacherConfig(labels=LABELS, codes=["a", "A"])
    with pytest.raises(ValidationError, match="examples use labels that are not in labels: 'eggs'"):
        LLMTeacherConfig(labels=LABELS, examples=[{"text": "x", "label": "eggs"}])


def test_later_settings_keep_the_fingerprint_of_a_teacher_that_does_not_use_them():
    with FakeOpenAI(lambda req: completion("A")) as server:
        plain = make(server)
        assert make(server, endpoint="chat", examples=[], max_text_chars=None).fingerprint == plain.fingerprint
        assert make(server, endpoint="completion").fingerprint != plain.fingerprint
        assert make(server, max_text_chars=600).fingerprint != plain.fingerprint
        assert make(server, examples=[{"text": "x", "label": "ham"}]).fingerprint != plain.fingerprint
