"""Units of the server and the canary: routing, input limits, step judging, the log writer's bounds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipeline.keys import text_key
from pipeline.release.canary import judge
from pipeline.config import parse_params
from pipeline.serve.limits import RequestRejected, check_content_length, parse_predict
from pipeline.serve.logwriter import LogRecord, PredictionLogWriter
from pipeline.serve.traffic import bucket, choose_route, request_key

pytestmark = pytest.mark.unit


def test_routing_is_sticky_and_grows_monotonically():
    keys = [f"user-{i}" for i in range(4000)]
    for w in (0.05, 0.25, 0.5):
        share = sum(choose_route(k, w) == "canary" for k in keys) / len(keys)
        assert abs(share - w) < 0.03, (w, share)
        assert [choose_route(k, w) for k in keys] == [choose_route(k, w) for k in keys]
    canary_at_25 = {k for k in keys if choose_route(k, 0.25) == "canary"}
    canary_at_50 = {k for k in keys if choose_route(k, 0.5) == "canary"}
    assert canary_at_25 < canary_at_50  # raising the weight never moves a key back to stable
    assert choose_route("x", 0.0) == "stable" and choose_route("x", 1.0) == "canary"
    assert 0.0 <= bucket("x") < 1.0
    assert request_key("alice", ["a"]) != request_key(None, ["alice"]) and request_key(None, ["a"]) == request_key(None, ["a"])


@pytest.mark.parametrize("body,status,needle", [
    (b"not json", 400, "not valid JSON"),
    (b'{"texts": ["a", "b", "c"]}', 413, "serve.max_batch = 2"),
    (b'{"texts": ["abcdefghijk"]}', 413, "serve.max_text_chars = 10"),
    (b'{"texts": [null]}', 422, "must be a string"),
    (b'{"texts": ["ok"], "key": 5}', 422, "'key' must be a string"),
])
def test_parse_predict_names_the_limit(body, status, needle):
    with pytest.raises(RequestRejected) as info:
        parse_predict(body, max_batch=2, max_chars=10)
    assert info.value.status == status and needle in info.value.message


def test_parse_predict_accepts_a_good_body_and_content_length_checks():
    assert parse_predict(b'{"texts": ["hi"], "key": "k"}', 2, 10) == (["hi"], "k")
    check_content_length("100", 100)
    with pytest.raises(RequestRejected) as info:
        check_content_length("101", 100)
    assert info.value.status == 413 and info.value.body()["limit"] == "serve.max_body_bytes"
    with pytest.raises(RequestRejected):
        check_content_length("ten", 100)


def _cfg(**kw):
    return parse_params({"ingest": {}, "canary": {"min_requests": 10, **kw}}).canary


GOOD = {"canary_rows": 50, "error_rate": 0.0, "p95_ms": 3.0, "p99_ms": 6.0, "stable_agreement": 0.95,
        "teacher_agreement": 0.9}


def test_judge_passes_fails_and_holds():
    assert judge(0.25, GOOD, _cfg()).decision == "pass"
    v = judge(0.25, {**GOOD, "stable_agreement": 0.5, "p99_ms": 500.0}, _cfg())
    assert v.decision == "fail" and len(v.problems) == 2
    assert any("canary.max_p99_ms" in p for p in v.problems)
    assert judge(0.25, {**GOOD, "error_rate": 0.05}, _cfg()).decision == "fail"
    assert judge(0.25, {**GOOD, "teacher_agreement": None}, _cfg()).decision == "fail"  # unmeasured is no pass
    assert judge(0.25, {**GOOD, "teacher_agreement": None}, _cfg(teacher_sample=0)).decision == "pass"
    held = judge(0.25, {**GOOD, "canary_rows": 3}, _cfg())
    assert held.decision == "hold" and "canary.min_requests" in held.problems[0]


def test_judge_rolls_back_a_step_in_which_every_request_failed():
    """No answered canary request at all, only errors: a certain failure, not a hold for lack of traffic."""
    v = judge(0.05, {"canary_rows": 0, "canary_requests": 0, "canary_errors": 40, "error_rate": 1.0}, _cfg())
    assert v.decision == "fail" and "40 of 40 canary requests failed" in v.problems[0]


def test_judge_rolls_back_on_errors_before_the_step_has_its_traffic():
    """11 answered and 2,408 failed (the case that once held for ten minutes): errors decide first."""
    v = judge(0.05, {"canary_rows": 11, "canary_requests": 11, "canary_errors": 2408, "error_rate": 0.99545}, _cfg())
    assert v.decision == "fail" and "canary.max_error_rate" in v.problems[0]


def test_judge_holds_when_a_few_errors_prove_nothing_yet():
    """1 error in 30 attempts is above 1 % but, at 99 % confidence, not yet proof: too little traffic, hold."""
    v = judge(0.05, {"canary_rows": 29, "canary_requests": 29, "canary_errors": 1, "error_rate": 0.03333},
              _cfg(min_requests=40))
    assert v.decision == "hold" and "canary.min_requests" in v.problems[0]


def test_canary_steps_are_validated():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="canary.steps"):
        parse_params({"ingest": {}, "canary": {"steps": [0.5, 0.25]}})


def _record(i, n=1):
    return LogRecord(request_id=f"r{i}", ts=time.time(), texts=[f"text {i}"] * n, version="v1", route="stable",
                     labels=["a"] * n, probs=np.full((n, 2), 0.5, dtype=np.float32), stable_labels=None,
                     latency_ms=1.0)


def test_log_writer_drops_and_counts_when_full_and_never_blocks(tmp_path):
    from pipeline import predlog

    dropped, written = [], []
    w = PredictionLogWriter(f"sqlite:///{tmp_path}/p.db", log_text=False, queue_size=5, batch_size=100,
                            flush_s=0.05, on_written=written.append, on_dropped=dropped.append)
    w.engine, w.table = predlog.connect(w.url)  # not started: nothing drains the queue
    t0 = time.perf_counter()
    results = [w.submit(_record(i, n=2)) for i in range(8)]
    assert time.perf_counter() - t0 < 0.5  # put_nowait: a full queue never waits
    assert results == [True] * 5 + [False] * 3 and sum(dropped) == 6
    w._thread = None
    w.start()
    w.stop()
    rows = predlog.read_window(*predlog.connect(w.url))
    assert len(rows) == 10 and sum(written) == 10
    assert rows["text"].isna().all() and (rows["text_hash"] == text_key("text 0")).sum() == 2


def test_finish_records_promote_rollback_and_hold_in_the_registry(tmp_path):
    from pipeline.release.canary import ACTOR, Verdict, finish
    from pipeline.registry import Registry

    reg = Registry(f"sqlite:///{tmp_path}/r.db", tmp_path / "artifacts")
    ids = []
    for i in range(4):  # finish() never opens the bundle: any folder with a bundle.json registers
        folder = tmp_path / f"b{i}"
        folder.mkdir()
        (folder / "bundle.json").write_text(f'{{"n": {i}}}')
        ids.append(reg.register(folder, {"passed": True}, {}, None, actor="t", reason="t", repo_dir=tmp_path).id)
    reg.promote(ids[0], "production", actor="t", reason="base")
    ok = Verdict(1.0, "pass", dict(GOOD), [])

    reg.promote(ids[1], "canary", actor=ACTOR, reason="start", weight=0.05)
    assert finish(reg, ids[1], [Verdict(0.05, "pass", dict(GOOD), []), ok]) == "promote"
    assert reg.get_alias("production").version.id == ids[1] and reg.get_alias("canary").version is None
    entry = reg.history(alias="production")[-1]
    assert entry.actor == ACTOR and entry.action == "promote" and len(entry.numbers["steps"]) == 2

    reg.promote(ids[2], "canary", actor=ACTOR, reason="start", weight=0.05)
    bad = Verdict(0.05, "fail", {**GOOD, "stable_agreement": 0.1}, ["stable_agreement 0.1 below ..."])
    assert finish(reg, ids[2], [bad]) == "rollback"
    assert reg.get_alias("production").version.id == ids[1] and reg.get_alias("canary").version is None
    entry = reg.history(alias="canary")[-1]
    assert entry.action == "clear" and entry.previous == ids[2] and entry.numbers["problems"]

    reg.promote(ids[3], "canary", actor=ACTOR, reason="start", weight=0.25)
    starving = Verdict(0.25, "hold", {"canary_rows": 3}, ["only 3 canary predictions"])
    assert finish(reg, ids[3], [starving]) == "hold"
    state = reg.get_alias("canary")
    assert state.version.id == ids[3] and state.weight == 0.25
    assert reg.history(alias="canary")[-1].reason.startswith("hold")
    reg.close()
