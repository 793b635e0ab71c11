"""Real HTTP traffic against a running model server from a thread pool, until stopped.

    with LoadGenerator("http://127.0.0.1:8000", texts, workers=3) as load:
        ...                                  # run the canary flow, the monitor
    print(load.statuses, load.routes)

Each worker sends ``batch`` texts per request (keyed, so canary routing is sticky per key), cycling
through ``texts``; status codes, routes and versions are counted, transport errors too, never raised.
Used by the demo (held-out traffic for the canary rollout and the monitor) and by the tests.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


class LoadGenerator:
    """Real HTTP traffic from a thread pool (httpx, keep-alive) until stopped; counts statuses and routes."""

    def __init__(self, url: str, texts: list[str], workers: int = 4, batch: int = 1, keyed: bool = True):
        self.url = url + "/v1/predict"
        self.texts = texts
        self.workers = workers
        self.batch = batch
        self.keyed = keyed
        self.statuses: Counter = Counter()
        self.routes: Counter = Counter()
        self.versions: Counter = Counter()
        self.sources: Counter = Counter()  # who answered each text: student or teacher (the cascade)
        self.fallbacks: Counter = Counter()  # deferred texts the student answered, by why (busy, timeout, ...)
        self.transport_errors = 0
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _worker(self, offset: int) -> None:
        import httpx

        i = offset
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                texts = [self.texts[(i + j) % len(self.texts)] for j in range(self.batch)]
                body = {"texts": texts, "key": f"user-{i % 997}"} if self.keyed else {"texts": texts}
                i += self.workers
                try:
                    r = client.post(self.url, json=body)
                except httpx.HTTPError:
                    with self._lock:
                        self.transport_errors += 1
                    continue
                with self._lock:
                    self.statuses[r.status_code] += 1
                    if r.status_code == 200:
                        for p in r.json()["predictions"]:
                            self.routes[p["route"]] += 1
                            self.versions[p["version"]] += 1
                            self.sources[p.get("source", "student")] += 1
                            if "fallback" in p:
                                self.fallbacks[p["fallback"]] += 1
                time.sleep(0.002)  # leave CPU for the server and the flow on a 2-core machine

    def __enter__(self) -> "LoadGenerator":
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="load")
        self._futures = [self._pool.submit(self._worker, k) for k in range(self.workers)]
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for f in self._futures:
            f.result()
        self._pool.shutdown()

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors
