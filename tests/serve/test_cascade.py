"""The serving cascade's parts: breaker, budget, and the teacher call with its limits (real threads, a real cache)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from pipeline.config.serve import CascadeConfig
from pipeline.serve.cascade import CLOSED, HALF_OPEN, OPEN, Breaker, Cascade, TokenBucket
from pipeline.serve.metrics import build_metrics

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class KeywordTeacher:
    """A teacher that answers "refund" for texts naming money, else "card"; its columns are in reverse order."""

    labels = ["refund", "card"]
    fingerprint = "keyword-teacher-v1"

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.delay, self.fail = delay, fail
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def predict_proba(self, texts):
        with self.lock:
            self.seen.extend(texts)
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("teacher endpoint refused the connection")
        return np.array([[0.9, 0.1] if "money" in t else [0.2, 0.8] for t in texts])


def make(tmp_path, teacher, **cfg):
    metrics = build_metrics(lambda: 0)
    return Cascade(CascadeConfig(enabled=True, **cfg), teacher, str(tmp_path / "cache"), metrics), metrics


def counted(metrics, name, **labels):
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_breaker_opens_after_consecutive_failures_then_lets_one_trial_through():
    clock = Clock()
    breaker = Breaker(failures=3, reset_s=10, clock=clock)
    breaker.failure(), breaker.failure()
    breaker.success()  # a success in between resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow() and breaker.state == HALF_OPEN
    assert not breaker.allow()  # one trial at a time
    breaker.failure()  # the trial failed: open again, for another pause
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow() and breaker.allow()


def test_budget_refills_continuously():
    clock = Clock()
    bucket = TokenBucket(per_minute=60, clock=clock)
    assert bucket.take(60) and not bucket.take(1)
    clock.now += 1.0  # one text a second
    assert bucket.take(1) and not bucket.take(1)
    clock.now += 3600
    assert not bucket.take(61) and bucket.take(60)  # never more than a minute's worth


def test_teacher_answers_in_the_students_label_order_and_the_cache_makes_a_repeat_free(tmp_path):
    teacher = KeywordTeacher()
    cascade, metrics = make(tmp_path, teacher)
    texts = ["where is my money", "my card is stuck"]
    first = asyncio.run(cascade.ask(texts, ["card", "refund"]))
    assert first.outcome == "teacher" and first.sent == 2
    np.testing.assert_allclose(first.probs, [[0.1, 0.9], [0.8, 0.2]], atol=1e-6)
    again = asyncio.run(cascade.ask(texts[::-1], ["card", "refund"]))
    assert again.outcome == "teacher" and again.sent == 0 and teacher.seen == texts
    np.testing.assert_allclose(again.probs, first.probs[::-1], atol=1e-6)
    assert counted(metrics, "distill_cascade_deferrals_total", outcome="teacher") == 4
    assert counted(metrics, "distill_cascade_teacher_texts_total") == 2
    with pytest.raises(ValueError, match="no label"):
        cascade._in_order(first.probs, ["card", "lost"])
    cascade.close()


def test_a_slow_or_failing_teacher_gives_the_students_answer_and_opens_the_breaker(tmp_path):
    slow, metrics = make(tmp_path, KeywordTeacher(delay=0.5), timeout_s=0.05, breaker_failures=2,
                         breaker_reset_s=0.3, max_concurrency=4)
    assert asyncio.run(slow.ask(["a"], ["refund", "card"])).outcome == "timeout"
    assert asyncio.run(slow.ask(["b"], ["refund", "card"])).outcome == "timeout"
    assert slow.breaker.state == OPEN
    assert asyncio.run(slow.ask(["c"], ["refund", "card"])).outcome == "breaker_open"
    assert counted(metrics, "distill_cascade_breaker_state") == 1
    slow.teacher.delay = 0.0  # the teacher is back; after the pause one trial closes the breaker
    time.sleep(0.35)
    assert asyncio.run(slow.ask(["d"], ["refund", "card"])).outcome == "teacher"
    assert slow.breaker.state == CLOSED and counted(metrics, "distill_cascade_breaker_state") == 0
    time.sleep(0.5)  # the timed-out calls finished in the background: their answers are cached, slots free
    assert slow.slots.acquire(blocking=False) and asyncio.run(slow.ask(["a"], ["refund", "card"])).sent == 0
    slow.slots.release()
    slow.close()

    failing, metrics = make(tmp_path / "f", KeywordTeacher(fail=True), breaker_failures=1)
    assert asyncio.run(failing.ask(["x"], ["refund", "card"])).outcome == "error"
    assert failing.breaker.state == OPEN and counted(metrics, "distill_cascade_deferrals_total", outcome="error") == 1
    failing.close()


def test_no_queueing_behind_a_busy_teacher_and_no_spending_past_the_budget(tmp_path):
    busy, _ = make(tmp_path, KeywordTeacher(delay=0.3), max_concurrency=1, timeout_s=2)

    async def two_at_once():
        return await asyncio.gather(busy.ask(["one"], ["refund", "card"]), busy.ask(["two"], ["refund", "card"]))

    outcomes = sorted(d.outcome for d in asyncio.run(two_at_once()))
    assert outcomes == ["busy", "teacher"]
    busy.close()

    teacher = KeywordTeacher()
    budget, metrics = make(tmp_path / "b", teacher, texts_per_minute=2)
    assert asyncio.run(budget.ask(["p", "q", "r"], ["refund", "card"])).outcome == "budget"
    assert teacher.seen == [] and budget.breaker.state == CLOSED  # over budget is not a teacher failure
    assert asyncio.run(budget.ask(["p", "q"], ["refund", "card"])).outcome == "teacher"
    assert counted(metrics, "distill_cascade_deferrals_total", outcome="budget") == 3
    budget.close()


def test_the_cut_comes_from_params_or_from_the_bundle():
    class Bundle:
        def __init__(self, manifest):
            self.manifest = manifest

    cascade = Cascade.__new__(Cascade)
    cascade.cfg = CascadeConfig(enabled=True)
    assert cascade.threshold_for(Bundle({"cascade": {"threshold": 0.61}})) == 0.61
    assert cascade.threshold_for(Bundle({})) is None  # an older bundle: the cascade never defers
    cascade.cfg = CascadeConfig(enabled=True, threshold=0.5)
    assert cascade.threshold_for(Bundle({"cascade": {"threshold": 0.61}})) == 0.5


def test_a_teacher_that_cannot_be_built_leaves_the_student_serving_and_says_why(tmp_path):
    from pipeline.config import parse_params
    from pipeline.serve.cascade import build_cascade

    params = parse_params({"ingest": {}, "teacher": {"kind": "embedding-head"},
                           "serve": {"cascade": {"enabled": True, "teacher_dir": str(tmp_path / "no-teacher")}}})
    cascade, why = build_cascade(params)
    assert cascade is None and str(tmp_path / "no-teacher") in why
    assert build_cascade(parse_params({"ingest": {}})) == (None, None)  # off by default: nothing to explain
