"""``serve.workers: 2``: two server processes on one port behind the supervisor, over a real registry.

Counts on /metrics and in the prediction log must equal the requests sent, whichever worker answered;
the canary split and registry following must hold in every worker; a killed worker is replaced.
"""

from __future__ import annotations

import os
import re
import signal
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.serving import wait_until

pytestmark = pytest.mark.e2e

TEXTS = ["I still have not received my new card", "how do I top up with apple pay?",
         "my transfer failed, why?", "what is the exchange rate for euros", "I want to close my account"]


def _samples(url: str) -> dict[tuple, float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _sum(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, lbl), v in samples.items() if n == name and labels.items() <= dict(lbl).items())


def _worker_pids(log_text: str) -> list[int]:
    found = re.findall(r"workers \(pids ([\d, ]+)\)", log_text)
    return [int(p) for p in found[-1].split(", ")] if found else []


@pytest.fixture
def two_workers(tmp_path, bundles, monkeypatch):
    from tests.serve.conftest import make_workspace

    ws = make_workspace(tmp_path, bundles, monkeypatch, serve={"workers": 2})
    with ws.registry() as reg:
        v1 = ws.register(ws.bundles["good_a"])
        reg.promote(v1, "production", actor="tests", reason="baseline")
    server = ws.server()
    try:
        server.wait_ready(timeout=120)
        yield ws, server, v1
    finally:
        server.stop()


def test_counts_routing_and_following_hold_across_workers(two_workers):
    ws, server, v1 = two_workers
    url = server.url
    wait_until(lambda: len(_worker_pids(server.log.read_text())) == 2, what="the supervisor to start 2 workers")

    # a fresh connection per request: SO_REUSEPORT spreads connections, so both workers answer
    sent_texts = 0
    for i in range(60):
        texts = [TEXTS[i % 5]] * (1 + i % 3)
        r = httpx.post(url + "/v1/predict", json={"texts": texts, "key": f"user-{i}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert [p["version"] for p in r.json()["predictions"]] == [v1] * len(texts)
        sent_texts += len(texts)

    samples = _samples(url)
    assert _sum(samples, "http_requests_total", handler="/v1/predict", code="200") == 60
    assert _sum(samples, "distill_predictions_total", version=v1, route="stable") == sent_texts
    assert _sum(samples, "distill_route_requests_total", route="stable") == 60
    assert _sum(samples, "http_request_duration_seconds_count", handler="/v1/predict") == 60
    assert _sum(samples, "distill_model_info", alias="production", version=v1) == 1
    assert _sum(samples, "distill_build_info") == 1  # one series, not one per worker

    # the canary: every worker loads it, and a key gets the same route whichever worker answers
    v2 = ws.register(ws.bundles["good_b"], reason="canary")
    with ws.registry() as reg:
        reg.promote(v2, "canary", actor="tests", reason="half the traffic", weight=0.5)

    def models_everywhere():  # ten fresh connections: both workers must say so
        return all((httpx.get(url + "/v1/models", timeout=5).json()["canary"] or {}).get("version") == v2
                   for _ in range(10))

    wait_until(models_everywhere, what="every worker to load the canary")

    def routes():
        return {f"user-{i}": httpx.post(url + "/v1/predict", json={"texts": [TEXTS[i % 5]], "key": f"user-{i}"},
                                        timeout=10).json()["predictions"][0]["route"] for i in range(80)}

    first, second = routes(), routes()
    assert first == second
    canary_share = sum(r == "canary" for r in first.values()) / len(first)
    assert 0.25 < canary_share < 0.75, canary_share
    samples = _samples(url)
    compared = _sum(samples, "distill_canary_compared_total")
    agreed = _sum(samples, "distill_canary_agreed_total")
    assert compared == 2 * sum(r == "canary" for r in first.values())
    assert _sum(samples, "distill_canary_agreement_ratio") == pytest.approx(agreed / compared)
    assert _sum(samples, "distill_canary_weight") == 0.5

    server.stop()  # SIGTERM: each worker flushes its prediction-log queue before it exits
    engine, table = ws.predlog()
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.run_id, table.c.seq)).all()
    engine.dispose()
    assert len(rows) == sent_texts + 2 * len(first)
    by_run: dict[str, list[int]] = {}
    for run_id, seq in rows:
        by_run.setdefault(run_id, []).append(seq)
    assert len(by_run) == 2  # both workers answered and logged
    for seqs in by_run.values():  # each worker's rows numbered 1..n with no gap
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


def test_a_killed_worker_is_replaced(two_workers):
    ws, server, v1 = two_workers
    url = server.url
    wait_until(lambda: len(_worker_pids(server.log.read_text())) == 2, what="the supervisor to start 2 workers")
    victim = _worker_pids(server.log.read_text())[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: f"pid {victim}) exited" in server.log.read_text(), what="the supervisor to notice")
    deadline = time.monotonic() + 60
    answered = 0
    while answered < 20 and time.monotonic() < deadline:  # fresh connections land on both workers again
        try:
            answered += httpx.post(url + "/v1/predict", json={"texts": TEXTS[:1]}, timeout=5).status_code == 200
        except httpx.HTTPError:
            time.sleep(0.2)
    assert answered == 20
    assert server.proc.poll() is None  # the supervisor lives on
