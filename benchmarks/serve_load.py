"""Load benchmark of the model server against a bare FastAPI echo endpoint and the raw student, side by side.

    python benchmarks/serve_load.py --bundle models/bundle --concurrency 16 --seconds 10 --workers 1,2

Registers the bundle in a scratch registry as production, starts the real server (``distill serve``,
one run per ``--workers`` count: the supervisor and its worker processes on one port, the small-scale
simulation of N replicas behind one registry and one prediction log) and the echo app
(benchmarks/echo_app.py, one uvicorn process) on 127.0.0.1, drives each with the same load generator
(wrk, ``--concurrency`` connections, keyed requests over BANKING77 test texts), and prints requests/s,
texts/s, p50/p99 latency and errors at batch 1 and 32, beside the echo's req/s and the raw student's
texts/s (``Bundle.predict_proba`` in this process, batch 32, ``--student-threads`` onnxruntime threads).
Numbers, not assertions: read them against the targets of docs/scaling.md (batch 1: >= 0.5 of the
echo's req/s with p99 <= 10 ms; batch 32: >= 0.8 of the raw student's texts/s; 0 errors). Without
``--bundle`` it trains a tiny student on BANKING77 first (tests/helpers/serving.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pinned(cpus: set[int] | None):
    """A ``preexec_fn`` that pins the child (and what it starts) to ``cpus``; None leaves it unpinned."""
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def start(cmd: list[str], port: int, cwd: Path, log: Path, ready_path: str,
          cpus: set[int] | None = None) -> subprocess.Popen:
    """Start a server and wait until ``ready_path`` answers; ``cpus`` pins it (and every process it starts)."""
    import httpx

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            preexec_fn=_pinned(cpus))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited:\n{log.read_text()}")
        try:
            if ready_path.startswith("POST "):
                ok = httpx.post(f"http://127.0.0.1:{port}{ready_path[5:]}", json={"texts": ["hi"]}, timeout=1).status_code == 200
            else:
                ok = httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200
            if ok:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"{cmd[:4]} not ready:\n{log.read_text()}")


async def _drive(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < stop_at:
                body = bodies[i % len(bodies)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers={"content-type": "application/json"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        t_start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "rps": len(lat) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "errors": errors}


WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")  -- ms between a reply and the next request
if pause > 0 then
  delay = function()  -- wrk waits whole milliseconds: mix floor and ceiling for a fractional mean
    local whole = math.floor(pause)
    if math.random() < pause - whole then return whole + 1 end
    return whole
  end
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status,
    latency.max, 0))
end
"""


def _drive_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: float, work: Path,
               delay_ms: float = 0.0, cpus: set[int] | None = None) -> dict:
    """wrk against ``url`` for ``seconds``; each connection waits ``delay_ms`` after a reply (0: no pause)."""
    body_file = work / "bodies.txt"
    body_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, check=True,
                         env=dict(os.environ, BENCH_BODIES=str(body_file), BENCH_DELAY_MS=str(delay_ms)),
                         preexec_fn=_pinned(cpus))
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p99, sock_err, status_err, _max, _ = (int(v) for v in line.split()[1:])
    return {"requests": n, "rps": n / (dur_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "errors": sock_err + status_err}


def drive(url: str, texts: list[str], batch: int, concurrency: int, seconds: float, generator: str, work: Path,
          warmup: float = 1.5, cpus: set[int] | None = None) -> dict:
    bodies = [json.dumps({"texts": [texts[(i + j) % len(texts)] for j in range(batch)], "key": f"user-{i}"}).encode()
              for i in range(0, 4000, 1)]
    if generator == "wrk":
        warm = _drive_wrk(url, bodies, concurrency, 2, work, cpus=cpus)
        timed = _drive_wrk(url, bodies, concurrency, int(seconds), work, cpus=cpus)
    else:
        warm = asyncio.run(_drive(url, bodies, concurrency, warmup))
        timed = asyncio.run(_drive(url, bodies, concurrency, seconds))
    return {**timed, "answered_with_warmup": warm["requests"] - warm["errors"] + timed["requests"] - timed["errors"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="bundle folder (the export stage's models/bundle); default: train a tiny one")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto",
                    help="wrk (C, light on CPU; apt-get install wrk) or httpx asyncio; auto: wrk when installed")
    ap.add_argument("--threads", type=int, default=1, help="serve.threads (onnxruntime intra-op)")
    ap.add_argument("--workers", default="1,2", help="serve.workers counts to run, comma-separated")
    ap.add_argument("--micro-batch", type=int, default=None, help="serve.micro_batch_texts (default: params')")
    ap.add_argument("--student-threads", type=int, default=os.cpu_count() or 1,
                    help="onnxruntime threads of the raw student row (default: every CPU)")
    ap.add_argument("--generator-cpus", default=None,
                    help="CPUs for wrk alone (e.g. 0); the echo and the server get the others, so the load "
                         "generator does not take the server's cores (default: everything shares every CPU)")
    args = ap.parse_args(argv)

    import yaml

    from pipeline.config import load_params
    from pipeline.registry import open_registry

    import shutil

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    generator = args.generator if args.generator != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    work = Path(tempfile.mkdtemp(prefix="distill-bench-"))
    bundle = Path(args.bundle) if args.bundle else None
    if bundle is None:
        from tests.helpers.serving import build_bundles

        print("training a tiny BANKING77 student (no --bundle given)...", file=sys.stderr)
        bundle = build_bundles(work / "bundles")["good_a"]
    worker_counts = [int(w) for w in args.workers.split(",")]
    gen_cpus = server_cpus = None
    if args.generator_cpus is not None:
        if generator != "wrk":
            ap.error("--generator-cpus needs wrk")
        gen_cpus = {int(c) for c in args.generator_cpus.split(",")}
        server_cpus = os.sched_getaffinity(0) - gen_cpus
        if not server_cpus or not gen_cpus <= os.sched_getaffinity(0):
            ap.error(f"--generator-cpus {args.generator_cpus}: must name some, not all, of CPUs "
                     f"{sorted(os.sched_getaffinity(0))}")

    def write_params(workers: int) -> Path:
        path = work / f"params-{workers}.yaml"
        serve = {"prediction_log_url": f"sqlite:///{work}/predictions.db", "threads": args.threads,
                 "workers": workers}
        if args.micro_batch is not None:
            serve["micro_batch_texts"] = args.micro_batch
        path.write_text(yaml.safe_dump({
            "ingest": {},
            "registry": {"url": f"sqlite:///{work}/registry.db", "artifacts_dir": str(work / "artifacts")},
            "serve": serve,
        }))
        return path

    params_path = write_params(worker_counts[0])
    params = load_params(params_path)
    with open_registry(params.registry) as reg:
        v = reg.register(bundle, {"passed": True, "checks": []}, {}, params, actor="benchmark", reason="load test",
                         repo_dir=work)
        reg.promote(v.id, "production", actor="benchmark", reason="load test")

    import pandas as pd

    from tests.conftest import require_banking77

    texts = pd.read_csv(require_banking77() / "test.csv")["text"].tolist()
    batches = [int(b) for b in args.batches.split(",")]
    student = raw_student(bundle, texts, args.student_threads)
    results = []
    targets = [("echo", 1)] + [("server", w) for w in worker_counts]
    for name, workers in targets:
        port = free_port()
        if name == "server":
            cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--params", str(write_params(workers))]
            ready = "/readyz"
        else:
            cmd = [sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--host", "127.0.0.1", "--port",
                   str(port), "--log-level", "warning", "--no-access-log"]
            ready = "POST /v1/predict"
        logged_before = logged_rows(params.serve.prediction_log_url)
        proc = start(cmd, port, ROOT if name == "echo" else work, work / f"{name}-{workers}.log", ready, server_cpus)
        answered = 0
        try:
            if name == "server":  # every worker loaded the model: readiness from fresh connections
                for _ in range(4 * workers):
                    start_ready(port)
            for batch in batches:
                r = drive(f"http://127.0.0.1:{port}/v1/predict", texts, batch, args.concurrency, args.seconds,
                          generator, work, cpus=gen_cpus)
                results.append({"target": name if name == "echo" else f"distill serve, {workers} worker"
                                + ("s" if workers > 1 else ""), "batch": batch, **r})
                answered += r["answered_with_warmup"] * batch
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        if name == "server":  # the log must keep up too: rows written after a clean stop, against texts answered
            results[-1]["logged"] = (logged_rows(params.serve.prediction_log_url) - logged_before, answered)

    echo = {r["batch"]: r for r in results if r["target"] == "echo"}
    load = os.getloadavg()
    placement = (f"pinned to CPU(s) {sorted(gen_cpus)}, servers to CPU(s) {sorted(server_cpus)}" if gen_cpus
                 else "on the same CPUs as the servers")
    print(f"\nconcurrency {args.concurrency}, {args.seconds:.0f} s per run, {os.cpu_count()} CPUs, load generator "
          f"{generator} {placement}, serve.threads {args.threads}, load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}\n")
    print("| target | batch | requests | req/s | texts/s | p50 ms | p99 ms | errors | req/s vs echo | texts/s vs student |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| raw student (onnxruntime int8, {args.student_threads} threads, in process) | 32 | | | {student:.0f} "
          "| | | | | 1.00 |")
    for r in results:
        print(f"| {r['target']} | {r['batch']} | {r['requests']} | {r['rps']:.0f} | {r['rps'] * r['batch']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {r['rps'] / echo[r['batch']]['rps']:.2f} | "
              f"{r['rps'] * r['batch'] / student:.2f} |")
    print("\nPrediction log, per server run (all its batches): rows written after a clean stop / texts answered "
          "(warm-up included; answers cut off when the generator stops are logged but not counted)")
    for r in results:
        if "logged" in r:
            print(f"- {r['target']}: {r['logged'][0]} / {r['logged'][1]}")
    return 0


def logged_rows(url: str) -> int:
    import sqlalchemy as sa

    from pipeline import predlog

    engine, tbl = predlog.connect(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tbl)).scalar())
    finally:
        engine.dispose()


def start_ready(port: int) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("a worker never loaded the model")
        time.sleep(0.2)


def raw_student(bundle: Path, texts: list[str], threads: int, batch: int = 32, seconds: float = 3.0) -> float:
    """Texts/s of the bundle's int8 model alone (featurization included), batch ``batch``."""
    from pipeline.bundle import load_bundle

    model = load_bundle(bundle, threads=threads)
    batches = [texts[i:i + batch] for i in range(0, len(texts) - batch, batch)]
    model.predict_proba(batches[0])
    done, i, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += len(model.predict_proba(batches[i % len(batches)]))
        i += 1
    return done / (time.perf_counter() - t0)


if __name__ == "__main__":
    raise SystemExit(main())
