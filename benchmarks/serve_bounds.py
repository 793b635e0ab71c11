"""The bounded server under load: throughput, errors and /healthz latency, and what durable logging costs.

    python benchmarks/serve_bounds.py --bundle models/bundle --seconds 60

Registers the bundle in a scratch registry, then runs two servers one after the other on 127.0.0.1
(``distill serve``: ``serve.log_durable`` false, then true). Against each, for ``--seconds``:

- wrk drives ``POST /v1/predict`` (batch 1, BANKING77 test texts, ``--concurrency`` connections), once
  for each ``--rates`` entry: 0 is as fast as the server answers; a rate paces every connection (a
  pause after each reply, calibrated in two 3 s runs so the whole reaches that rate);
- a prober asks ``GET /healthz`` every 20 ms on its own connection and records each latency.

Then 4 clients send requests of 64 texts of 10,000 characters for 10 s, with the same prober: the
case where inference used to hold the event loop. Prints req/s, errors (non-2xx included), the
prediction-log rows written, and /healthz p50/p99/max, with the load average. Numbers, not assertions;
targets (issue: reliability): 0 errors and /healthz p99 <= 10 ms for 60 s at 1,500 req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_load import _drive_wrk, free_port, start  # noqa: E402


class Prober(threading.Thread):
    """GET /healthz every ``every`` seconds on one keep-alive connection; latencies in ms."""

    def __init__(self, url: str, every: float = 0.02):
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.latencies: list[float] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as client:
            while not self._halt.is_set():
                t0 = time.perf_counter()
                try:
                    ok = client.get(self.url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append((time.perf_counter() - t0) * 1000)
                self.failures += not ok
                time.sleep(max(0.0, self.every - (time.perf_counter() - t0)))

    def stop(self) -> dict:
        self._halt.set()
        self.join()
        lat = np.array(self.latencies)
        return {"probes": len(lat), "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                "max_ms": float(lat.max()), "failures": self.failures}


def heavy(url: str, seconds: float, clients: int = 4) -> dict:
    import httpx

    body = json.dumps({"texts": [("my card payment was declined twice today " * 250)[:10_000]] * 64})
    done, statuses = [], []
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = c.post(url + "/v1/predict", content=body, headers={"content-type": "application/json"})
                done.append(time.perf_counter() - t0)
                statuses.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"requests": len(done), "mean_s": float(np.mean(done)), "statuses": sorted(set(statuses))}


def paced(url: str, bodies: list[bytes], concurrency: int, rate: float, seconds: float, work: Path) -> dict:
    """wrk at about ``rate`` req/s: each connection pauses after a reply. The pause starts at
    concurrency / rate and is corrected twice by the reply time measured in a 3 s run; 0 when the
    server cannot reach the rate, which is then the unpaced load."""
    target = 1000.0 * concurrency / rate  # ms from one request to the next on a connection
    pause = target
    for _ in range(2):
        got = _drive_wrk(url, bodies, concurrency, 3, work, pause)["rps"]
        reply_ms = max(0.0, 1000.0 * concurrency / got - pause)
        pause = max(0.0, target - reply_ms)
    return _drive_wrk(url, bodies, concurrency, seconds, work, pause)


def rows_in(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="bundle folder; default: train a tiny BANKING77 student")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--heavy-seconds", type=float, default=10.0)
    ap.add_argument("--inline-max-chars", default="0", help="comma-separated serve.inline_max_chars values to compare")
    ap.add_argument("--workers", type=int, default=1, help="serve.workers of every server run")
    ap.add_argument("--rates", default="0,1500", help="comma-separated offered req/s of the load runs; 0: unpaced")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2

    import pandas as pd
    import yaml

    from pipeline.config import load_params
    from pipeline.registry import open_registry
    from tests.conftest import require_banking77

    work = Path(tempfile.mkdtemp(prefix="distill-bounds-"))
    bundle = Path(args.bundle) if args.bundle else None
    if bundle is None:
        from tests.helpers.serving import build_bundles

        print("training a tiny BANKING77 student (no --bundle given)...", file=sys.stderr)
        bundle = build_bundles(work / "bundles")["good_a"]
    texts = pd.read_csv(require_banking77() / "test.csv")["text"].tolist()
    bodies = [json.dumps({"texts": [texts[i % len(texts)]], "key": f"user-{i}"}).encode() for i in range(4000)]
    results = []
    rates = [float(r) for r in args.rates.split(",")]
    plans = [(False, int(n)) for n in args.inline_max_chars.split(",")] + [(True, int(args.inline_max_chars.split(",")[0]))]
    for durable, inline in plans:
        run = work / f"{'durable' if durable else 'background'}-{inline}"
        run.mkdir()
        params_path = run / "params.yaml"
        params_path.write_text(yaml.safe_dump({
            "ingest": {},
            "registry": {"url": f"sqlite:///{run}/registry.db", "artifacts_dir": str(run / "artifacts")},
            "serve": {"prediction_log_url": f"sqlite:///{run}/predictions.db", "log_durable": durable,
                      "inline_max_chars": inline, "workers": args.workers},
        }))
        params = load_params(params_path)
        with open_registry(params.registry) as reg:
            v = reg.register(bundle, {"passed": True, "checks": []}, {}, params, actor="benchmark",
                             reason="bounds benchmark", repo_dir=run)
            reg.promote(v.id, "production", actor="benchmark", reason="bounds benchmark")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start([sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                      "--params", str(params_path)], port, run, run / "server.log", "/readyz")
        try:
            _drive_wrk(url + "/v1/predict", bodies, args.concurrency, 2, run)  # warm-up
            loads = []
            for rate in rates:
                prober = Prober(url)
                prober.start()
                if rate:
                    load = paced(url + "/v1/predict", bodies, args.concurrency, rate, args.seconds, run)
                else:
                    load = _drive_wrk(url + "/v1/predict", bodies, args.concurrency, args.seconds, run)
                loads.append({"rate": rate, "load": load, "health": prober.stop(), "loadavg": os.getloadavg()[0]})
            prober = Prober(url)
            prober.start()
            big = heavy(url, args.heavy_seconds)
            heavy_health = prober.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        results.append({"durable": durable, "inline": inline, "loads": loads, "heavy": big, "heavy_health": heavy_health,
                        "rows": rows_in(run / "predictions.db")})

    print(f"\ndistill serve ({args.workers} worker(s)) under wrk, batch 1, concurrency {args.concurrency}, {args.seconds} s; /healthz probed every "
          f"20 ms on its own connection; {os.cpu_count()} CPUs, wrk and the prober on the same machine\n")
    print("| serve.log_durable | inline_max_chars | offered req/s | req/s | requests | errors | /healthz p50 ms | p99 ms | "
          "max ms | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for one in r["loads"]:
            h, load = one["health"], one["load"]
            offered = f"{one['rate']:.0f}" if one["rate"] else "unpaced"
            print(f"| {str(r['durable']).lower()} | {r['inline']} | {offered} | {load['rps']:.0f} | {load['requests']} | "
                  f"{load['errors']} | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} | {h['max_ms']:.1f} | {one['loadavg']:.2f} |")
    print("\nprediction-log rows written, every run of a server together: " +
          ", ".join(f"{'durable' if r['durable'] else 'background'} {r['rows']}" for r in results))
    for k, rate in enumerate(rates):
        base = results[0]["loads"][k]["load"]["rps"]
        print(f"durable / background req/s ({'unpaced' if not rate else f'offered {rate:.0f}'}, inline_max_chars "
              f"{results[0]['inline']}): {results[-1]['loads'][k]['load']['rps'] / base:.2f}")
    print(f"\n4 clients x requests of 64 texts x 10,000 characters, {args.heavy_seconds:.0f} s, same prober:\n")
    print("| serve.log_durable | inline_max_chars | heavy requests | mean s | statuses | /healthz p50 ms | p99 ms | "
          "max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        h, b = r["heavy_health"], r["heavy"]
        print(f"| {str(r['durable']).lower()} | {r['inline']} | {b['requests']} | {b['mean_s']:.2f} | {b['statuses']} | "
              f"{h['p50_ms']:.2f} | {h['p99_ms']:.2f} | {h['max_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
