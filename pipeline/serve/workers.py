"""``serve.workers`` server processes on one port, supervised by ``distill serve``.

One Python process serves from one core (the event loop, the GIL). With ``serve.workers: N`` the
``distill serve`` process becomes a supervisor: it starts N worker processes (``spawn``), each a whole
server (its own registry follower, model slots, prediction-log writer), each listening on the same
address through its own ``SO_REUSEPORT`` socket, so the kernel spreads connections across them. What
the workers share they share through the outside world, never through the supervisor:

- **models and canary routing**: each worker follows the registry on its own (``serve.poll_interval_s``);
  the canary split is a hash of the routing key (pipeline/serve/traffic.py), so a key goes to the same
  model whichever worker answers it;
- **metrics**: prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a fresh folder per
  supervisor run): ``GET /metrics`` from any worker sums every worker's counters and histograms;
- **prediction log**: every worker writes its own rows into the one database; worker *i* keeps its
  acknowledgement counter in its own file (``ack_path(url, i)``), so a killed worker's lost rows are
  found when its replacement starts;
- **cascade budget**: ``serve.cascade.texts_per_minute`` is the server's, split evenly over the workers.

A worker that dies is replaced (its live gauges dropped from /metrics); one that keeps dying within
seconds of its start stops the server with exit code 1 rather than loop. SIGTERM or SIGINT stops the
workers (each drains its requests and flushes its prediction-log queue) and then the supervisor.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

WORKER_ENV = "DISTILL_SERVE_WORKER"  # the worker's index, 0..N-1, in each worker process
WORKERS_ENV = "DISTILL_SERVE_WORKERS"  # N
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable
QUICK_DEATH_S = 10.0  # a worker that dies sooner than this after its start counts towards giving up
MAX_QUICK_DEATHS = 5

log = logging.getLogger("distill.serve.workers")


def worker_index() -> int | None:
    """This process's worker index under the supervisor, None in a single-process server."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None else None


def worker_count() -> int:
    return int(os.environ.get(WORKERS_ENV, "1"))


def listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def uvicorn_config(app, cfg, log_level: str, **where):
    """uvicorn's settings from a ``serve`` section (``where``: host and port, when uvicorn binds)."""
    import uvicorn

    from pipeline.serve.protocol import protocol_class

    return uvicorn.Config(app, log_level=log_level, access_log=False, http=protocol_class(cfg),
                          timeout_keep_alive=cfg.idle_timeout_s, limit_concurrency=cfg.max_connections, **where)


def _worker(params_path: str, host: str, port: int, log_level: str, index: int, workers: int,
            metrics_dir: str) -> None:
    """One worker process (the target of ``spawn``): environment first, then prometheus_client."""
    os.environ[WORKER_ENV] = str(index)
    os.environ[WORKERS_ENV] = str(workers)
    os.environ[METRICS_ENV] = metrics_dir
    import uvicorn

    from pipeline.config import load_params
    from pipeline.serve.app import create_app

    params = load_params(params_path)
    app = create_app(params)
    sock = listen_socket(host, port, reuse_port=True)
    sock.listen(2048)
    uvicorn.Server(uvicorn_config(app, params.serve, log_level)).run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` worker processes, replaces the ones that die, stops them all on a signal."""

    def __init__(self, params_path: str, host: str, port: int, log_level: str, workers: int):
        if port == 0:
            raise ValueError("serve.workers > 1 needs a fixed --port (each worker binds the same one)")
        self.params_path = str(Path(params_path).resolve())
        self.host, self.port, self.log_level, self.workers = host, port, log_level, workers
        self._stop = threading.Event()
        self._procs: dict[int, object] = {}
        self._started: dict[int, float] = {}
        self._quick_deaths = 0

    def _start(self, index: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_worker, name=f"distill-serve-{index}", args=(
            self.params_path, self.host, self.port, self.log_level, index, self.workers, self.metrics_dir))
        proc.start()
        self._procs[index] = proc
        self._started[index] = time.monotonic()

    def run(self) -> int:
        # The supervisor holds the port (bound, never listening: it gets no connections) so a port in use
        # fails here, once, and no other program can join the workers' SO_REUSEPORT group meanwhile.
        guard = listen_socket(self.host, self.port, reuse_port=True)
        self.metrics_dir = tempfile.mkdtemp(prefix="distill-serve-metrics-")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        code = 0
        try:
            for i in range(self.workers):
                self._start(i)
            print(f"distill serve: {self.workers} workers (pids "
                  f"{', '.join(str(p.pid) for p in self._procs.values())})", flush=True)
            while not self._stop.wait(0.5):
                if not self._replace_dead():
                    code = 1
                    break
        finally:
            self._stop_all()
            guard.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return code

    def _replace_dead(self) -> bool:
        from prometheus_client import multiprocess

        for index, proc in list(self._procs.items()):
            if proc.is_alive():
                continue
            lived = time.monotonic() - self._started[index]
            print(f"distill serve: worker {index} (pid {proc.pid}) exited with {proc.exitcode} after "
                  f"{lived:.1f} s; starting a new one", file=sys.stderr, flush=True)
            multiprocess.mark_process_dead(proc.pid, self.metrics_dir)
            self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            if self._quick_deaths >= MAX_QUICK_DEATHS:
                print(f"distill serve: error: workers died {self._quick_deaths} times within "
                      f"{QUICK_DEATH_S:.0f} s of starting; stopping (see the lines above)", file=sys.stderr,
                      flush=True)
                return False
            self._start(index)
        return True

    def _stop_all(self, timeout: float = 20.0) -> None:
        for proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn drains, the lifespan flushes the prediction log
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
