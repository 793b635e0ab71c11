"""Catalogue, HTTP: bad requests against a real server process on 127.0.0.1.

Each is refused with the documented status and a JSON error naming the limit (or, at the protocol
level, a status line and a closed connection); none reaches the prediction log, none is a 5xx, and
the server keeps answering."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.helpers.serving import metric, raw_exchange
from tests.serve.conftest import Workspace

pytestmark = pytest.mark.integration

LIMITS = {"max_header_bytes": 4096, "read_timeout_s": 1.0, "idle_timeout_s": 2.0, "max_batch": 8,
          "max_text_chars": 300, "max_body_bytes": 20_000}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, bundles):
    root = tmp_path_factory.mktemp("http-catalogue")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DISTILL_REGISTRY_URL", raising=False)
        mp.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
        ws = Workspace(root, bundles, serve=LIMITS)
        proc = ws.serve_production()
        yield ws, proc
        proc.stop()


# (id, method, path, headers, body, status, needle in the JSON error)
APP_CASES = [
    ("no-content-type", "POST", "/v1/predict", {}, b'{"texts": ["hi"]}', 415, "application/json"),
    ("text-plain", "POST", "/v1/predict", {"content-type": "text/plain"}, b'{"texts": ["hi"]}', 415, "text/plain"),
    ("form-post", "POST", "/v1/predict", {"content-type": "application/x-www-form-urlencoded"}, b"texts=hi", 415,
     "application/json"),
    ("invalid-json", "POST", "/v1/predict", JSON, b'{"texts": ["unterminated', 400, "not valid JSON"),
    ("binary-garbage", "POST", "/v1/predict", JSON, b"\xff\xfe\x00\x01", 400, "not valid JSON"),
    ("lone-surrogate-json", "POST", "/v1/predict", JSON, b'{"texts": ["a \\ud800 b"]}', 400, "not valid JSON"),
    ("empty-body", "POST", "/v1/predict", JSON, b"", 400, "not valid JSON"),
    ("array-body", "POST", "/v1/predict", JSON, b'["hi"]', 422, "JSON object"),
    ("unknown-field", "POST", "/v1/predict", JSON, b'{"texts": ["hi"], "model": "x"}', 422, "unknown field"),
    ("texts-missing", "POST", "/v1/predict", JSON, b'{"key": "k"}', 422, "'texts' is missing"),
    ("texts-not-list", "POST", "/v1/predict", JSON, b'{"texts": "hi"}', 422, "must be a list"),
    ("texts-empty", "POST", "/v1/predict", JSON, b'{"texts": []}', 422, "is empty"),
    ("text-not-string", "POST", "/v1/predict", JSON, b'{"texts": [42]}', 422, "texts[0] must be a string"),
    ("text-null", "POST", "/v1/predict", JSON, b'{"texts": ["ok", null]}', 422, "texts[1] must be a string"),
    ("text-blank", "POST", "/v1/predict", JSON, b'{"texts": ["   "]}', 422, "only whitespace"),
    ("text-control-only", "POST", "/v1/predict", JSON, b'{"texts": ["\\u0000\\u001f"]}', 422, "control characters"),
    ("text-too-long", "POST", "/v1/predict", JSON, json.dumps({"texts": ["x" * 301]}).encode(), 413,
     "serve.max_text_chars = 300"),
    ("batch-too-big", "POST", "/v1/predict", JSON, json.dumps({"texts": ["hi"] * 9}).encode(), 413,
     "serve.max_batch = 8"),
    ("key-not-string", "POST", "/v1/predict", JSON, b'{"texts": ["hi"], "key": 7}', 422, "'key' must be a string"),
    ("body-too-big", "POST", "/v1/predict", JSON, json.dumps({"texts": ["y" * 250] * 8, "key": "z" * 20_000}).encode(),
     413, "serve.max_body_bytes"),
    ("bad-content-length", "POST", "/v1/predict", {**JSON, "content-length": "abc"}, b'{"texts": ["hi"]}', 400, ""),
    ("wrong-method", "GET", "/v1/predict", {}, b"", 405, ""),
    ("unknown-path", "POST", "/v1/classify", JSON, b'{"texts": ["hi"]}', 404, ""),
]


def _rows(ws) -> int:
    import sqlalchemy as sa

    engine, tbl = ws.predlog()
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(tbl)).scalar()
    engine.dispose()
    return int(n)


@pytest.mark.parametrize("case", APP_CASES, ids=[c[0] for c in APP_CASES])
def test_bad_request_is_refused_with_its_reason_and_never_logged(server, case):
    ws, proc = server
    name, method, path, headers, body, status, needle = case
    rows = _rows(ws)
    if name == "bad-content-length":  # httpx would fix the header: send it raw
        raw = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n"
               + body)
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as s:
            s.sendall(raw)
            head = s.recv(4096)
        assert head.split(b"\r\n")[0].split()[1] == b"400", head
    else:
        r = httpx.request(method, proc.url + path, headers=headers, content=body, timeout=10)
        assert r.status_code == status, (r.status_code, r.text)
        if needle:
            assert needle in r.json()["error"], r.text
    assert _rows(ws) == rows  # nothing of a refused request reaches the log
    assert httpx.get(proc.url + "/healthz").status_code == 200


# (id, raw bytes sent on a fresh connection, the status line the server answers)
PROTOCOL_CASES = [
    ("huge-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", b"431"),
    ("many-headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 90)
                                                                        for i in range(80)) + b"\r\n", b"431"),
    ("huge-url", b"GET /healthz?" + b"q" * 6000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"431"),
    ("half-sent-body", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 500\r\n\r\n{\"texts\": [\"", b"408"),
    ("unfinished-head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"408"),
    ("not-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain port\r\n\r\n", b"400"),
    ("lying-content-length", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 999999999\r\n\r\n" + b"x" * 100, b"413"),
]


@pytest.mark.parametrize("case", PROTOCOL_CASES, ids=[c[0] for c in PROTOCOL_CASES])
def test_bad_connection_gets_a_status_line_and_is_closed(server, case):
    ws, proc = server
    _, raw, status = case
    rows = _rows(ws)
    reply = raw_exchange(proc.port, raw, wait=10)
    assert reply.split(b"\r\n")[0].split()[1:2] == [status], reply[:300]
    assert _rows(ws) == rows
    assert httpx.get(proc.url + "/healthz").status_code == 200


def test_every_refusal_is_counted_and_none_was_a_server_error(server):
    _, proc = server
    assert metric(proc.url, "http_requests_total", method="POST", handler="/v1/predict", code="500") == 0
    assert metric(proc.url, "distill_rejected_requests_total", reason="content_type") >= 3
    r = httpx.post(proc.url + "/v1/predict", json={"texts": ["is my card on its way?"]})
    assert r.status_code == 200 and r.json()["predictions"][0]["source"] == "student"
