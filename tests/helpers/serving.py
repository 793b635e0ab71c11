"""Helpers for model-server tests: tiny real bundles, a real server process, a real HTTP load generator.

Bundles are trained and exported with the project's own functions on a small BANKING77 subset:
``good_a`` and ``good_b`` (two seeds: similar, not identical) and ``bad`` (trained on soft labels whose
classes were rotated by one, so it disagrees with the others on nearly every text).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

GATE_PASSED = {"passed": True, "checks": [{"suite": "gold", "metric": "accuracy", "value": 0.5, "threshold": 0.3,
                                           "passed": True}]}


def build_bundles(out: Path) -> dict[str, Path]:
    """Train and export three tiny students; returns name -> bundle folder. A few seconds on 2 cores."""
    from pipeline.config import parse_params
    from pipeline.distill import train_from_frames
    from pipeline.export import export_bundle
    from tests.student_data import banking77_frames

    ingested, labels_frame, names = banking77_frames(per_class_train=12, test_rows=200, seed=0)
    distill = {"featurizer": {"buckets": 4096}, "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}},
               "epochs": 3, "patience": 3, "lr": 0.08, "validation_share": 0.15}
    export_cfg = parse_params({"ingest": {}, "export": {"latency_texts": 10, "parity_rows": 200, "min_label_agreement": 0.9}}).export
    texts = ingested.loc[ingested.split == "test", "text"].tolist()
    rotated = labels_frame.copy()
    rotated["probs"] = [np.roll(p, 1) for p in labels_frame["probs"]]
    plans = {
        "good_a": (labels_frame, distill, 1),
        "good_b": (labels_frame, distill, 2),
        "bad": (rotated, {**distill, "use_gold": False}, 3),
    }
    bundles = {}
    for name, (frame, dcfg, seed) in plans.items():
        cfg = parse_params({"ingest": {}, "distill": dcfg}).distill
        trained = train_from_frames(ingested, frame, names, cfg, seed=seed, out_dir=out / f"{name}-train")
        metrics = export_bundle(trained.checkpoint, out / name, export_cfg, texts)
        assert metrics["passed"], metrics["problems"]
        bundles[name] = out / name
    return bundles


def corrupt_copy(bundle: Path, dest: Path) -> Path:
    """A copy of ``bundle`` whose int8 model file is garbage (as a bad disk or a broken upload leaves it)."""
    shutil.copytree(bundle, dest)
    (dest / "model.int8.onnx").write_bytes(b"this is not an onnx model" * 100)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``distill serve`` in a child process on 127.0.0.1 and a free port; always stopped by ``stop``."""

    def __init__(self, params_path: Path, cwd: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
        self._fh = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--params", str(params_path), "--log-level", "info"],
                                     cwd=cwd, env=full_env, stdout=self._fh, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0, need_model: bool = True) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        path = "/readyz" if need_model else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()


def wait_until(predicate, timeout: float = 20.0, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


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
