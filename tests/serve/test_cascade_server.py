"""The serving cascade end to end: a real server process, a real registry, real teachers.

- an OpenAI-compatible endpoint the test starts on 127.0.0.1 (the llm teacher) is taken down in the
  middle of a load run: no request fails, the deferred answers are marked, the breaker opens, and once
  the endpoint is back it closes again;
- the embedding-head teacher (MiniLM + a fitted head) answers the texts below the cut the bundle
  carries, and the prediction log and the monitor's feedback see who answered.
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from tests.fake_openai import FakeOpenAI, keyword_model
from tests.helpers.serving import LoadGenerator, metric as _metric, wait_until
from tests.serve.conftest import Workspace

pytestmark = pytest.mark.e2e

TEXTS = ["I still have not received my new card", "how do I top up with apple pay?",
         "my transfer failed, why?", "what is the exchange rate for euros", "I want to close my account",
         "why was I charged a fee for my transfer", "my card payment was declined at the shop",
         "can I get a refund for this purchase", "where can I find my PIN", "my app is not working"]


def _serve(ws: Workspace, bundle) -> tuple[object, str]:
    with ws.registry() as reg:
        version = ws.register(bundle)
        reg.promote(version, "production", actor="tests", reason="baseline")
    server = ws.server()
    server.wait_ready()
    return server, version


def test_llm_teacher_outage_mid_load_gives_no_errors_marks_answers_and_the_breaker_recovers(tmp_path, bundles,
                                                                                         monkeypatch):
    from pipeline.bundle import load_bundle
    from pipeline.teachers.llm_prompt import label_codes

    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    labels = load_bundle(bundles["good_a"]).labels
    answer = labels[3]
    fake = FakeOpenAI(keyword_model({}, default=label_codes(len(labels))[3])).start()
    port = int(fake.base_url.rsplit(":", 1)[1].split("/")[0])
    monkeypatch.setenv("DISTILL_TEST_LLM_KEY", "local-test-key")
    cascade = {"enabled": True, "threshold": 0.999, "timeout_s": 1.0, "max_concurrency": 4,
               "breaker_failures": 3, "breaker_reset_s": 1.0, "texts_per_minute": 100_000,
               "cache_dir": str(tmp_path / "cascade-cache"),
               "teacher": {"kind": "llm", "llm": {"base_url": fake.base_url, "api_key_env": "DISTILL_TEST_LLM_KEY",
                                                  "max_retries": 0, "timeout_s": 0.5,
                                                  "labels": {name: name for name in labels}}}}
    ws = Workspace(tmp_path, bundles, serve={"cascade": cascade})
    server, version = _serve(ws, bundles["good_a"])
    url = server.url
    try:
        first = httpx.post(url + "/v1/predict", json={"texts": TEXTS[:2]}, timeout=10).json()["predictions"]
        assert [p["source"] for p in first] == ["teacher", "teacher"] and {p["label"] for p in first} == {answer}
        assert "fallback" not in first[0] and abs(sum(first[0]["probs"].values()) - 1) < 1e-3
        models = httpx.get(url + "/v1/models", timeout=5).json()
        assert models["cascade"]["enabled"] and models["cascade"]["threshold"] == {version: 0.999}

        fresh = [f"{t} (request {i})" for i in range(400) for t in TEXTS[:1]]  # never cached: each asks the teacher
        with LoadGenerator(url, fresh, workers=3) as load:
            wait_until(lambda: load.sources["teacher"] > 20, timeout=30, what="teacher answers under load")
            fake.stop()  # the teacher goes down in the middle of the run
            wait_until(lambda: _metric(url, "distill_cascade_breaker_state") == 1, timeout=20, what="breaker open")
            wait_until(lambda: load.fallbacks["breaker_open"] > 5, timeout=20, what="answers while the breaker is open")
            fake.start(port=port)  # back on the same address
            wait_until(lambda: _metric(url, "distill_cascade_breaker_state") == 0, timeout=20, what="breaker closed")
            after = load.sources["teacher"]
            wait_until(lambda: load.sources["teacher"] > after + 5, timeout=20, what="teacher answers again")
        assert load.statuses[200] == load.requests and load.transport_errors == 0  # serving never failed
        assert load.fallbacks["error"] + load.fallbacks["timeout"] >= 3  # the failures that opened the breaker
        assert _metric(url, "distill_cascade_deferrals_total", outcome="breaker_open") == load.fallbacks["breaker_open"]
        assert _metric(url, "http_requests_total", method="POST", handler="/v1/predict", code="500") == 0
    finally:
        server.stop()
        fake.stop()


def test_embedding_head_teacher_answers_below_the_bundles_cut_and_the_monitor_feeds_deferrals_back(tmp_path, bundles,
                                                                                                  monkeypatch):
    import pandas as pd

    from pipeline import predlog
    from pipeline.config.teacher import EmbeddingHeadConfig
    from pipeline.monitor import feedback
    from pipeline.monitor.window import read_window
    from pipeline.teachers.embedding_head import fit_head
    from tests.conftest import require_banking77

    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    train = pd.read_csv(require_banking77() / "train.csv").groupby("category").head(3)
    head = EmbeddingHeadConfig(max_length=32, batch_size=32)
    fit_head(head, train["text"].tolist(), train["category"].tolist(), tmp_path / "teacher", seed=0)
    # the bundle as registration ships it: the cut the evaluate stage fitted sits in bundle.json
    bundle = shutil.copytree(bundles["good_a"], tmp_path / "bundle-with-cut")
    manifest = json.loads((bundle / "bundle.json").read_text())
    from pipeline.bundle import load_bundle

    conf = load_bundle(bundles["good_a"]).predict_proba(TEXTS).max(axis=1)
    cut = float(sorted(conf)[len(TEXTS) // 2])  # half the texts fall below it
    manifest["cascade"] = {"threshold": cut, "model": "student_int8"}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    cascade = {"enabled": True, "teacher_dir": str(tmp_path / "teacher"), "timeout_s": 30.0,
               "cache_dir": str(tmp_path / "cascade-cache"),
               "teacher": {"kind": "embedding-head", "embedding_head": head.model_dump()}}
    ws = Workspace(tmp_path, bundles, serve={"cascade": cascade})
    server, version = _serve(ws, bundle)
    try:
        preds = httpx.post(server.url + "/v1/predict", json={"texts": TEXTS}, timeout=60).json()["predictions"]
        deferred = [i for i, c in enumerate(conf) if c < cut]
        assert [p["source"] for p in preds] == ["teacher" if i in deferred else "student" for i in range(len(TEXTS))]
        assert all("fallback" not in p for p in preds)
        assert _metric(server.url, "distill_cascade_deferrals_total", outcome="teacher") == len(deferred)
        engine, tbl = predlog.connect(ws.params.serve.prediction_log_url)
        wait_until(lambda: len(predlog.read_window(engine, tbl)) == len(TEXTS), what="prediction log rows")
        engine.dispose()
    finally:
        server.stop()
    rows, _ = read_window(ws.params.serve.prediction_log_url, None, time.time() + 1, 1000)
    assert rows["deferred"].sum() == len(deferred)
    # the monitor judges the student: its own answer replaces the teacher's where the teacher answered
    student = load_bundle(bundles["good_a"]).predict(TEXTS)
    assert rows.set_index("text").loc[TEXTS, "label"].tolist() == student
    # every deferred text goes to the feedback folder, even where the student happened to agree
    sample = rows.assign(teacher_label=rows["served_label"])
    part = feedback.disagreements(sample, 100)
    assert set(part["text"]) == {TEXTS[i] for i in deferred}
