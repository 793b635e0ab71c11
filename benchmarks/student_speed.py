"""Student speed on BANKING77 test texts: featurization, torch fp32 and onnxruntime int8 end to end.

    python benchmarks/student_speed.py --checkpoint models/student/checkpoint.pt --bundle models/bundle

Prints a table: texts/s at batch 64 with 1 and 2 threads (featurization included), and p50/p99
single-text latency. Numbers, not assertions: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.timing import latency_summary, throughput

BANKING77_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77" / "test.csv"


def _rate(fn, texts, batch):
    return throughput(fn, texts, batch)


def _latency(fn, texts, n=300):
    lat = latency_summary(fn, texts[:n])
    return lat["p50_ms"], lat["p99_ms"]


def main() -> None:
    import pandas as pd
    import torch

    from pipeline.bundle import load_bundle
    from pipeline.distill.checkpoint import load_student

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="models/student/checkpoint.pt")
    ap.add_argument("--bundle", default="models/bundle")
    ap.add_argument("--data", default=str(BANKING77_TEST))
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()
    student = load_student(args.checkpoint)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        bundle = load_bundle(args.bundle, threads=threads)
        feat = bundle.featurizer

        def torch_fp32(batch):
            with torch.no_grad():
                return torch.softmax(student.model(torch.from_numpy(feat(batch))), dim=1).numpy()

        for name, fn in (("featurize", feat), ("torch fp32", torch_fp32),
                         ("onnx fp32", lambda b: bundle.predict_proba(b, "fp32")),
                         ("onnx int8", lambda b: bundle.predict_proba(b, "int8"))):
            rate = _rate(fn, texts, args.batch)
            p50, p99 = _latency(fn, texts)
            rows.append((name, threads, rate, p50, p99))
    print(f"{len(texts)} BANKING77 test texts, batch {args.batch} (featurization included)")
    print(f"{'path':<12} {'threads':>7} {'texts/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, threads, rate, p50, p99 in rows:
        print(f"{name:<12} {threads:>7} {rate:>10,.0f} {p50:>8.3f} {p99:>8.3f}")


if __name__ == "__main__":
    main()
