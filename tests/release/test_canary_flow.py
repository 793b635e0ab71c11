"""The canary flow (real Prefect) against a real server under real HTTP load: promote, roll back, first model."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.serving import LoadGenerator, failing_copy, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _texts():
    from tests.student_data import banking77_frames

    ingested, _, _ = banking77_frames(per_class_train=3, test_rows=400, seed=11)
    return ingested.loc[ingested.split == "test", "text"].tolist()


@pytest.fixture
def production(workspace, prefect_harness):
    v1 = workspace.register(workspace.bundles["good_a"], reason="first model")
    server = workspace.server()
    try:
        from flows.canary import canary

        # no production yet: the first candidate goes straight to production after a smoke check
        result = canary(params_path=str(workspace.params_path))
        assert canary(params_path=str(workspace.params_path))["decision"] == "none"  # nothing left to roll out
        assert {k: result[k] for k in ("decision", "version", "direct", "steps")} == \
            {"decision": "promote", "version": v1, "direct": True, "steps": []}
        server.wait_ready()
        yield workspace, server, v1
    finally:
        server.stop()


def _run_canary_under_load(ws, server, candidate):
    from flows.canary import canary

    with LoadGenerator(server.url, _texts(), workers=3) as load:
        result = canary(params_path=str(ws.params_path))
    assert load.transport_errors == 0 and set(load.statuses) == {200}, load.statuses
    return result, load


def test_good_candidate_is_promoted_without_restart(prefect_harness, production):
    ws, server, v1 = production
    v2 = ws.register(ws.bundles["good_b"], reason="retrained")
    pid = server.proc.pid
    result, load = _run_canary_under_load(ws, server, v2)
    assert result["decision"] == "promote", result
    assert [s["weight"] for s in result["steps"]] == [0.2, 0.5, 1.0]
    assert all(s["decision"] == "pass" for s in result["steps"])
    assert load.routes["canary"] > 0 and load.versions[v2] > 0

    with ws.registry() as reg:
        assert reg.get_alias("production").version.id == v2
        assert reg.get_alias("canary").version is None and reg.get_alias("candidate").version is None
        promo = [h for h in reg.history(alias="production") if h.action == "promote" and h.version == v2][-1]
    assert promo.actor == "canary-flow" and promo.previous == v1
    for key in ("stable_agreement", "teacher_agreement", "p95_ms", "p99_ms", "error_rate", "canary_rows"):
        assert promo.numbers[key] is not None, key
    assert promo.numbers["teacher_agreement"] >= 0.9 and promo.numbers["error_rate"] == 0.0
    print("PROMOTION", promo.to_dict())

    # the running server (same process) switched to v2 and serves it on the stable route
    wait_until(lambda: httpx.get(server.url + "/v1/models").json()["stable"]["version"] == v2, what="v2 as stable")
    models = httpx.get(server.url + "/v1/models").json()
    assert models["canary"] is None and models["canary_weight"] == 0.0 and server.proc.pid == pid
    r = httpx.post(server.url + "/v1/predict", json={"texts": ["where is my card?"], "key": "k"})
    assert r.json()["predictions"][0] == {**r.json()["predictions"][0], "version": v2, "route": "stable"}

    # the prediction log holds canary rows with the stable model's label beside them
    from pipeline import predlog

    engine, tbl = ws.predlog()
    rows = predlog.read_window(engine, tbl)
    canary_rows = rows[rows.route == "canary"]
    assert len(canary_rows) >= 3 * 40 and set(canary_rows.model_version) == {v2}
    assert canary_rows.stable_label.notna().all()
    assert rows.loc[rows.route == "stable", "stable_label"].isna().all()
    agreement = (canary_rows.label == canary_rows.stable_label).mean()
    assert agreement > 0.3
    text = httpx.get(server.url + "/metrics").text
    assert f'distill_predictions_total{{route="canary",version="{v2}"}}' in text


def test_bad_candidate_is_rolled_back_and_production_untouched(prefect_harness, production):
    ws, server, v1 = production
    v_bad = ws.register(ws.bundles["bad"], reason="retrained on broken labels")
    result, load = _run_canary_under_load(ws, server, v_bad)
    assert result["decision"] == "rollback", result
    first = result["steps"][0]
    assert len(result["steps"]) == 1 and first["weight"] == 0.2 and first["decision"] == "fail"
    assert first["numbers"]["stable_agreement"] < 0.2 and first["numbers"]["teacher_agreement"] < 0.2
    assert any("stable_agreement" in p for p in first["problems"])

    with ws.registry() as reg:
        assert reg.get_alias("production").version.id == v1
        assert reg.get_alias("canary").version is None
        prod_history = reg.history(alias="production")
        rollback = [h for h in reg.history(alias="canary") if h.reason.startswith("rollback")][-1]
    assert [h.version for h in prod_history] == [v1]  # production never moved
    assert rollback.actor == "canary-flow" and rollback.action == "clear" and rollback.previous == v_bad
    assert rollback.numbers["stable_agreement"] < 0.2 and rollback.numbers["problems"]
    print("ROLLBACK", rollback.to_dict())

    wait_until(lambda: httpx.get(server.url + "/v1/models").json()["canary"] is None, what="canary gone")
    with LoadGenerator(server.url, _texts()[:50], workers=2) as after:
        wait_until(lambda: sum(after.statuses.values()) >= 50, what="traffic after rollback")
    assert set(after.versions) == {v1} and set(after.routes) == {"stable"}


def test_candidate_whose_model_errors_is_rolled_back_within_one_step(prefect_harness, production, tmp_path):
    """A candidate that passes both smoke checks but raises on about half the traffic: rolled back at the
    first step as soon as its errors prove it broken, long before canary.step_timeout_s."""
    from pipeline.release.canary import SMOKE_TEXT

    ws, server, v1 = production
    broken, limit = failing_copy(ws.bundles["good_b"], tmp_path / "broken", [SMOKE_TEXT, ws.params.serve.smoke_text])
    v_err = ws.register(broken, reason="graph edited by hand")
    started = time.monotonic()
    result, load = _run_canary_under_load(ws, server, v_err)
    elapsed = time.monotonic() - started
    assert result["decision"] == "rollback", result
    assert len(result["steps"]) == 1 and result["steps"][0]["decision"] == "fail"
    numbers = result["steps"][0]["numbers"]
    assert numbers["canary_errors"] > 0, numbers
    attempts = numbers["canary_errors"] + numbers["canary_requests"]
    assert numbers["error_rate"] == pytest.approx(numbers["canary_errors"] / attempts, abs=1e-4)
    assert numbers["error_rate"] > ws.params.canary.max_error_rate
    assert elapsed < ws.params.canary.step_timeout_s / 2, elapsed
    print("ERRORING CANARY", round(elapsed, 1), "s", numbers)

    with ws.registry() as reg:
        assert reg.get_alias("production").version.id == v1 and reg.get_alias("canary").version is None
        rollback = [h for h in reg.history(alias="canary") if h.reason.startswith("rollback")][-1]
    assert rollback.previous == v_err and rollback.numbers["canary_errors"] == numbers["canary_errors"]
    assert "canary.max_error_rate" in rollback.reason
