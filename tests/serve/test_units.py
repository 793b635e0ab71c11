"""Units of the server: routing, input limits, the log writer's bounds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipeline.keys import text_key
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


def _record(i, n=1):
    return LogRecord(request_id=f"r{i}", ts=time.time(), texts=[f"text {i}"] * n, version="v1", route="stable",
                     labels=["a"] * n, probs=np.full((n, 2), 0.5, dtype=np.float32), stable_labels=None,
                     latency_ms=1.0)


def test_log_writer_drops_and_counts_when_full_and_never_blocks(tmp_path):
    from pipeline import predlog

    dropped, written = [], []
    w = PredictionLogWriter(f"sqlite:///{tmp_path}/p.db", log_text=False, queue_size=5, batch_size=100,
                            flush_s=0.05, on_written=written.append, on_dropped=dropped.append)
    # not started yet: nothing drains the queue
    t0 = time.perf_counter()
    results = [w.submit(_record(i, n=2)) for i in range(8)]
    assert time.perf_counter() - t0 < 0.5  # put_nowait: a full queue never waits
    assert results == [True] * 5 + [False] * 3 and sum(dropped) == 6
    w.start()  # the five queued records are written; the three refused ones are counted, not lost silently
    w.stop()
    rows = predlog.read_window(*predlog.connect(w.url))
    assert len(rows) == 10 and sum(written) == 10
    assert rows["text"].isna().all() and (rows["text_hash"] == text_key("text 0")).sum() == 2



def test_log_writer_replaces_a_writer_process_that_died(tmp_path):
    """Rows are built and inserted in a child process; when it dies, the next batch starts another and is
    written; a batch that cannot be written is counted as dropped, never lost silently."""
    import os
    import signal

    from pipeline import predlog

    dropped, written = [], []
    w = PredictionLogWriter(f"sqlite:///{tmp_path}/p.db", log_text=True, queue_size=100, batch_size=100,
                            flush_s=0.05, on_written=written.append, on_dropped=dropped.append)
    w.start()
    try:
        first = w.process_pid
        assert first is not None and first != os.getpid()
        w.submit(_record(0))
        _until(lambda: sum(written) == 1)
        os.kill(first, signal.SIGKILL)
        _until(lambda: _dead(first))  # a batch shipped in the instant before it dies is dropped, and counted
        w.submit(_record(1, n=3))
        _until(lambda: sum(written) == 4)
        assert w.process_pid not in (None, first)
    finally:
        w.stop()
    assert w.process_pid is None  # stopped: the child is gone
    rows = predlog.read_window(*predlog.connect(w.url))
    assert sorted(rows["seq"]) == [1, 2, 3, 4] and set(rows["text"]) == {"text 0", "text 1"} and not dropped

    broken = PredictionLogWriter(f"sqlite:///{tmp_path}/q.db", log_text=True, queue_size=100, batch_size=100,
                                 flush_s=0.05, on_written=written.append, on_dropped=dropped.append)
    broken.start()
    try:  # the writer dies and its database is gone: the next one cannot start, the batch is counted dropped
        os.kill(broken.process_pid, signal.SIGKILL)
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"q.db{suffix}").unlink(missing_ok=True)
        (tmp_path / "q.db").mkdir()
        assert broken.submit(_record(5, n=2))
        _until(lambda: sum(dropped) == 2)
        assert sum(written) == 4
        assert _zombie_children() == []  # every failed writer was reaped
    finally:
        broken.stop()


def _dead(pid: int) -> bool:
    """The process is gone or a zombie (killed, not yet reaped)."""
    from pathlib import Path

    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _zombie_children() -> list[int]:
    import os
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            out.append(int(stat.parent.name))
    return out


def _until(ok, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_model_swaps_freeze_the_live_heap_and_release_the_replaced_model(tmp_path, bundles):
    """A load freezes what is alive (so full collections skip the models); a swap collects the model it
    replaced instead of keeping it frozen."""
    import gc
    import weakref

    from pipeline.config import parse_params
    from pipeline.registry import open_registry
    from pipeline.serve.models import ModelSlots
    from tests.helpers.serving import GATE_PASSED

    params = parse_params({"ingest": {}, "registry": {"url": f"sqlite:///{tmp_path}/registry.db",
                                                      "artifacts_dir": str(tmp_path / "artifacts")}})
    slots = ModelSlots(threads=1, smoke_text="hello")
    gc.unfreeze()
    try:
        with open_registry(params.registry) as reg:
            first = reg.register(bundles["good_a"], GATE_PASSED, {}, params, actor="tests", reason="a").id
            second = reg.register(bundles["good_b"], GATE_PASSED, {}, params, actor="tests", reason="b").id
            reg.promote(first, "production", actor="tests", reason="first")
            slots.sync(reg)
            assert gc.get_freeze_count() > 0
            bundle = slots.state.stable.bundle
            bundle.cycle = [bundle]  # a reference cycle: only the cycle collector can free this model
            old = weakref.ref(bundle)
            del bundle
            reg.promote(second, "production", actor="tests", reason="second")
            slots.sync(reg)
            assert slots.state.stable.version == second
            assert old() is None, "the replaced model is still alive"
    finally:
        gc.unfreeze()
