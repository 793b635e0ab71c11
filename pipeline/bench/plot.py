"""Accuracy against texts/s for every row of one or more bench records, as one PNG.

    python -m pipeline.bench.plot bench/banking77/bench.json bench/banking77-few-labels/bench.json \
        --out docs/bench-accuracy-speed.png

One panel per record: the teacher, the student (fp32 torch, int8 onnxruntime) and every peer, at the
most threads the record timed, texts/s on a log axis. Gold-only peers are hollow markers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def points(record: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(label, texts/s, test accuracy, gold only) for every row of a bench record."""
    top = str(max(record["threads"]))
    q, s = record["quality"], record["speed"]
    rows = [("teacher", s["teacher"][top]["texts_per_s"], q["teacher_accuracy"], False),
            ("student fp32", s["student_torch"][top]["texts_per_s"], q["student_fp32_accuracy"], False),
            ("student int8", s["student_int8"][top]["texts_per_s"], q["student_int8_accuracy"], False)]
    for key, peer in (record.get("peers") or {}).items():
        rows.append((key, peer["texts_per_s"], peer["accuracy"], peer["regime"] == "gold_only"))
    return rows


def plot(records: dict[str, dict[str, Any]], out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(6.5 * len(records), 4.8), squeeze=False)
    for ax, (title, record) in zip(axes[0], records.items()):
        for label, speed, acc, gold_only in points(record):
            marker = "*" if label.startswith("student") else ("s" if label == "teacher" else "o")
            ax.scatter([speed], [100 * acc], s=90 if marker == "*" else 45, marker=marker,
                       facecolors="none" if gold_only else None, edgecolors="black" if gold_only else None)
            ax.annotate(label, (speed, 100 * acc), textcoords="offset points", fontsize=8,
                        xytext=(5, -11) if gold_only or label == "student fp32" else (5, 4))  # overlaps apart
        ax.set_xscale("log")
        ax.set_xlabel(f"texts/s at {max(record['threads'])} thread(s), log scale")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{title} (load average {record['machine']['loadavg_1m']:.1f})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.plot", description=__doc__.split("\n")[0])
    parser.add_argument("records", nargs="+", help="bench.json files (one panel each)")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    records = {Path(p).parent.name: json.loads(Path(p).read_text()) for p in args.records}
    print(plot(records, args.out))


if __name__ == "__main__":
    main()
