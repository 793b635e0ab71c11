"""The ``llm`` teacher: an OpenAI-compatible chat-completions (or completions) endpoint gives soft labels.

Each label is shown in the prompt with a one-token code (see :mod:`pipeline.teachers.llm_prompt`) and
the model is asked for the code alone. Probabilities come from the logprobs at the answer's first token
(``logprobs: true, top_logprobs: N``; leading whitespace tokens are skipped), or, when the endpoint
returns no logprobs, from votes over
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
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

from pipeline.config.teacher_llm import LLMTeacherConfig
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register
from pipeline.teachers.llm_client import AnswerFailed, ChatClient, MalformedAnswer, OffCodeAnswer, Usage
from pipeline.teachers.llm_prompt import (
    cut_text,
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
        # codes as the prompt shows them (and the tokenizer sees them); answers match them case-insensitively
        self.codes: list[str] = [c.strip() for c in cfg.codes] if cfg.codes else label_codes(len(self.labels))
        self._keys: list[str] = [c.upper() for c in self.codes]
        self._api_key = api_key
        self._usage = Usage()
        # the text of every answer that was not a label code, with how often it came (metrics/label.json)
        self.malformed_answers: Counter[str] = Counter()
        self._codes_checked = not cfg.check_codes
        # auto mode: flips to False at the first answer without logprobs, then every text is voted on.
        self._logprobs_ok = cfg.method != "vote"
        # flips to False when the endpoint rejects several answers per request (n > 1)
        self._n_ok = True

    @property
    def fingerprint(self) -> str:
        """Changes with what shapes the answers: model, prompt, labels and codes, sampling. Not the key,
        the endpoint address, concurrency, timeouts or retries."""
        c = self.cfg
        # settings added later enter only when they differ from their default, so caches stay valid
        later = {key: value for key, value in (("endpoint", c.endpoint), ("max_text_chars", c.max_text_chars),
                                               ("examples", [[e.text, e.label] for e in c.examples]))
                 if value not in ("chat", None, [])}
        return fingerprint_of("llm", c.model, c.prompt, c.system, list(c.labels.items()), self.codes, c.method,
                              c.top_logprobs, c.logprob_floor, c.temperature, c.max_tokens, c.samples,
                              c.sample_temperature, *([sorted(later.items())] if later else []))

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
            if not self._codes_checked:
                await self._check_codes(http)

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

    async def _check_codes(self, http: Any) -> None:
        """Every label code must be one token of the model's tokenizer: only the first answer token's
        logprobs are read. Asked of the server's /tokenize (llama.cpp, vLLM); skipped where there is none."""
        import httpx

        root = self.cfg.base_url.rstrip("/").removesuffix("/v1")
        split: dict[str, list[str]] = {}
        for code in self.codes:
            try:
                resp = await http.post(f"{root}/tokenize", json={"content": code, "prompt": code, "model": self.cfg.model,
                                                               "add_special": False, "add_special_tokens": False,
                                                               "with_pieces": True})
            except httpx.HTTPError as exc:
                log.info("llm teacher: cannot check the label codes against %s/tokenize (%s)", root, exc)
                break
            if resp.status_code != 200:
                log.info("llm teacher: %s/tokenize answered HTTP %d; label codes not checked against the "
                         "model's tokenizer", root, resp.status_code)
                break
            try:
                tokens = resp.json().get("tokens")
            except ValueError:
                break
            if not isinstance(tokens, list):
                break
            if len(tokens) != 1:
                split[code] = [str(t.get("piece", t.get("id"))) if isinstance(t, dict) else str(t) for t in tokens]
        else:
            log.info("llm teacher: the %d label codes are single tokens of %s", len(self.codes), self.cfg.model)
        if split:
            shown = "; ".join(f"{code!r} -> {pieces}" for code, pieces in list(split.items())[:5])
            raise TeacherError(f"{len(split)} of the {len(self.codes)} label codes are several tokens in the tokenizer "
                               f"of {self.cfg.model} ({shown}), and only the first answer token's logprobs are read. "
                               "Give one-token codes in teacher.llm.codes, or set check_codes: false to go on "
                               "with votes (method: vote)")
        self._codes_checked = True

    def _prompt(self, text: str) -> str:
        return render_prompt(self.cfg.prompt, self.cfg.labels, self.codes, cut_text(text, self.cfg.max_text_chars))

    def _code_of(self, label: str) -> str:
        return self.codes[self.labels.index(label)]

    def _request(self, text: str) -> dict[str, Any]:
        """The endpoint-specific part of the body: chat ``messages`` or a completion ``prompt``."""
        if self.cfg.endpoint == "completion":
            shots = "".join(f"{self._prompt(e.text)} {self._code_of(e.label)}\n\n" for e in self.cfg.examples)
            system = f"{self.cfg.system}\n\n" if self.cfg.system else ""
            return {"prompt": system + shots + self._prompt(text)}
        messages = [{"role": "system", "content": self.cfg.system}] if self.cfg.system else []
        for e in self.cfg.examples:
            messages += [{"role": "user", "content": self._prompt(e.text)},
                         {"role": "assistant", "content": self._code_of(e.label)}]
        return {"messages": messages + [{"role": "user", "content": self._prompt(text)}]}

    async def _label_one(self, client: ChatClient, text: str) -> list[float]:
        request = self._request(text)
        retry_malformed = self.cfg.on_malformed == "retry"  # logprobs: an answer without codes fails at once
        if self.cfg.method == "logprobs" or (self.cfg.method == "auto" and self._logprobs_ok):
            n = self.cfg.top_logprobs
            body = {"model": self.cfg.model, **request, "temperature": self.cfg.temperature,
                    "max_tokens": self.cfg.max_tokens,
                    **({"logprobs": n} if self.cfg.endpoint == "completion" else {"logprobs": True, "top_logprobs": n})}
            try:
                probs = await client.complete(body, self._parse_logprobs, retry_malformed)
            except OffCodeAnswer:
                if self.cfg.on_malformed != "vote":
                    raise
                return await self._vote(client, request)
            if probs is not None:
                return probs
            if self._logprobs_ok:
                log.warning("llm teacher: %s returned no logprobs; falling back to %d sampled votes per text",
                            self.cfg.base_url, self.cfg.samples)
                self._logprobs_ok = False
        return await self._vote(client, request)

    async def _vote(self, client: ChatClient, request: dict[str, Any]) -> list[float]:
        """Collect ``samples`` valid answers (asking for the missing ones with ``n``) and smooth the counts."""
        votes: list[str] = []
        while len(votes) < self.cfg.samples:
            n = self.cfg.samples - len(votes) if self._n_ok else 1
            body = {"model": self.cfg.model, **request, "temperature": self.cfg.sample_temperature,
                    "max_tokens": self.cfg.max_tokens, "n": n}
            try:
                votes.extend(await client.complete(body, self._parse_votes, self.cfg.on_malformed != "fail"))
            except OffCodeAnswer:
                raise
            except AnswerFailed as exc:
                # llama.cpp's server caps n at its number of slots and answers 400: ask one answer a request
                if n == 1 or "HTTP 400" not in str(exc):
                    raise
                if self._n_ok:
                    log.warning("llm teacher: %s rejected n=%d (%s); asking for one answer per request",
                                self.cfg.base_url, n, exc)
                self._n_ok = False
        return probs_from_votes(votes[: self.cfg.samples], self._keys)

    def _off_code(self, content: str) -> None:
        self._usage.malformed += 1
        self.malformed_answers[content.strip()[:80]] += 1

    def _parse_logprobs(self, data: dict[str, Any]) -> list[float] | None:
        """Probabilities from the answer token's top logprobs; None (auto mode) when the answer has none."""
        choice = _choices(data)[0]
        content = _content(choice)
        answer = _answer_token(choice.get("logprobs"))
        top = None if answer is None else answer[1]
        # the code is one token, so the answer token decides: "Yes" glued to more text ("Yesに行った") is Yes
        if normalize_answer(content) not in self._keys and (answer is None or normalize_answer(answer[0]) not in self._keys):
            self._off_code(content)
            if self.cfg.on_malformed == "logprobs" and top:
                try:  # the codes' share of the answer token's alternatives, as for a multiple-choice score
                    return probs_from_logprobs(top, self._keys, self.cfg.logprob_floor)
                except ValueError:
                    pass
            raise MalformedAnswer(f"answer {content!r} is not one of the label codes")
        if top is None:
            if self.cfg.method == "logprobs":
                raise MalformedAnswer("the answer carries no logprobs (if the endpoint cannot return them, "
                                      "set teacher.llm.method: vote or auto)")
            return None
        try:
            return probs_from_logprobs(top, self._keys, self.cfg.logprob_floor)
        except ValueError as exc:
            raise MalformedAnswer(str(exc)) from None

    def _parse_votes(self, data: dict[str, Any]) -> list[str]:
        """The valid codes among the returned choices; MalformedAnswer when there is none."""
        choices = _choices(data)
        valid = []
        for choice in choices:
            content = _content(choice)
            if normalize_answer(content) in self._keys:
                valid.append(normalize_answer(content))
            else:
                self._off_code(content)
        if not valid:
            raise MalformedAnswer(f"no answer is a label code ({', '.join(repr(_content(c)) for c in choices[:3])})")
        return valid


def _answer_token_top(logprobs: Any) -> list[tuple[str, float]] | None:
    """The (token, logprob) alternatives at the answer token (see :func:`_answer_token`); None without logprobs."""
    answer = _answer_token(logprobs)
    return None if answer is None else answer[1]


def _answer_token(logprobs: Any) -> tuple[str, list[tuple[str, float]]] | None:
    """The answer's first token and its (token, logprob) alternatives: the first generated token that is
    not just whitespace or quoting (a base model often opens with a newline, a chat model with a space).

    Both shapes endpoints use are read:

    - ``{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}, ...]}``: chat
      completions everywhere, and llama.cpp's server for completions too;
    - ``{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob, ...}, ...]}``: the
      legacy completions shape (OpenAI, vLLM).

    None when there are no logprobs.
    """
    if not isinstance(logprobs, dict):
        return None
    steps: list[tuple[str, float, list[tuple[str, float]]]] = []
    content = logprobs.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        for step in content:
            if not isinstance(step, dict):
                break
            top = [(str(t.get("token", "")), float(t.get("logprob", float("-inf"))))
                   for t in step.get("top_logprobs") or [] if isinstance(t, dict)]
            steps.append((str(step.get("token", "")), float(step.get("logprob", float("-inf"))), top))
    else:
        legacy, tokens = logprobs.get("top_logprobs"), logprobs.get("tokens")
        chosen = logprobs.get("token_logprobs")
        if not (isinstance(legacy, list) and legacy and isinstance(legacy[0], dict)):
            return None
        for i, alternatives in enumerate(legacy):
            if not isinstance(alternatives, dict):
                break
            token = str(tokens[i]) if isinstance(tokens, list) and i < len(tokens) else ""
            logprob = float(chosen[i]) if isinstance(chosen, list) and i < len(chosen) and chosen[i] is not None \
                else float("-inf")
            steps.append((token, logprob, [(str(t), float(lp)) for t, lp in alternatives.items()]))
    if not steps:
        return None
    # the answer starts at the first token that reads as something; else the first token
    token, logprob, top = next((step for step in steps if normalize_answer(step[0])), steps[0])
    if token and token not in {t for t, _ in top}:
        top.append((token, logprob))
    return token, top


def _choices(data: Any) -> list[dict[str, Any]]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise MalformedAnswer("the response has no choices")
    return choices


def _content(choice: dict[str, Any]) -> str:
    """The answer text: ``message.content`` (chat) or ``text`` (completions)."""
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("text")
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
