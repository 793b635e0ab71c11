"""The real model server (``distill serve`` in a child process on 127.0.0.1) over a real registry."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.helpers.serving import LoadGenerator, corrupt_copy, metric as _metric, wait_until

pytestmark = pytest.mark.e2e

TEXTS = ["I still have not received my new card", "how do I top up with apple pay?",
         "my transfer failed, why?", "what is the exchange rate for euros", "I want to close my account"]


def _models(url):
    return httpx.get(url + "/v1/models", timeout=5).json()


@pytest.fixture
def served(workspace):
    """Production = good_a; a running server; stopped whatever happens."""
    with workspace.registry() as reg:
        v = workspace.register(workspace.bundles["good_a"])
        reg.promote(v, "production", actor="tests", reason="baseline")
    server = workspace.server()
    try:
        server.wait_ready()
        yield workspace, server, v
    finally:
        server.stop()


def test_predict_health_models_metrics_and_log(served):
    ws, server, v1 = served
    url = server.url
    health = httpx.get(url + "/healthz")  # answered by LeanPaths, ahead of the routing: the same answer, counted
    assert health.json() == {"status": "ok"} and health.headers["content-type"] == "application/json"
    assert _metric(url, "http_requests_total", method="GET", handler="/healthz", code="200") == 1
    assert httpx.post(url + "/healthz").status_code == 405  # other methods still meet the router
    assert httpx.get(url + "/readyz").json() == {"ready": True, "version": v1}
    r = httpx.post(url + "/v1/predict", json={"texts": TEXTS[:3], "key": "alice"})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert len(preds) == 3
    for p in preds:
        assert p["version"] == v1 and p["route"] == "stable"
        assert len(p["probs"]) == 77 and abs(sum(p["probs"].values()) - 1) < 1e-3
        assert p["label"] == max(p["probs"], key=p["probs"].get)
    models = _models(url)
    assert models["stable"]["version"] == v1 and models["canary"] is None and models["canary_weight"] == 0.0

    with LoadGenerator(url, TEXTS, workers=2) as load:
        wait_until(lambda: sum(load.statuses.values()) >= 60, what="60 requests")
    assert set(load.statuses) == {200} and load.transport_errors == 0

    # prediction log: every answered text, with hash and text (log_text defaults to true)
    from pipeline import predlog
    from pipeline.keys import text_key

    engine, tbl = ws.predlog()
    total = 3 + sum(load.statuses.values())
    wait_until(lambda: len(predlog.read_window(engine, tbl)) >= total, what="prediction log rows")
    rows = predlog.read_window(engine, tbl)
    assert set(rows["route"]) == {"stable"} and set(rows["model_version"]) == {v1}
    first = rows.iloc[0]
    assert first["text"] == TEXTS[0] and first["text_hash"] == text_key(TEXTS[0])
    assert rows["stable_label"].isna().all() and (rows["latency_ms"] > 0).all()

    assert _metric(url, "http_requests_total", method="POST", handler="/v1/predict", code="200") >= total - 2
    assert _metric(url, "distill_predictions_total", version=v1, route="stable") >= total
    assert _metric(url, "http_request_duration_seconds_count", method="POST", handler="/v1/predict") >= total - 2
    assert _metric(url, "distill_predlog_written_total") >= total
    assert _metric(url, "distill_predlog_dropped_total") == 0
    text = httpx.get(url + "/metrics").text
    for name in ("distill_canary_weight", "distill_canary_agreement_ratio", "distill_predlog_queue_depth",
                 "distill_model_load_failures_total", "distill_route_errors_total"):
        assert name in text
    names = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert names and all(n.startswith(("distill_", "http_request")) for n in names)


BAD_BODIES = [
    ({"texts": ["x"] * 17}, 413, "serve.max_batch"),
    ({"texts": ["a" * 501]}, 413, "serve.max_text_chars"),
    ({"texts": []}, 422, "empty"),
    ({"texts": ["ok", "  "]}, 422, "texts[1] is empty"),
    ({"texts": ["ok", 3]}, 422, "texts[1] must be a string"),
    ({"text": ["ok"]}, 422, "unknown field"),
    ({}, 422, "'texts' is missing"),
    ({"texts": "just a string"}, 422, "must be a list"),
    ([1, 2], 422, "JSON object"),
]


def test_openapi_docs_build_info_and_one_series_per_counter(served):
    ws, server, v = served
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/predict", "/healthz", "/readyz", "/v1/models", "/metrics"} <= set(spec["paths"])
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["texts"] and body["properties"]["texts"]["maxItems"] == ws.params.serve.max_batch
    assert httpx.get(server.url + "/docs").status_code == 200
    text = httpx.get(server.url + "/metrics").text
    from importlib.metadata import version

    assert f'distill_build_info{{version="{version("distill")}"}} 1.0' in text
    assert not any(line.split("{")[0].endswith("_created") for line in text.splitlines() if not line.startswith("#"))


def test_bad_inputs_get_a_clear_4xx(served):
    _, server, _ = served
    with httpx.Client() as client:
        for body, status, needle in BAD_BODIES:
            r = client.post(server.url + "/v1/predict", json=body)
            assert r.status_code == status and needle in r.json()["error"], (body, r.text)
    assert _metric(server.url, "distill_rejected_requests_total", reason="serve.max_batch") == 1
    assert _metric(server.url, "http_requests_total", method="POST", handler="/v1/predict", code="422") == 7


def test_oversize_and_malformed_bodies_and_the_worker_survives(served):
    _, server, v1 = served
    url = server.url
    big = {"texts": ["word " * 90] * 16}  # under the batch and text limits, over max_body_bytes (6 kB)
    r = httpx.post(url + "/v1/predict", json=big)
    assert r.status_code == 413 and r.json()["limit"] == "serve.max_body_bytes"
    r = httpx.post(url + "/v1/predict", content=b'{"texts": ["unterminated', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = httpx.post(url + "/v1/predict", content=b"\xff\xfe\x00garbage", headers={"content-type": "application/json"})
    assert r.status_code == 400

    # a chunked body (no Content-Length) is counted as it arrives
    def chunks():
        yield b'{"texts": ["'
        for _ in range(30):
            yield b"a" * 300
        yield b'"]}'

    r = httpx.post(url + "/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["limit"] == "serve.max_body_bytes"

    # a client that announces a small body and sends a huge one is cut off by the real byte count
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 999999999\r\n\r\n" + b"x" * 100)
        head = s.recv(4096)
    assert b" 413 " in head.split(b"\r\n")[0]
    assert _metric(url, "distill_rejected_requests_total", reason="serve.max_body_bytes") >= 3
    # still serving
    r = httpx.post(url + "/v1/predict", json={"texts": ["is my card on its way?"]})
    assert r.status_code == 200 and r.json()["predictions"][0]["version"] == v1
    assert server.proc.poll() is None


def test_corrupt_model_is_refused_and_the_working_model_keeps_serving(served, tmp_path):
    """A corrupt bundle never gets into the registry; one corrupted in the store never takes an alias;
    and a server whose copy does not hash to the registered digest refuses it and keeps serving."""
    import shutil

    from pipeline.registry import BundleError
    from pipeline.serve.models import ModelLoadError, load_model

    ws, server, v1 = served
    url = server.url
    bad_dir = corrupt_copy(ws.bundles["good_b"], tmp_path / "corrupt")
    with ws.registry() as reg:
        before = ([v.id for v in reg.list_versions()], reg.state_token())
    with pytest.raises(BundleError, match="refused: .*digest"):
        ws.register(bad_dir, reason="corrupt upload")
    v2 = ws.register(ws.bundles["good_b"], reason="a good upload, corrupted later on the store's disk")
    with ws.registry() as reg:
        stored = reg.artifact_path(v2)
        digest = reg.get_version(v2).bundle_digest
        data = bytearray((stored / "model.int8.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        (stored / "model.int8.onnx").write_bytes(bytes(data))
        with LoadGenerator(url, TEXTS, workers=2) as load:
            with pytest.raises(BundleError, match=f"{v2} cannot take an alias: .*changed since registration"):
                reg.promote(v2, "production", actor="tests", reason="push a broken model")
            wait_until(lambda: sum(load.statuses.values()) >= 40, what="traffic after the refused promotion")
        assert reg.get_alias("production").version.id == v1
        assert [v.id for v in reg.list_versions()] == before[0] + [v2]
    assert set(load.statuses) == {200} and set(load.versions) == {v1}
    assert _models(url)["stable"]["version"] == v1 and _models(url)["last_load_error"] is None
    # the server's own check, for a copy corrupted after the promotion: the digest it serves is the registry's
    with pytest.raises(ModelLoadError, match="changed since registration"):
        load_model(stored, v2, 1, "smoke", digest)
    with ws.registry() as reg:
        assert _models(url)["stable"]["digest"] == reg.get_version(v1).bundle_digest

    # registering the good bundle again restores its copy in the store; promotion then goes through
    shutil.rmtree(stored)
    good = ws.register(ws.bundles["good_b"], reason="fixed upload")
    with ws.registry() as reg:
        reg.promote(good, "production", actor="tests", reason="fixed model")
    wait_until(lambda: _models(url)["stable"]["version"] == good, what="the fixed model")
    r = httpx.post(url + "/v1/predict", json={"texts": TEXTS})
    assert {p["version"] for p in r.json()["predictions"]} == {good}


def test_canary_split_is_sticky_by_key_and_scored_by_stable(served):
    ws, server, v1 = served
    url = server.url
    v2 = ws.register(ws.bundles["good_b"], reason="canary")
    with ws.registry() as reg:
        reg.promote(v2, "canary", actor="tests", reason="half the traffic", weight=0.5)
    wait_until(lambda: (_models(url)["canary"] or {}).get("version") == v2, what="the canary to load")
    assert _models(url)["canary_weight"] == 0.5

    def routes():
        with httpx.Client() as client:
            return {f"user-{i}": client.post(url + "/v1/predict", json={"texts": [TEXTS[i % 5]], "key": f"user-{i}"})
                    .json()["predictions"][0]["route"] for i in range(120)}

    first, second = routes(), routes()
    assert first == second  # sticky: a key keeps its route at a given weight
    share = sum(r == "canary" for r in first.values()) / len(first)
    assert 0.3 < share < 0.7, share
    assert _metric(url, "distill_canary_weight") == 0.5
    assert _metric(url, "distill_canary_compared_total") == 2 * sum(r == "canary" for r in first.values())
    assert 0.0 < _metric(url, "distill_canary_agreement_ratio") <= 1.0
    assert _metric(url, "distill_model_info", alias="canary", version=v2) == 1
    assert _metric(url, "distill_model_info", alias="production", version=v1) == 1

    # every metric of the contract's table (what infra/ alerts and dashboards query) has samples here
    import re
    from pathlib import Path

    from prometheus_client.parser import text_string_to_metric_families

    contract = (Path(__file__).resolve().parents[2] / "docs" / "contracts.md").read_text()
    names = re.findall(r"^\s*\| `(distill_\w+)` \|", contract, re.M)
    sampled = {s.name for fam in text_string_to_metric_families(httpx.get(url + "/metrics").text) for s in fam.samples}
    missing = [n for n in names if not ({n, n + "_count", n + "_bucket"} & sampled)]
    assert len(names) >= 9 and not missing, missing

    # weight 0 via the registry: every key back on stable, without a restart
    with ws.registry() as reg:
        reg.set_alias("canary", v2, actor="tests", reason="pause", weight=0.0)
    wait_until(lambda: _models(url)["canary_weight"] == 0.0, what="weight 0")
    assert set(routes().values()) == {"stable"}


def test_log_text_off_keeps_only_the_hash(tmp_path, bundles, monkeypatch):
    from pipeline import predlog
    from pipeline.keys import text_key
    from tests.serve.conftest import Workspace

    ws = Workspace(tmp_path, bundles, serve={"log_text": False})
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    v = ws.register(bundles["good_a"])
    with ws.registry() as reg:
        reg.promote(v, "production", actor="tests", reason="baseline")
    server = ws.server()
    try:
        server.wait_ready()
        assert httpx.post(server.url + "/v1/predict", json={"texts": TEXTS}).status_code == 200
        engine, tbl = ws.predlog()
        wait_until(lambda: len(predlog.read_window(engine, tbl)) == len(TEXTS), what="log rows")
        rows = predlog.read_window(engine, tbl)
        assert rows["text"].isna().all()
        assert list(rows["text_hash"]) == [text_key(t) for t in TEXTS]
    finally:
        server.stop()
