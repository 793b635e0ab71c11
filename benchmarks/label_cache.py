"""The label cache's cost per answer as it grows: one lookup and one committed batch at a time.

    python benchmarks/label_cache.py --rows 3000000 [--batch 4096] [--classes 77] [--checkpoint-pages N]

Writes ``--rows`` answers (random probability vectors under the SHA-256 keys of distinct texts) into a
fresh cache in a scratch folder, the way the label stage does for texts it has not seen: one
``get_many`` (all misses) and one ``put_many`` with the batch's spend per ``--batch`` answers. Every
half million answers it prints the microseconds per answer spent in each, the load average and the
process's resident memory. ``--checkpoint-pages`` overrides how many write-ahead log pages the cache
lets build up before folding them into the file (pipeline/label/cache.py, ``_CHECKPOINT_PAGES``), to
compare settings in one session. Numbers, not assertions: compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.keys import text_key  # noqa: E402
from pipeline.label import cache as cache_mod  # noqa: E402

SEGMENT = 500_000


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def run(folder: Path, rows: int, batch: int, classes: int) -> None:
    probs = np.random.default_rng(0).dirichlet(np.ones(classes), size=batch).astype(np.float32)
    lookup = commit = 0.0
    done = since = 0
    print(f"{'answers':>10}  {'lookup us':>9}  {'commit us':>9}  load  rss GB  (checkpoint every "
          f"{cache_mod._CHECKPOINT_PAGES:,} pages)", flush=True)
    with cache_mod.LabelCache(folder) as cache:
        while done < rows:
            keys = [text_key(f"text {done + i}") for i in range(batch)]
            t0 = time.perf_counter()
            cache.get_many("bench", keys)
            t1 = time.perf_counter()
            cache.put_many("bench", dict(zip(keys, probs)), {"calls": 1, "texts_sent": batch})
            t2 = time.perf_counter()
            lookup, commit = lookup + t1 - t0, commit + t2 - t1
            done, since = done + batch, since + batch
            if since >= SEGMENT or done >= rows:
                print(f"{done:>10,}  {lookup / since * 1e6:>9.1f}  {commit / since * 1e6:>9.1f}  "
                      f"{os.getloadavg()[0]:>4.1f}  {rss_gb():>6.2f}", flush=True)
                lookup = commit = 0.0
                since = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--batch", type=int, default=4096, help="answers per lookup and per committed batch")
    ap.add_argument("--classes", type=int, default=77, help="probabilities per answer")
    ap.add_argument("--checkpoint-pages", type=int, default=None)
    args = ap.parse_args()
    if args.checkpoint_pages is not None:
        cache_mod._CHECKPOINT_PAGES = args.checkpoint_pages
    with tempfile.TemporaryDirectory(prefix="distill-cache-bench-") as tmp:
        run(Path(tmp), args.rows, args.batch, args.classes)


if __name__ == "__main__":
    main()
