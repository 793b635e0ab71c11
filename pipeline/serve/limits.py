"""Input checks of ``POST /v1/predict`` and the V2 ``infer``: body size, JSON shape, batch size, text length.

Each failure is a :class:`RequestRejected` carrying the HTTP status and a message that names the limit
(the params key), so a client knows what to change. Nothing here raises anything else.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# A text must hold a character besides whitespace and control characters. The same pattern goes into
# the OpenAPI schema (an ECMA regex there, a Python one here: the two character sets coincide).
VISIBLE_PATTERN = "[^\\s\\u0000-\\u001f\\u007f-\\u009f\\ufeff]"
_VISIBLE = re.compile(VISIBLE_PATTERN)


class RequestRejected(Exception):
    """A request the server refuses, with its status code and a readable reason."""

    def __init__(self, status: int, message: str, limit: str | None = None, value: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.limit = limit
        self.value = value

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.limit is not None:
            out["limit"] = self.limit
            out["max"] = self.value
        return out


def check_content_type(header: str | None) -> None:
    """Only ``application/json`` bodies: a web page can post text/plain cross-site without asking (CORS
    "simple" requests), and such rows would reach the log, the paid teacher and the next training set."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise RequestRejected(415, f"Content-Type must be application/json, got {header or 'none'!r}",
                              "content_type", "application/json")


def check_content_length(header: str | None, max_bytes: int) -> None:
    """Refuse before reading when the client announces a body over ``serve.max_body_bytes``."""
    if header is None:
        return
    try:
        size = int(header)
    except ValueError:
        raise RequestRejected(400, f"Content-Length {header!r} is not a number") from None
    if size > max_bytes:
        raise RequestRejected(413, f"request body of {size} bytes is over the limit serve.max_body_bytes = "
                                   f"{max_bytes}", "serve.max_body_bytes", max_bytes)


async def read_body(request, max_bytes: int) -> bytes:
    """The body, counted as it arrives: a chunked or lying client cannot push past the limit."""
    check_content_length(request.headers.get("content-length"), max_bytes)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestRejected(413, f"request body is over the limit serve.max_body_bytes = {max_bytes}",
                                  "serve.max_body_bytes", max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_predict(body: bytes, max_batch: int, max_chars: int) -> tuple[list[str], str | None]:
    """``{"texts": [...], "key": "..."}`` -> (texts, key), or a RequestRejected naming what is wrong."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestRejected(422, 'body must be a JSON object like {"texts": ["..."]}')
    unknown = set(payload) - {"texts", "key"}
    if unknown:
        raise RequestRejected(422, f"unknown field(s) {sorted(unknown)}; expected 'texts' and optional 'key'")
    texts = payload.get("texts")
    if texts is None:
        raise RequestRejected(422, "field 'texts' is missing: send a list of strings")
    check_texts(texts, "texts", max_batch, max_chars)
    key = payload.get("key")
    if key is not None and not isinstance(key, str):
        raise RequestRejected(422, f"field 'key' must be a string, got {type(key).__name__}")
    return texts, key


def check_texts(texts: Any, field: str, max_batch: int, max_chars: int) -> None:
    """A non-empty list of visible strings within ``serve.max_batch`` and ``serve.max_text_chars``."""
    if not isinstance(texts, list):
        raise RequestRejected(422, f"field {field!r} must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise RequestRejected(422, f"field {field!r} is empty: send at least one text")
    if len(texts) > max_batch:
        raise RequestRejected(413, f"batch of {len(texts)} texts is over the limit serve.max_batch = {max_batch}",
                              "serve.max_batch", max_batch)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestRejected(422, f"{field}[{i}] must be a string, got {type(text).__name__}")
        if not _VISIBLE.search(text):
            raise RequestRejected(422, f"{field}[{i}] is empty or only whitespace and control characters")
        if len(text) > max_chars:
            raise RequestRejected(413, f"{field}[{i}] has {len(text)} characters, over the limit "
                                       f"serve.max_text_chars = {max_chars}", "serve.max_text_chars", max_chars)


# Open Inference Protocol (V2) tensors of the text model: one BYTES input, label and probs outputs.
V2_INPUT, V2_OUTPUTS = "text", ("label", "probs")


def parse_infer(body: bytes, max_batch: int, max_chars: int) -> tuple[list[str], str | None, str | None, list[str]]:
    """A V2 inference request -> (texts, routing key, request id, outputs asked for).

    ``{"id": "...", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [N], "data": ["...", ...]}],
    "parameters": {"key": "..."}, "outputs": [{"name": "label"}]}``; ``id``, ``parameters`` and
    ``outputs`` are optional (all outputs by default). Shape ``[N]`` or ``[N, 1]``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise RequestRejected(422, 'body must be a V2 inference request: {"inputs": [{"name": "text", '
                                   '"datatype": "BYTES", "shape": [1], "data": ["..."]}]}')
    inputs = payload["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestRejected(422, f"the model takes exactly one input tensor ({V2_INPUT!r}), got {len(inputs)}")
    tensor = inputs[0]
    if tensor.get("name") != V2_INPUT:
        raise RequestRejected(422, f"unknown input {tensor.get('name')!r}; the model's input is {V2_INPUT!r}")
    if tensor.get("datatype") != "BYTES":
        raise RequestRejected(422, f"input {V2_INPUT!r} has datatype BYTES (UTF-8 strings), got {tensor.get('datatype')!r}")
    texts = tensor.get("data")
    check_texts(texts, "inputs[0].data", max_batch, max_chars)
    shape = tensor.get("shape")
    if shape not in ([len(texts)], [len(texts), 1]):
        raise RequestRejected(422, f"input shape {shape} does not match its {len(texts)} strings: use [{len(texts)}]")
    params = payload.get("parameters", {})
    if not isinstance(params, dict):
        raise RequestRejected(422, f"field 'parameters' must be an object, got {type(params).__name__}")
    key = params.get("key")
    if key is not None and not isinstance(key, str):
        raise RequestRejected(422, f"parameters.key must be a string, got {type(key).__name__}")
    request_id = payload.get("id")
    if "id" in payload and not isinstance(request_id, str):  # absent is fine; null is not a string
        raise RequestRejected(422, f"field 'id' must be a string, got {type(request_id).__name__}")
    if "outputs" not in payload:
        names = list(V2_OUTPUTS)
    else:
        wanted = payload["outputs"]
        if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
            raise RequestRejected(422, "field 'outputs' must be a list of {\"name\": ...} objects")
        names = [o.get("name") for o in wanted]
        unknown = [n for n in names if n not in V2_OUTPUTS]
        if unknown:
            raise RequestRejected(422, f"unknown output(s) {unknown}; the model's outputs are {list(V2_OUTPUTS)}")
    return texts, key, request_id, names
