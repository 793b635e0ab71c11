"""Label codes, prompt rendering and the logprob / vote arithmetic of the llm teacher (no network)."""

import math

import pytest

from pipeline.config import ConfigError, parse_params
from pipeline.teachers.base import TeacherError
from pipeline.teachers.llm_client import ChatClient, parse_retry_after
from pipeline.teachers.llm_prompt import (
    label_codes,
    normalize_answer,
    probs_from_logprobs,
    probs_from_votes,
    render_prompt,
)

pytestmark = pytest.mark.unit


def test_codes_are_letters_up_to_26_then_two_digit_numbers():
    assert label_codes(3) == ["A", "B", "C"]
    assert label_codes(26)[-1] == "Z"
    codes = label_codes(77)  # BANKING77
    assert codes[0] == "10" and codes[-1] == "86"
    assert len(set(codes)) == 77 and all(len(c) == 2 and c.isdigit() for c in codes)
    assert label_codes(91)[0] == "100" and len(set(label_codes(900))) == 900


def test_too_few_or_too_many_labels_is_a_clear_error():
    with pytest.raises(TeacherError, match="at least 2 labels"):
        label_codes(1)
    with pytest.raises(TeacherError, match="at most 900"):
        label_codes(901)


def test_prompt_shows_codes_and_descriptions_and_keeps_braces_in_text():
    labels = {"spam": "unsolicited bulk mail", "ham": ""}
    out = render_prompt("Pick one:\n{labels}\nAnswer {codes}.\n{text}", labels, ["A", "B"],
                        'json {"a": 1} and {labels}')
    assert out == ('Pick one:\nA: spam - unsolicited bulk mail\nB: ham\nAnswer A, B.\n'
                   'json {"a": 1} and {labels}')


def test_answers_are_normalized_to_codes():
    assert [normalize_answer(a) for a in ["A", " b.", "12)", "C: spam", "", "  "]] == ["A", "B", "12", "C", "", ""]


def test_logprobs_golden_with_floor_for_missing_code():
    # C is absent: it gets the floor -10 (below the smallest listed -3.0); "Sure" is not a code and is dropped.
    probs = probs_from_logprobs([("A", -0.1), ("B", -2.5), ("Sure", -3.0)], ["A", "B", "C"], floor=-10.0)
    assert probs == pytest.approx([0.9167851, 0.0831689, 0.0000460], abs=1e-6)
    assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12)


def test_logprobs_variants_of_one_code_add_up_and_floor_is_capped():
    # "A" and " a" both mean A: logsumexp(-0.5, -1.5); C missing gets min(floor=-3, smallest listed=-4) = -4.
    top = [("A", -0.5), (" a", -1.5), ("B", -1.2), ("Sure", -4.0)]
    assert probs_from_logprobs(top, ["A", "B", "C"], floor=-3.0) == pytest.approx(
        [0.7219648, 0.2620970, 0.0159381], abs=1e-6)


def test_logprobs_without_any_code_is_malformed():
    with pytest.raises(ValueError, match="no label code"):
        probs_from_logprobs([("Sure", -0.1), ("I", -2.0)], ["A", "B"], floor=-10.0)


def test_votes_are_add_one_smoothed():
    assert probs_from_votes(["A", "A", "B", "A", "A"], ["A", "B", "C"]) == pytest.approx([5 / 8, 2 / 8, 1 / 8])


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    import random

    cfg = parse_params({"ingest": {}, "teacher": {"llm": {"backoff_base_s": 1.0, "backoff_max_s": 5.0,
                                                           "retry_after_max_s": 60}}}).teacher.llm
    client = ChatClient(None, cfg, None, None, rng=random.Random(0))
    waits = [client.backoff(a, None) for a in (1, 2, 3, 4, 5)]
    for attempt, wait in zip((1, 2, 3, 4, 5), waits):
        full = min(5.0, 2.0 ** (attempt - 1))
        assert 0.5 * full <= wait <= full
    assert client.backoff(1, 7.0) == 7.0 and client.backoff(1, 600.0) == 60.0


def test_config_rejects_prompt_without_placeholders_and_unknown_keys():
    with pytest.raises(ConfigError, match=r"teacher.llm.prompt.*\{text\}"):
        parse_params({"ingest": {}, "teacher": {"llm": {"prompt": "Classify {labels}"}}})
    with pytest.raises(ConfigError, match="teacher.llm.top_logprob: unknown key"):
        parse_params({"ingest": {}, "teacher": {"llm": {"top_logprob": 5}}})


def test_params_example_in_docs_is_valid():
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "teachers_llm.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", doc, re.S).group(1)
    llm = parse_params({"ingest": {}, **yaml.safe_load(block)}).teacher.llm
    assert llm.api_key_env == "OPENAI_API_KEY" and list(llm.labels) == ["spam", "ham"]
    assert "{labels}" in llm.prompt and "{text}" in llm.prompt
