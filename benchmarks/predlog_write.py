"""CPU cost of writing the prediction log, per row, as the server's log-writer process does it.

    python benchmarks/predlog_write.py [--rows 20480] [--repeats 3]

Builds records of 32 texts with 77 float32 probabilities (a BANKING77-sized model), then turns them
into rows and writes them to a fresh SQLite log in batches of 512, three ways, alternating. It prints
the CPU time per row (process time, so waits for the disk are left out):

- ``writer``: what pipeline/serve/logwriter.py does (tuples, each probability row as float32 JSON,
  ``predlog.insert_values``);
- ``insert_rows``: the same values as dicts through ``predlog.insert_rows`` (SQLAlchemy's executemany);
- ``float64 JSON``: those dicts with the probabilities as a float64 JSON list, as the writer wrote them
  before 2026-12-07.

On 2 cores the log writer shares the CPUs with the server, so its cost per row bounds how many
predictions per second can be logged (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import predlog  # noqa: E402
from pipeline.serve.logwriter import LogRecord, _pack, _values  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_480, help="rows per measurement (a multiple of 512)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    texts = [f"how do I top up my card, request number {i} please" for i in range(32)]
    probs = np.random.default_rng(0).dirichlet(np.ones(77), size=32).astype(np.float32)
    batch = [_pack(LogRecord(request_id=f"r{i}", ts=1.0 + i, texts=texts, version="v1", route="stable",
                             labels=["top_up"] * 32, probs=probs, stable_labels=None, latency_ms=1.0,
                             first_seq=32 * i)) for i in range(16)]  # 512 rows, one insert like the writer's

    def writer(engine, tbl) -> None:
        predlog.insert_values(engine, tbl, predlog.WRITTEN_COLUMNS, [v for p in batch for v in _values(p, True, "run")])

    def rows() -> list[dict]:
        return [dict(zip(predlog.WRITTEN_COLUMNS, v)) for p in batch for v in _values(p, True, "run")]

    def insert_rows(engine, tbl) -> None:
        predlog.insert_rows(engine, tbl, rows())

    def float64_json(engine, tbl) -> None:
        out = rows()
        for i, row in enumerate(out):
            row["probs"] = orjson.dumps(probs[i % 32].tolist()).decode()
        predlog.insert_rows(engine, tbl, out)

    ways = {"writer": writer, "insert_rows": insert_rows, "float64 JSON": float64_json}
    times: dict[str, list[float]] = {name: [] for name in ways}
    rounds = max(1, args.rows // 512)
    with tempfile.TemporaryDirectory(prefix="distill-predlog-") as tmp:
        for r in range(args.repeats):
            for name, fn in ways.items():
                engine, tbl = predlog.connect(f"sqlite:///{tmp}/{r}-{name.replace(' ', '_')}.db")
                start = time.process_time()
                for _ in range(rounds):
                    fn(engine, tbl)
                times[name].append((time.process_time() - start) / (rounds * 512) * 1e6)
                engine.dispose()
    base = statistics.median(times["writer"])
    print(f"{rounds * 512} rows per run, {args.repeats} runs each, alternating; load average "
          f"{os.getloadavg()[0]:.2f}")
    print("| path | CPU µs per row (median) | runs | against the writer |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} | "
              f"{statistics.median(ts) / base:.2f}x |")


if __name__ == "__main__":
    main()
