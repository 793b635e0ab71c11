"""params.yaml `teacher.llm`: an OpenAI-compatible chat-completions endpoint as the teacher.

The model sees each label as a short code (``A``..``Z``, or numbers past 26 labels) next to its
description and answers with the code; soft labels come from the logprobs of that first token, or from
votes over sampled answers when the endpoint returns no logprobs. See docs/teachers_llm.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section

DEFAULT_PROMPT = (
    "Classify the text into exactly one of these categories.\n"
    "{labels}\n\n"
    "Text:\n\"\"\"\n{text}\n\"\"\"\n\n"
    "Answer with the code of the category only ({codes}), nothing else."
)


class FewShotExample(Section):
    """One worked example shown to the model before the text: the text and its label."""

    # The example text (cut to max_text_chars like every text).
    text: str = Field(min_length=1)
    # Its label, one of teacher.llm.labels.
    label: str


class LLMTeacherConfig(Section):
    # OpenAI-compatible API root; requests go to {base_url}/chat/completions. The default is llama.cpp's
    # server port on this machine (8000 is distill's own model server).
    base_url: str = "http://127.0.0.1:8080/v1"

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"got {url!r}: base_url must be an http:// or https:// URL with a host, "
                             "e.g. http://127.0.0.1:8080/v1 or https://api.openai.com/v1")
        return url
    # Model name sent with every request (part of the fingerprint).
    model: str = "gpt-4o-mini"
    # Name of the environment variable holding the API key (never the key itself). Optional only when
    # base_url points at this machine (127.0.0.1, ::1, localhost).
    api_key_env: str = "DISTILL_LLM_API_KEY"
    # label name -> description shown to the model; the column order of the probabilities is this order.
    labels: dict[str, str] = Field(default_factory=dict)
    # User message. Placeholders: {labels} (one "CODE: name - description" line per label), {text},
    # and optionally {codes} (the codes, comma-separated). Other braces are left as they are.
    prompt: str = DEFAULT_PROMPT
    # Optional system message sent before the prompt (no placeholders).
    system: str | None = None
    # chat: {base_url}/chat/completions with the server's chat template; completion: {base_url}/completions
    # with the rendered prompt as plain text (a base model without a chat template; see docs/teachers_llm.md).
    endpoint: Literal["chat", "completion"] = "chat"
    # Few-shot examples ({text, label}) shown before each text: as earlier user/assistant turns (chat) or
    # as earlier prompts followed by their code (completion). Labels must be keys of labels.
    examples: list[FewShotExample] = Field(default_factory=list)
    # Texts longer than this many characters are cut before they go into the prompt (null: never);
    # prompt tokens are what an API bills and what a local model spends its time on.
    max_text_chars: int | None = Field(default=None, ge=1)
    # The answer code of each label, in label order (null: A..Z, then 10..99, then 100..999). Each must be
    # one token of the model's tokenizer; the teacher checks that through the server's /tokenize when it has one.
    codes: list[str] | None = None
    # Check the codes against the server's /tokenize endpoint (llama.cpp, vLLM) before the first text.
    check_codes: bool = True

    # auto: ask for logprobs, fall back to voting when the endpoint returns none;
    # logprobs: logprobs or the text fails; vote: never ask for logprobs.
    method: Literal["auto", "logprobs", "vote"] = "auto"
    # How many alternatives per token the endpoint returns with logprobs.
    top_logprobs: int = Field(default=20, ge=1, le=20)
    # Logprob given to label codes absent from the top list (capped at the smallest listed logprob).
    logprob_floor: float = Field(default=-10.0, lt=0)
    # Sampling temperature of the logprob request (0 = greedy).
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # Tokens the model may answer with (a label code needs one).
    max_tokens: int = Field(default=3, ge=1)
    # Fallback voting: this many sampled answers at sample_temperature, add-one smoothing.
    samples: int = Field(default=5, ge=1)
    # Sampling temperature of the fallback votes.
    sample_temperature: float = Field(default=1.0, gt=0.0, le=2.0)
    # An answer that is not a label code (counted in usage.malformed, its text kept in metrics/label.json):
    # retry asks again (up to max_retries; at temperature 0 a server usually repeats itself); vote samples
    # `samples` answers for that text instead; logprobs reads the codes among the answer token's
    # top_logprobs (a multiple-choice score; the text fails when none is listed); fail gives up at once.
    on_malformed: Literal["retry", "vote", "logprobs", "fail"] = "retry"

    # Transport: none of these enter the fingerprint.
    concurrency: int = Field(default=8, ge=1)
    # Per-request timeout in seconds; a timed-out request is retried.
    timeout_s: float = Field(default=30.0, gt=0)
    # Retries per request on 429, 5xx, timeouts, connection errors and malformed answers.
    max_retries: int = Field(default=5, ge=0)
    # Exponential backoff: base * 2**attempt, capped, times a random jitter in [0.5, 1].
    backoff_base_s: float = Field(default=0.5, ge=0)
    # Upper bound of one exponential backoff wait (seconds).
    backoff_max_s: float = Field(default=30.0, ge=0)
    # A Retry-After longer than this is cut to it (a server asking for an hour should not stall a run).
    retry_after_max_s: float = Field(default=120.0, ge=0)

    # USD per 1000 tokens, for the cost estimate in the teacher's usage.
    price_per_1k_prompt: float = Field(default=0.0, ge=0)
    # Price of 1,000 completion tokens, for the cost estimate.
    price_per_1k_completion: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _codes_and_examples_fit_labels(self) -> "LLMTeacherConfig":
        if self.codes is not None:
            if len(self.codes) != len(self.labels):
                raise ValueError(f"codes has {len(self.codes)} entries for {len(self.labels)} labels: give one per label")
            cleaned = [c.strip().upper() for c in self.codes]
            if any(not c or c != c.split()[0] for c in cleaned) or len(set(cleaned)) != len(cleaned):
                raise ValueError("codes must be distinct single words (compared case-insensitively)")
        unknown = sorted({e.label for e in self.examples} - set(self.labels))
        if unknown:
            raise ValueError(f"examples use labels that are not in labels: {', '.join(map(repr, unknown))}")
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt_has_placeholders(cls, value: str) -> str:
        missing = [p for p in ("{labels}", "{text}") if p not in value]
        if missing:
            raise ValueError(f"prompt must contain the placeholders {{labels}} and {{text}}; missing {', '.join(missing)}")
        return value
