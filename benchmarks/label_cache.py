"""The label cache's cost per answer as it grows: one lookup and one committed batch at a time.

    python benchmarks/label_cache.py --rows 3000000 [--batch 4096] [--chunk 262144] [--classes 77]
                                     [--checkpoint-pages N]

Writes ``--rows`` answers (random probability vectors under the SHA-256 keys of distinct texts) into a
fresh cache in a scratch folder, the way the label stage does for texts it has not seen: each chunk
of ``--chunk`` texts (default ``label.chunk_rows``) is sent in key order, with one ``get_many`` (all
misses) and one ``put_many`` with the batch's spend per ``--batch`` answers. ``--chunk 0`` writes in
random key order instead (a batch's keys spread over the whole index). Every half million answers it
prints the microseconds per answer spent in each, the load average and the process's peak resident
memory (``ru_maxrss``, as benchmarks/pipeline_scale.py reports it). ``--checkpoint-pages`` sets how many write-ahead log pages the cache's
connection lets build up before folding them into the file (SQLite's ``wal_autocheckpoint``, 1,000
unless set), to compare settings in one session. Numbers, not assertions: compare runs made one after
the other.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config.label import LabelConfig  # noqa: E402
from pipeline.keys import text_key  # noqa: E402
from pipeline.label import cache as cache_mod  # noqa: E402

SEGMENT = 500_000


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def key_batches(rows: int, batch: int, chunk: int):
    """Batches of new keys: each chunk sorted, as the label stage sends them (``chunk`` 0: unsorted)."""
    for start in range(0, rows, chunk or rows):
        keys = [text_key(f"text {i}") for i in range(start, min(start + (chunk or rows), rows))]
        if chunk:
            keys.sort()
        for i in range(0, len(keys), batch):
            yield keys[i:i + batch]


def run(folder: Path, rows: int, batch: int, chunk: int, classes: int, checkpoint_pages: int | None) -> None:
    probs = np.random.default_rng(0).dirichlet(np.ones(classes), size=batch).astype(np.float32)
    lookup = commit = 0.0
    done = since = 0
    with cache_mod.LabelCache(folder) as cache:
        if checkpoint_pages is not None:
            cache._db.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
        pages = cache._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        print(f"{'answers':>10}  {'lookup us':>9}  {'commit us':>9}  load  peak GB  (checkpoint every {pages:,} "
              "pages)", flush=True)
        for keys in key_batches(rows, batch, chunk):
            t0 = time.perf_counter()
            cache.get_many("bench", keys)
            t1 = time.perf_counter()
            cache.put_many("bench", dict(zip(keys, probs)), {"calls": 1, "texts_sent": len(keys)})
            t2 = time.perf_counter()
            lookup, commit = lookup + t1 - t0, commit + t2 - t1
            done, since = done + len(keys), since + len(keys)
            if since >= SEGMENT or done >= rows:
                print(f"{done:>10,}  {lookup / since * 1e6:>9.1f}  {commit / since * 1e6:>9.1f}  "
                      f"{os.getloadavg()[0]:>4.1f}  {peak_rss_gb():>7.2f}", flush=True)
                lookup = commit = 0.0
                since = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--batch", type=int, default=4096, help="answers per lookup and per committed batch")
    ap.add_argument("--chunk", type=int, default=LabelConfig().chunk_rows, help="texts per key-ordered chunk; 0: random order")
    ap.add_argument("--classes", type=int, default=77, help="probabilities per answer")
    ap.add_argument("--checkpoint-pages", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="distill-cache-bench-") as tmp:
        run(Path(tmp), args.rows, args.batch, args.chunk, args.classes, args.checkpoint_pages)


if __name__ == "__main__":
    main()
