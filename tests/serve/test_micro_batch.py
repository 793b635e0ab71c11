"""Units of the micro-batcher: concurrent calls on one model share an inference call, each request gets
its own rows back, and a request whose text breaks the model fails alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from pipeline.serve.pool import InferencePool, MicroBatcher

pytestmark = pytest.mark.unit


class Model:
    """Row i of the answer is [len(text_i), index of the call]; "boom" raises. A gate holds the first call
    until the test lets it go, so the next requests queue behind it."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def __call__(self, texts):
        if not self.calls:
            self.gate.wait(5)
        self.calls.append(list(texts))
        if "boom" in texts:
            raise ValueError("the model broke on this text")
        n = len(self.calls)
        return np.array([[len(t), n] for t in texts], dtype=np.float32), None


async def _ask(batcher, model, requests, key="m"):
    tasks = [asyncio.ensure_future(batcher.run(key, model, requests[0]))]
    await asyncio.sleep(0.02)  # the first request finds the model idle: its call starts at once
    tasks += [asyncio.ensure_future(batcher.run(key, model, r)) for r in requests[1:]]
    await asyncio.sleep(0.05)  # the rest queue while the first call is held
    model.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_concurrent_requests_share_one_call_and_get_their_own_rows():
    model = Model()
    pool = InferencePool(1)
    runs = []
    batcher = MicroBatcher(pool, max_texts=5, lanes=1, on_run=lambda: runs.append(1))
    requests = [["a"], ["bb", "ccc"], ["dddd"], ["e", "ff"], ["g" * 7]]
    answers = asyncio.run(_ask(batcher, model, requests))
    pool.close()
    # the first ran alone (no wait added); the next three (5 texts) together; the last over max_texts
    assert model.calls == [["a"], ["bb", "ccc", "dddd", "e", "ff"], ["g" * 7]]
    assert len(runs) == 3
    for request, (probs, extra) in zip(requests, answers):
        assert extra is None
        assert probs[:, 0].tolist() == [len(t) for t in request]
    assert answers[1][0][:, 1].tolist() == [2, 2] and answers[3][0][:, 1].tolist() == [2, 2]


def test_a_breaking_text_fails_its_own_request_only():
    model = Model()
    pool = InferencePool(1)
    batcher = MicroBatcher(pool, max_texts=64, lanes=1)
    answers = asyncio.run(_ask(batcher, model, [["first"], ["ok"], ["boom"], ["fine", "too"]]))
    pool.close()
    assert isinstance(answers[2], ValueError)
    assert answers[1][0][:, 0].tolist() == [2] and answers[3][0][:, 0].tolist() == [4, 3]
    # the shared call failed, then each of its requests ran alone
    assert model.calls[1] == ["ok", "boom", "fine", "too"] and model.calls[2:] == [["ok"], ["boom"], ["fine", "too"]]


def test_different_models_never_share_a_call():
    model = Model()
    model.gate.set()
    pool = InferencePool(2)
    batcher = MicroBatcher(pool, max_texts=64, lanes=1)

    async def both():
        return await asyncio.gather(batcher.run("a", model, ["x"]), batcher.run("b", model, ["y"]))

    asyncio.run(both())
    pool.close()
    assert sorted(model.calls) == [["x"], ["y"]]
