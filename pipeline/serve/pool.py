"""Inference off the event loop: a few threads, and a count of the requests waiting for them.

Featurizing and onnxruntime run on ``serve.inference_threads`` threads, so the event loop stays free to
accept connections and answer ``/healthz`` and ``/metrics`` while the model works. A request of at most
``serve.inline_max_chars`` characters in all runs on the loop itself: it takes a fraction of a
millisecond, less than the hand-off to a thread and back. ``pending`` counts
the predict requests inside :meth:`InferencePool.waiting`; the endpoint answers 429 past
``serve.max_pending`` instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any


class InferencePool:
    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference")
        self.pending = 0  # touched only on the event loop thread

    @contextmanager
    def waiting(self) -> Iterator[None]:
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class MicroBatcher:
    """Concurrent inference calls on one model become one call on all their texts (``serve.micro_batch_texts``).

    A call that finds its model idle runs at once, alone: batching adds no wait. Calls that arrive while
    it runs queue, and the next run takes all of them (whole requests, up to ``max_texts`` texts). Each
    model key has at most ``lanes`` runs in flight (``serve.inference_threads``). Under load a request
    thus waits for at most one run before its own, and the model answers many texts per call instead of
    one. If a batched run raises, its requests are run again one by one, so a text that breaks the model
    fails its own request only.

    ``fn(texts)`` returns a tuple of per-text arrays (or None entries), split back by request. Dynamic
    int8 quantization scales activations per call, so a text's probabilities can differ in the last
    digits with the texts it is batched with, as they do with the other texts of its own request.
    """

    def __init__(self, pool: InferencePool, max_texts: int, lanes: int, on_run=None) -> None:
        self.pool = pool
        self._on_run = on_run or (lambda: None)  # counted per inference call (distill_inference_runs_total)
        self.max_texts = max_texts
        self.lanes = lanes
        self._queued: dict[Hashable, deque] = {}
        self._running: dict[Hashable, int] = {}

    async def run(self, key: Hashable, fn: Callable[[list[str]], tuple], texts: list[str]) -> tuple:
        future = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, deque()).append((texts, future))
        if self._running.get(key, 0) < self.lanes:
            self._running[key] = self._running.get(key, 0) + 1
            asyncio.ensure_future(self._drain(key, fn))
        return await future

    async def _drain(self, key: Hashable, fn: Callable[[list[str]], tuple]) -> None:
        queued = self._queued[key]
        try:
            while queued:
                batch = [queued.popleft()]
                size = len(batch[0][0])
                while queued and size + len(queued[0][0]) <= self.max_texts:
                    batch.append(queued.popleft())
                    size += len(batch[-1][0])
                batch = [(texts, future) for texts, future in batch if not future.done()]  # clients gone
                if batch:
                    await self._answer(fn, batch)
        finally:
            self._running[key] -= 1
            if not self._running[key] and not queued:
                del self._running[key], self._queued[key]

    async def _answer(self, fn: Callable[[list[str]], tuple], batch: list) -> None:
        texts = [t for request, _ in batch for t in request]
        self._on_run()
        try:
            out = await self.pool.run(fn, texts)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for request, future in batch:  # one request's text broke the model: find it, spare the rest
                try:
                    _settle(future, await self.pool.run(fn, request))
                except Exception as one:
                    _settle(future, exc=one)
            return
        start = 0
        for request, future in batch:
            end = start + len(request)
            _settle(future, tuple(None if part is None else part[start:end] for part in out))
            start = end


def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
