"""One chat-completions request, with retries, backoff, Retry-After and token accounting.

The ``llm`` teacher sends every request through :meth:`ChatClient.complete`, which

- holds a slot of the concurrency semaphore only while a request is in flight (not while backing off);
- retries 429, 5xx, timeouts, connection errors and malformed answers (non-JSON body, missing choices,
  an answer that is not a label code) up to ``max_retries`` times, waiting ``Retry-After`` when the
  server sends one (seconds or an HTTP date) and else ``backoff_base_s * 2**(attempt-1)`` capped at
  ``backoff_max_s``, times a random jitter in [0.5, 1];
- raises :class:`AnswerFailed` (this text fails, the others go on) when the retries are spent or the
  server rejects the request (400, 413, 422 ...), and :class:`~pipeline.teachers.base.TeacherError`
  (the whole run stops) on 401/403/404, which no retry can fix;
- adds every response's ``usage`` to the shared :class:`Usage`, malformed answers included (they cost).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.teachers.base import TeacherError

T = TypeVar("T")


class MalformedAnswer(ValueError):
    """The endpoint answered 200 but the answer cannot be used (retried like a transient error)."""


class AnswerFailed(Exception):
    """One text could not be labelled; the message says why (the last error and the attempts made)."""


class OffCodeAnswer(AnswerFailed):
    """A malformed answer that is not retried (``on_malformed: vote`` or ``fail``)."""


@dataclass
class Usage:
    """Running totals of one teacher: HTTP calls made (retries included), retries, texts that failed, tokens."""

    calls: int = 0
    retries: int = 0
    failures: int = 0
    malformed: int = 0  # answers that were not a label code (each one retried, voted or failed)
    latencies_s: list[float] = field(default_factory=list, repr=False)  # seconds per answered HTTP call
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_tokens(self, data: Any) -> None:
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)

    def as_dict(self, price_per_1k_prompt: float, price_per_1k_completion: float) -> dict[str, float | int]:
        cost = self.prompt_tokens / 1000 * price_per_1k_prompt + self.completion_tokens / 1000 * price_per_1k_completion
        return {"calls": self.calls, "retries": self.retries, "failures": self.failures, "malformed": self.malformed,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": round(cost, 8)}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ChatClient:
    """Posts chat-completions bodies to ``{base_url}/chat/completions`` for one run of the teacher."""

    def __init__(self, http: Any, cfg: Any, usage: Usage, semaphore: asyncio.Semaphore,
                 rng: random.Random | None = None) -> None:
        self.http = http  # an httpx.AsyncClient
        self.cfg = cfg
        self.usage = usage
        self.semaphore = semaphore
        self.rng = rng or random.Random()
        path = "/completions" if getattr(cfg, "endpoint", "chat") == "completion" else "/chat/completions"
        self.url = cfg.base_url.rstrip("/") + path

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to sleep before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.cfg.retry_after_max_s)
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** (attempt - 1))
        return base * self.rng.uniform(0.5, 1.0)

    def _snippet(self, text: str) -> str:
        auth = str(getattr(self.http, "headers", {}).get("authorization") or "")
        return _snippet(text, secrets=(auth, auth.removeprefix("Bearer ").strip()))

    async def complete(self, body: dict[str, Any], parse: Callable[[dict[str, Any]], T],
                       retry_malformed: bool = True) -> T:
        """POST ``body`` and return ``parse(json)``; ``parse`` raises MalformedAnswer to ask for a retry
        (or, with ``retry_malformed`` false, to give up on the text at once with OffCodeAnswer)."""
        import httpx

        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self.semaphore:
                    self.usage.calls += 1
                    sent = time.perf_counter()
                    resp = await self.http.post(self.url, json=body)
                    self.usage.latencies_s.append(time.perf_counter() - sent)
            except httpx.TimeoutException:
                reason = f"no answer within timeout_s={self.cfg.timeout_s}"
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                if status == 429 or status >= 500:
                    reason = f"HTTP {status}"
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                elif status in (401, 403):
                    raise TeacherError(f"{self.url} answered HTTP {status} (not authorized): check the API key in "
                                       f"the environment variable {self.cfg.api_key_env}: {self._snippet(resp.text)}")
                elif status == 404:
                    raise TeacherError(f"{self.url} answered HTTP 404: check teacher.llm.base_url (it should end "
                                       f"before /chat/completions) and teacher.llm.model={self.cfg.model!r}: "
                                       f"{self._snippet(resp.text)}")
                elif status >= 400:
                    raise AnswerFailed(f"request rejected with HTTP {status}: {self._snippet(resp.text)}")
                else:
                    try:
                        data = resp.json()
                    except ValueError:
                        reason = f"malformed answer: body is not JSON ({self._snippet(resp.text)})"
                    else:
                        self.usage.add_tokens(data)
                        try:
                            return parse(data)
                        except MalformedAnswer as exc:
                            reason = f"malformed answer: {exc}"
                            if not retry_malformed:
                                raise OffCodeAnswer(f"{reason} (not retried: on_malformed)") from None
            if attempt >= self.cfg.max_retries:
                raise AnswerFailed(f"{reason} (gave up after {attempt + 1} attempts)")
            attempt += 1
            self.usage.retries += 1
            await asyncio.sleep(self.backoff(attempt, retry_after))


_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|api|tok)[-_][A-Za-z0-9_\-]{8,}|\bBearer\s+\S+", re.IGNORECASE)


def _snippet(text: str, limit: int = 200, secrets: tuple[str, ...] = ()) -> str:
    """The start of a response body for a message, with the API key (and anything key-like) taken out:
    an endpoint that echoes the request's credentials must not put them in logs or error messages."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _KEYLIKE.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
