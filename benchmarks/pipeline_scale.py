"""Time and peak memory of each batch stage as the transfer set grows.

    python benchmarks/pipeline_scale.py --rows 20000,200000,1000000 [--epochs 3] [--stages ingest,...]

For each row count it writes a synthetic BANKING77-like Parquet source (BANKING77 training texts, each
made unique with a short reference code, their intents as labels), then runs ingest -> validate ->
teacher -> label -> distill -> export -> evaluate in a scratch folder, each stage as its own process exactly as
dvc.yaml runs it, with a keyword ``python`` teacher (benchmarks/scale_teacher.py) so the numbers are
the pipeline's and not a model's. Per stage it prints wall seconds, microseconds per row and the peak
resident memory of the stage's process (``ru_maxrss`` from ``wait4``, child processes included), plus
the load average. Numbers, not assertions: compare rows of one run.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BANKING77 = REPO.parent / "shared" / "data" / "banking77" / "train.csv"
STAGES = ("ingest", "validate", "teacher", "label", "distill", "export", "evaluate")


def write_source(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` unique texts in Parquet row groups of 100k, written batch by batch (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(BANKING77, newline="", encoding="utf-8") as fh:
        base = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    texts = np.array([t for t, _ in base], dtype=object)
    cats = np.array([c for _, c in base], dtype=object)
    rng = np.random.default_rng(seed)
    schema = pa.schema([("text", pa.string()), ("category", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            pick = rng.integers(0, len(base), n)
            codes = [f"{t} (ref {start + i:08d})" for i, t in enumerate(texts[pick])]
            writer.write_table(pa.table({"text": codes, "category": cats[pick].tolist()}, schema=schema))


def write_params(path: Path, source: Path, epochs: int) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from scale_teacher import labels

    import yaml

    params = {
        "seed": 42,
        "ingest": {"source": {"kind": "parquet", "path": str(source), "text_column": "text",
                              "label_column": "category"},
                   "test_fraction": 0.02, "labeled_fraction": 0.1},
        "validate": {"min_class_ratio": 0.01},
        "teacher": {"kind": "python", "python": {"function": "scale_teacher:predict", "labels": labels()}},
        "label": {"cache_dir": str(path.parent / "cache" / "labels"), "batch_size": 4096, "progress_every_s": 30},
        "distill": {"epochs": epochs, "patience": epochs, "batch_size": 256},
        "export": {"min_label_agreement": 0.0, "max_prob_diff": 1.0},
        "evaluate": {"teacher_cache_dir": str(path.parent / "cache" / "labels"), "user": {"paths": []}},
    }
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commands(work: Path) -> dict[str, list[str]]:
    d = lambda p: str(work / p)  # noqa: E731
    py = [sys.executable, "-m"]
    return {
        "ingest": py + ["pipeline.stages.ingest", "--out", d("data/ingested.parquet"), "--metrics", d("m/ingest.json")],
        "validate": py + ["pipeline.stages.validate", "--data", d("data/ingested.parquet"),
                          "--report", d("r/validation.json"), "--metrics", d("m/validate.json")],
        "teacher": py + ["pipeline.stages.teacher", "--data", d("data/ingested.parquet"), "--out", d("models/teacher")],
        "label": py + ["pipeline.stages.label", "--data", d("data/ingested.parquet"), "--teacher-dir",
                       d("models/teacher"), "--out", d("data/labels.parquet"), "--metrics", d("m/label.json")],
        "distill": py + ["pipeline.stages.distill", "--data", d("data/ingested.parquet"), "--labels",
                         d("data/labels.parquet"), "--teacher-dir", d("models/teacher"), "--out", d("models/student"),
                         "--metrics", d("m/distill.json"),
                         "--plots", d("plots/distill")],
        "export": py + ["pipeline.stages.export", "--checkpoint", d("models/student/checkpoint.pt"), "--data",
                        d("data/ingested.parquet"), "--labels", d("data/labels.parquet"), "--out",
                        d("models/bundle"), "--metrics", d("m/export.json")],
        # a failed gate exits 0 (it is a result): the row measures the stage, not the verdict
        "evaluate": py + ["pipeline.stages.evaluate", "--bundle", d("models/bundle"), "--teacher-dir",
                          d("models/teacher"), "--data", d("data/ingested.parquet"), "--labels",
                          d("data/labels.parquet"), "--suites-root", str(REPO), "--gate", d("r/gate.json"),
                          "--report", d("r/gate.md"), "--metrics", d("m/evaluate.json"), "--calibration",
                          d("models/calibration.json")],
    }


def run_stage(cmd: list[str], work: Path, log: Path) -> tuple[float, float]:
    """Run one stage; (wall seconds, peak RSS in GB of its process tree's largest process)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "benchmarks")]))
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd + ["--params", str(work / "params.yaml")], cwd=work, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2]} failed (exit {proc.returncode}); see {log}")
    return seconds, usage.ru_maxrss / 1024 / 1024  # KB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="20000,200000", help="comma-separated row counts")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--keep", default=None, help="keep the scratch folders under this folder")
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}; choose from {', '.join(STAGES)}")
    results: list[tuple[int, dict[str, tuple[float, float]]]] = []
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for rows in (int(r) for r in args.rows.split(",")):
        root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="distill-scale-"))
        work = root / f"rows-{rows}"
        (work / "data").mkdir(parents=True, exist_ok=True)
        source = work / "source.parquet"
        write_source(source, rows)
        write_params(work / "params.yaml", source, args.epochs)
        cmds = commands(work)
        done: dict[str, tuple[float, float]] = {}
        for stage in stages:
            done[stage] = run_stage(cmds[stage], work, work / "stages.log")
            seconds, gb = done[stage]
            print(f"  {rows:>10,} rows  {stage:<9} {seconds:8.1f} s  {seconds / rows * 1e6:8.1f} us/row  "
                  f"{gb:6.2f} GB peak", flush=True)
        results.append((rows, done))
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| rows | " + " | ".join(stages) + " |")
    print("|---|" + "---|" * len(stages))
    for rows, done in results:
        cells = [f"{done[s][0]:.0f} s, {done[s][0] / rows * 1e6:.0f} µs/row / {done[s][1]:.2f} GB" for s in stages]
        print(f"| {rows:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
