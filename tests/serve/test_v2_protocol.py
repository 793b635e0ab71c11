"""The Open Inference Protocol (KServe V2) beside /v1, called with a plain HTTP client the way KServe and
Triton clients call it, and the conventional HTTP metrics that count both."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.helpers.serving import metric

pytestmark = pytest.mark.e2e

TEXTS = ["I still have not received my new card", "how do I top up with apple pay?", "my transfer failed, why?"]


def _infer(url: str, body: dict, name: str = "distill") -> httpx.Response:
    return httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=10)


def _request(texts: list[str], **extra) -> dict:
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}], **extra}


def test_v2_health_metadata_and_infer_answer_what_v1_answers(workspace):
    server = workspace.server()
    try:
        server.wait_ready(need_model=False)
        url = server.url
        # before a production model exists: live, but neither the server nor the model is ready
        assert httpx.get(url + "/v2/health/live").status_code == 200
        assert httpx.get(url + "/v2/health/ready").status_code == 400
        assert httpx.get(url + "/v2/models/distill/ready").status_code == 400
        assert _infer(url, _request(TEXTS)).status_code == 503
    finally:
        server.stop()

    server = workspace.serve_production()
    try:
        url = server.url
        assert httpx.get(url + "/v2").json()["name"] == "distill"
        assert httpx.get(url + "/v2/health/ready").json() == {"ready": True}
        assert httpx.get(url + "/v2/models/distill/ready").json() == {"name": "distill", "ready": True}
        meta = httpx.get(url + "/v2/models/distill").json()
        labels = meta["parameters"]["labels"]
        assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"label": [-1], "probs": [-1, len(labels)]}
        version = meta["versions"][0]

        r = _infer(url, _request(TEXTS, id="req-7", parameters={"key": "alice"}))
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model_name"] == "distill" and out["model_version"] == version and out["id"] == "req-7"
        tensors = {o["name"]: o for o in out["outputs"]}
        assert tensors["label"]["datatype"] == "BYTES" and tensors["label"]["shape"] == [3]
        assert tensors["probs"]["datatype"] == "FP32" and tensors["probs"]["shape"] == [3, len(labels)]
        probs = np.asarray(tensors["probs"]["data"]).reshape(3, len(labels))
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
        assert tensors["label"]["data"] == [labels[i] for i in probs.argmax(axis=1)]
        assert out["parameters"]["labels"] == labels and out["parameters"]["route"] == "stable"

        # the same texts through /v1 get the same labels and probabilities
        v1 = httpx.post(url + "/v1/predict", json={"texts": TEXTS, "key": "alice"}).json()["predictions"]
        assert [p["label"] for p in v1] == tensors["label"]["data"]
        assert np.allclose([[p["probs"][name] for name in labels] for p in v1], probs, atol=1e-6)

        # one output asked for; shape [N, 1] accepted
        only = _infer(url, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": TEXTS[:1]}],
                            "outputs": [{"name": "label"}]}).json()
        assert [o["name"] for o in only["outputs"]] == ["label"]

        # refusals: the V2 error shape, with the status codes of /v1
        bad = {
            "unknown model": (_infer(url, _request(TEXTS), name="other"), 404),
            "wrong datatype": (_infer(url, {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1],
                                                        "data": [1.0]}]}), 422),
            "wrong input name": (_infer(url, {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1],
                                                          "data": ["a"]}]}), 422),
            "shape mismatch": (_infer(url, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [5],
                                                        "data": TEXTS}]}), 422),
            "unknown output": (_infer(url, _request(TEXTS, outputs=[{"name": "logits"}])), 422),
            "blank text": (_infer(url, _request(["  "])), 422),
            "text/plain": (httpx.post(f"{url}/v2/models/distill/infer", content=b"{}",
                                      headers={"content-type": "text/plain"}), 415),
        }
        for why, (resp, status) in bad.items():
            assert resp.status_code == status, (why, resp.status_code, resp.text)
            assert isinstance(resp.json()["error"], str), why

        # both inference paths land in the prediction log: 3 + 1 texts by V2, 3 by /v1
        from pipeline import predlog
        from tests.helpers.serving import wait_until

        engine, tbl = workspace.predlog()
        wait_until(lambda: len(predlog.read_window(engine, tbl)) >= 7, what="prediction log rows")
        rows = predlog.read_window(engine, tbl)
        assert len(rows) == 7 and rows["text"].tolist().count(TEXTS[0]) == 3

        # conventional HTTP metrics: route templates as handlers, every request counted with its code
        assert metric(url, "http_requests_total", method="POST", handler="/v2/models/{model_name}/infer",
                      code="200") == 2
        assert metric(url, "http_requests_total", method="POST", handler="/v2/models/{model_name}/infer",
                      code="422") == 5
        assert metric(url, "http_requests_total", method="POST", handler="/v1/predict", code="200") == 1
        assert metric(url, "http_requests_total", method="GET", handler="/v2/models/{model_name}", code="200") == 1
        assert metric(url, "http_request_duration_seconds_count", method="POST",
                      handler="/v2/models/{model_name}/infer") == 9  # 2 answered, 5 refused, 404, 415
        httpx.get(url + "/no/such/path")
        assert metric(url, "http_requests_total", method="GET", handler="unmatched", code="404") == 1
        text = httpx.get(url + "/metrics").text
        assert "distill_build_info{" in text and "_created" not in text
    finally:
        server.stop()
