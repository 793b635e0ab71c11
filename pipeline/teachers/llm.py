"""The ``llm`` teacher: an OpenAI-compatible chat-completions endpoint labels texts with soft labels.

Each label is shown in the prompt with a one-token code (see :mod:`pipeline.teachers.llm_prompt`) and
the model is asked for the code alone. Probabilities come from the logprobs of the first generated
token (``logprobs: true, top_logprobs: N``), or, when the endpoint returns no logprobs, from votes over
``samples`` answers sampled at ``sample_temperature`` with add-one smoothing. Requests run concurrently
(``concurrency``) with retries (:mod:`pipeline.teachers.llm_client`); ``usage`` holds the running call,
retry, failure, token and cost totals. params.yaml ``teacher.llm`` configures it; docs/teachers_llm.md
explains it.

Per-text failures: :meth:`LLMTeacher.predict_proba_partial` returns NaN rows plus ``{index: reason}``;
:meth:`LLMTeacher.predict_proba` raises TeacherError naming the failed texts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

from pipeline.config.teacher_llm import LLMTeacherConfig
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register
from pipeline.teachers.llm_client import AnswerFailed, ChatClient, MalformedAnswer, Usage
from pipeline.teachers.llm_prompt import (
    label_codes,
    normalize_answer,
    probs_from_logprobs,
    probs_from_votes,
    render_prompt,
)

log = logging.getLogger("distill.teacher.llm")


def is_loopback(base_url: str) -> bool:
    """True when ``base_url`` points at this machine, where an API key is optional."""
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LLMTeacher:
    """Soft labels from a chat model. Build it with :func:`build_llm_teacher` (reads the API key)."""

    def __init__(self, cfg: LLMTeacherConfig, api_key: str | None = None) -> None:
        if urlparse(cfg.base_url).scheme not in ("http", "https"):
            raise TeacherError(f"teacher.llm.base_url must start with http:// or https://, got {cfg.base_url!r}")
        self.cfg = cfg
        self.labels: list[str] = list(cfg.labels)
        self.codes: list[str] = label_codes(len(self.labels))
        self._api_key = api_key
        self._usage = Usage()
        # auto mode: flips to False at the first answer without logprobs, then every text is voted on.
        self._logprobs_ok = cfg.method != "vote"

    @property
    def fingerprint(self) -> str:
        """Changes with what shapes the answers: model, prompt, labels and codes, sampling. Not the key,
        the endpoint address, concurrency, timeouts or retries."""
        c = self.cfg
        return fingerprint_of("llm", c.model, c.prompt, c.system, list(c.labels.items()), self.codes, c.method,
                              c.top_logprobs, c.logprob_floor, c.temperature, c.max_tokens, c.samples,
                              c.sample_temperature)

    @property
    def usage(self) -> dict[str, float | int]:
        """Totals since this teacher was built: calls, retries, failures, prompt/completion tokens, cost_usd."""
        return self._usage.as_dict(self.cfg.price_per_1k_prompt, self.cfg.price_per_1k_completion)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [n, k] (float32, rows sum to 1); TeacherError if any text failed."""
        probs, failures = self.predict_proba_partial(texts)
        if failures:
            shown = "; ".join(f"text {i}: {why}" for i, why in list(sorted(failures.items()))[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            raise TeacherError(f"the llm teacher failed on {len(failures)} of {len(texts)} texts: {shown}{more}. "
                               "Use predict_proba_partial to keep the texts that succeeded.")
        return check_probabilities(probs, len(texts), len(self.labels))

    def predict_proba_partial(self, texts: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities [n, k] float32 with NaN rows for the texts that failed, and ``{index: reason}``.

        Raises TeacherError only for what no retry can fix (401/403/404), which stops the whole batch.
        """
        texts = list(texts)
        out = np.full((len(texts), len(self.labels)), np.nan, dtype=np.float32)
        if not texts:
            return out, {}
        rows, failures = _run_coroutine(lambda: self._label_all(texts))
        for i, row in rows.items():
            out[i] = row
        self._usage.failures += len(failures)
        if failures:
            log.warning("llm teacher: %d of %d texts failed (first: %s)", len(failures), len(texts),
                        next(iter(failures.values())))
        return out, failures

    async def _label_all(self, texts: list[str]) -> tuple[dict[int, list[float]], dict[int, str]]:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        rows: dict[int, list[float]] = {}
        failures: dict[int, str] = {}
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.cfg.timeout_s),
                                     limits=limits) as http:
            client = ChatClient(http, self.cfg, self._usage, asyncio.Semaphore(self.cfg.concurrency))

            async def one(i: int) -> None:
                try:
                    rows[i] = await self._label_one(client, texts[i])
                except AnswerFailed as exc:
                    failures[i] = str(exc)

            try:
                async with asyncio.TaskGroup() as group:
                    for i in range(len(texts)):
                        group.create_task(one(i))
            except* TeacherError as eg:
                raise eg.exceptions[0] from None
        return rows, dict(sorted(failures.items()))

    def _messages(self, text: str) -> list[dict[str, str]]:
        prompt = render_prompt(self.cfg.prompt, self.cfg.labels, self.codes, text)
        system = [{"role": "system", "content": self.cfg.system}] if self.cfg.system else []
        return system + [{"role": "user", "content": prompt}]

    async def _label_one(self, client: ChatClient, text: str) -> list[float]:
        messages = self._messages(text)
        if self.cfg.method == "logprobs" or (self.cfg.method == "auto" and self._logprobs_ok):
            body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                    "max_tokens": self.cfg.max_tokens, "logprobs": True, "top_logprobs": self.cfg.top_logprobs}
            probs = await client.complete(body, self._parse_logprobs)
            if probs is not None:
                return probs
            if self._logprobs_ok:
                log.warning("llm teacher: %s returned no logprobs; falling back to %d sampled votes per text",
                            self.cfg.base_url, self.cfg.samples)
                self._logprobs_ok = False
        return await self._vote(client, messages)

    async def _vote(self, client: ChatClient, messages: list[dict[str, str]]) -> list[float]:
        """Collect ``samples`` valid answers (asking for the missing ones with ``n``) and smooth the counts."""
        votes: list[str] = []
        while len(votes) < self.cfg.samples:
            body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.sample_temperature,
                    "max_tokens": self.cfg.max_tokens, "n": self.cfg.samples - len(votes)}
            votes.extend(await client.complete(body, self._parse_votes))
        return probs_from_votes(votes[: self.cfg.samples], self.codes)

    def _parse_logprobs(self, data: dict[str, Any]) -> list[float] | None:
        """Probabilities from the first token's top logprobs; None (auto mode) when the answer has none."""
        choice = _choices(data)[0]
        answer = normalize_answer(_content(choice))
        if answer not in self.codes:
            raise MalformedAnswer(f"answer {_content(choice)!r} is not one of the label codes")
        logprobs = choice.get("logprobs")
        first = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not first or not isinstance(first[0], dict):
            if self.cfg.method == "logprobs":
                raise MalformedAnswer("the answer carries no logprobs (if the endpoint cannot return them, "
                                      "set teacher.llm.method: vote or auto)")
            return None
        head = first[0]
        top = [(str(t.get("token", "")), float(t.get("logprob", float("-inf"))))
               for t in head.get("top_logprobs") or [] if isinstance(t, dict)]
        if "token" in head and head["token"] not in {t for t, _ in top}:
            top.append((str(head["token"]), float(head.get("logprob", float("-inf")))))
        try:
            return probs_from_logprobs(top, self.codes, self.cfg.logprob_floor)
        except ValueError as exc:
            raise MalformedAnswer(str(exc)) from None

    def _parse_votes(self, data: dict[str, Any]) -> list[str]:
        """The valid codes among the returned choices; MalformedAnswer when there is none."""
        choices = _choices(data)
        answers = [normalize_answer(_content(c)) for c in choices]
        valid = [a for a in answers if a in self.codes]
        if not valid:
            raise MalformedAnswer(f"no answer is a label code ({', '.join(repr(_content(c)) for c in choices[:3])})")
        return valid


def _choices(data: Any) -> list[dict[str, Any]]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise MalformedAnswer("the response has no choices")
    return choices


def _content(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _run_coroutine(factory: Any) -> Any:
    """Run ``factory()`` to completion, also when called from inside a running event loop (Prefect, Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


@register("llm")
def build_llm_teacher(cfg: LLMTeacherConfig, model_dir: Any = None) -> LLMTeacher:
    """Factory for ``teacher.kind: llm``. ``model_dir`` is unused: this teacher has no fitted state."""
    if not cfg.labels:
        raise TeacherError("teacher.llm.labels is empty: list each label with a description, "
                           "e.g. labels: {spam: unsolicited bulk mail, ham: normal mail}")
    api_key = os.environ.get(cfg.api_key_env) or None
    if api_key is None and not is_loopback(cfg.base_url):
        raise TeacherError(f"the environment variable {cfg.api_key_env} is not set: export the API key of "
                           f"{cfg.base_url} in it (or name another variable in teacher.llm.api_key_env)")
    return LLMTeacher(cfg, api_key)
