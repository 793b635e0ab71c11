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
from collections.abc import Callable, Iterator
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

    @staticmethod
    async def inline(fn: Callable[..., Any], *args: Any) -> Any:
        """On the event loop: for work so small (``serve.inline_max_chars``) that a thread hop costs more."""
        return fn(*args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
