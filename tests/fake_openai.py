"""A real OpenAI-compatible chat-completions server on 127.0.0.1 whose answers a test scripts.

It speaks HTTP/1.1 (``POST /v1/chat/completions``, ``POST /v1/completions``, and ``POST /tokenize``
when given a ``tokenizer``), one thread per request, and records what it
saw: every request's body, arrival time, and how many times the same prompt was asked (``attempt``),
plus the most requests ever in flight at once. A test gives it a *responder*, a function from the
request to a :class:`Reply` (status, JSON or raw body, headers, delay before answering)::

    with FakeOpenAI(keyword_model({"win": "A"}, default="B")) as server:
        cfg = LLMTeacherConfig(base_url=server.base_url, labels={...})

The port is chosen by the operating system (bind to port 0), so parallel tests never collide.
Used by the llm teacher tests and by end-to-end tests that need an LLM teacher without a network.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeRequest:
    index: int  # 0-based order of arrival over the server's life
    attempt: int  # 1-based: how many requests with this same prompt arrived so far, this one included
    time: float  # time.monotonic() at arrival
    body: dict[str, Any]
    headers: dict[str, str]

    path: str = "/v1/chat/completions"

    @property
    def prompt(self) -> str:
        """The content of the last user message (chat), or what follows the last few-shot answer (completions)."""
        if "prompt" in self.body:
            return str(self.body["prompt"])
        users = [m.get("content", "") for m in self.body.get("messages", []) if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def text(self) -> str:
        """The classified text: what stands between the last pair of triple quotes, else the whole prompt."""
        parts = self.prompt.split('"""')
        return parts[-2].strip() if len(parts) >= 3 else self.prompt

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.body.get("logprobs"))


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    raw: str | None = None  # sent as-is instead of json (for non-JSON bodies)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


Responder = Callable[[FakeRequest], Reply]


def completion(contents: str | list[str], top_logprobs: dict[str, float] | None = None,
               prompt_tokens: int = 10, completion_tokens: int | None = None, model: str = "fake") -> Reply:
    """A 200 chat-completions answer: one choice per content; the first carries ``top_logprobs`` if given."""
    contents = [contents] if isinstance(contents, str) else contents
    choices = []
    for i, content in enumerate(contents):
        choice: dict[str, Any] = {"index": i, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop", "logprobs": None}
        if top_logprobs is not None and i == 0:
            chosen = max(top_logprobs, key=top_logprobs.get)
            choice["logprobs"] = {"content": [{
                "token": chosen, "logprob": top_logprobs[chosen], "bytes": list(chosen.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                 for t, lp in sorted(top_logprobs.items(), key=lambda kv: -kv[1])],
            }]}
        choices.append(choice)
    completion_tokens = len(contents) if completion_tokens is None else completion_tokens
    return Reply(json={"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                       "model": model, "choices": choices,
                       "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}})


def text_completion(tokens: list[str], tops: list[dict[str, float]] | None = None, prompt_tokens: int = 10) -> Reply:
    """A 200 answer of ``/v1/completions`` in llama.cpp's shape: ``text``, and per generated token a
    ``logprobs.content`` entry with its ``top_logprobs`` (``tops[i]``, the chosen token first)."""
    choice: dict[str, Any] = {"index": 0, "text": "".join(tokens), "finish_reason": "length", "logprobs": None}
    if tops is not None:
        choice["logprobs"] = {"content": [
            {"token": token, "logprob": top.get(token, -20.0), "bytes": list(token.encode()),
             "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                              for t, lp in sorted(top.items(), key=lambda kv: -kv[1])]}
            for token, top in zip(tokens, tops)]}
    return Reply(json={"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": "fake",
                       "choices": [choice], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                                                       "total_tokens": prompt_tokens + len(tokens)}})


def keyword_model(rules: dict[str, str], default: str, confidence: float = 0.9,
                  logprobs: bool = True) -> Responder:
    """A deterministic "model": answers the code of the first keyword found in the text (else ``default``).

    With logprobs asked for (and ``logprobs`` on), the chosen code gets ``confidence`` and the other
    codes named in ``rules``/``default`` share the rest; without, all ``n`` samples answer the code.
    """
    codes = sorted(set(rules.values()) | {default})

    def respond(req: FakeRequest) -> Reply:
        text = req.text.lower()
        code = next((c for word, c in rules.items() if word.lower() in text), default)
        n = int(req.body.get("n") or 1)
        if logprobs and req.wants_logprobs:
            rest = (1.0 - confidence) / max(1, len(codes) - 1)
            top = {c: math.log(confidence if c == code else rest) for c in codes}
            return completion(code, top, prompt_tokens=len(req.prompt.split()))
        return completion([code] * n, prompt_tokens=len(req.prompt.split()))

    return respond


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet test output)
        pass

    def do_POST(self) -> None:  # noqa: N802  (http.server naming)
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.rstrip("/")
        routes = {"/v1/chat/completions", "/v1/completions"} | ({"/tokenize"} if fake.tokenizer else set())
        if path not in routes:
            self._send(Reply(status=404, json={"error": {"message": f"no route {self.path}"}}))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(Reply(status=400, json={"error": {"message": "body is not JSON"}}))
            return
        if path == "/tokenize":  # llama.cpp's shape: {"tokens": [{"id", "piece"}, ...]}
            pieces = fake.tokenizer(str(body.get("content", "")))
            self._send(Reply(json={"tokens": [{"id": i, "piece": p} for i, p in enumerate(pieces)]}))
            return
        request = fake._arrive(body, dict(self.headers), path)
        try:
            reply = fake.responder(request)
            if reply.delay:
                time.sleep(reply.delay)
        finally:
            fake._leave()  # before writing, so a client that sends its next request at once is not over-counted
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer came

    def _send(self, reply: Reply) -> None:
        data = (reply.raw if reply.raw is not None else json.dumps(reply.json)).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json" if reply.raw is None else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still sleeping on a timed-out client never blocks shutdown
    fake: "FakeOpenAI"


class FakeOpenAI:
    """The server; a context manager that starts it in a thread and stops it on exit."""

    def __init__(self, responder: Responder, tokenizer: Callable[[str], list[str]] | None = None) -> None:
        self.responder = responder
        self.tokenizer = tokenizer  # text -> token pieces, served at /tokenize (None: no such route)
        self.requests: list[FakeRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self, port: int = 0) -> "FakeOpenAI":
        """Listen on ``port`` (0: one the OS picks); a stopped server can start again on its old port."""
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def requests_for(self, text: str) -> list[FakeRequest]:
        """The requests whose classified text is ``text``, in arrival order."""
        return [r for r in self.requests if r.text == text]

    def _arrive(self, body: dict[str, Any], headers: dict[str, str], path: str = "/v1/chat/completions") -> FakeRequest:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            request = FakeRequest(index=len(self.requests), attempt=0, time=time.monotonic(), body=body,
                                  headers=headers, path=path)
            self._attempts[request.prompt] += 1
            request.attempt = self._attempts[request.prompt]
            self.requests.append(request)
            return request

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
