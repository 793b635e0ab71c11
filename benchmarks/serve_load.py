"""Load benchmark of the model server against a bare FastAPI echo endpoint, side by side.

    python benchmarks/serve_load.py --bundle models/bundle --concurrency 16 --seconds 10

Registers the bundle in a scratch registry as production, starts the real server (``distill serve``,
uvicorn, one worker) and the echo app (benchmarks/echo_app.py, same uvicorn settings) on 127.0.0.1,
drives each with the same load generator (httpx, asyncio, ``--concurrency`` open connections, keyed
requests over BANKING77 test texts), and prints requests/s, p50/p99 client latency and errors at batch
1 and 32, with the overhead ratio server/echo. Numbers, not assertions: read them against the target
(>= 1,000 req/s at batch 1, p99 <= 20 ms, 0 errors on 2 cores). Without ``--bundle`` it trains a tiny
student on BANKING77 first (tests/helpers/serving.py).
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


def start(cmd: list[str], port: int, cwd: Path, log: Path, ready_path: str) -> subprocess.Popen:
    import httpx

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
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


def _drive_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: float, work: Path) -> dict:
    body_file = work / "bodies.txt"
    body_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, check=True,
                         env=dict(os.environ, BENCH_BODIES=str(body_file)))
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p99, sock_err, status_err, _max, _ = (int(v) for v in line.split()[1:])
    return {"requests": n, "rps": n / (dur_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "errors": sock_err + status_err}


def drive(url: str, texts: list[str], batch: int, concurrency: int, seconds: float, generator: str, work: Path,
          warmup: float = 1.5) -> dict:
    bodies = [json.dumps({"texts": [texts[(i + j) % len(texts)] for j in range(batch)], "key": f"user-{i}"}).encode()
              for i in range(0, 4000, 1)]
    if generator == "wrk":
        _drive_wrk(url, bodies, concurrency, 2, work)
        return _drive_wrk(url, bodies, concurrency, int(seconds), work)
    asyncio.run(_drive(url, bodies, concurrency, warmup))
    return asyncio.run(_drive(url, bodies, concurrency, seconds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="bundle folder (the export stage's models/bundle); default: train a tiny one")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto",
                    help="wrk (C, light on CPU; apt-get install wrk) or httpx asyncio; auto: wrk when installed")
    ap.add_argument("--threads", type=int, default=1, help="serve.threads (onnxruntime intra-op)")
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
    params_path = work / "params.yaml"
    params_path.write_text(yaml.safe_dump({
        "ingest": {},
        "registry": {"url": f"sqlite:///{work}/registry.db", "artifacts_dir": str(work / "artifacts")},
        "serve": {"prediction_log_url": f"sqlite:///{work}/predictions.db", "threads": args.threads},
    }))
    params = load_params(params_path)
    with open_registry(params.registry) as reg:
        v = reg.register(bundle, {"passed": True, "checks": []}, {}, params, actor="benchmark", reason="load test",
                         repo_dir=work)
        reg.promote(v.id, "production", actor="benchmark", reason="load test")

    import pandas as pd

    from tests.conftest import require_banking77

    texts = pd.read_csv(require_banking77() / "test.csv")["text"].tolist()
    batches = [int(b) for b in args.batches.split(",")]
    results = []
    for name in ("echo", "server"):
        port = free_port()
        if name == "server":
            cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--params", str(params_path)]
            ready = "/readyz"
        else:
            cmd = [sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--host", "127.0.0.1", "--port",
                   str(port), "--log-level", "warning", "--no-access-log"]
            ready = "POST /v1/predict"
        proc = start(cmd, port, ROOT if name == "echo" else work, work / f"{name}.log", ready)
        try:
            for batch in batches:
                r = drive(f"http://127.0.0.1:{port}/v1/predict", texts, batch, args.concurrency, args.seconds,
                          generator, work)
                results.append({"target": name, "batch": batch, **r})
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    by = {(r["target"], r["batch"]): r for r in results}
    print(f"\nmodel server vs bare FastAPI echo; concurrency {args.concurrency}, {args.seconds:.0f} s per run, "
          f"{os.cpu_count()} CPUs, load generator {generator} on the same machine, serve.threads {args.threads}\n")
    print("| target | batch | requests | req/s | texts/s | p50 ms | p99 ms | errors | req/s vs echo |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        echo = by[("echo", r["batch"])]
        print(f"| {r['target']} | {r['batch']} | {r['requests']} | {r['rps']:.0f} | {r['rps'] * r['batch']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {r['rps'] / echo['rps']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
