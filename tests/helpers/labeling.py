"""Small ingested tables and params files for label-stage tests (the ingest contract of docs/contracts.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

WORDS = "refund card payment late parcel courier address invoice charge tracking account balance".split()


def texts(n: int, start: int = 0) -> list[str]:
    return [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]} request number {i}" for i in range(start, start + n)]


def write_ingested(path: Path, n: int, start: int = 0) -> Path:
    """``n`` rows: splits cycle labeled/unlabeled/unlabeled/test."""
    splits = ["labeled", "unlabeled", "unlabeled", "test"]
    frame = pd.DataFrame({
        "id": [f"r{i}" for i in range(start, start + n)],
        "text": texts(n, start),
        "label": [["billing", "delivery", "other"][i % 3] for i in range(start, start + n)],
        "split": [splits[i % 4] for i in range(start, start + n)],
        "source": "test",
        "group": None,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def write_params(path: Path, cache_dir: Path, function: str = "tests.helpers.teachers:hashed", **label) -> Path:
    data = {
        "seed": 7,
        "ingest": {},
        "teacher": {"kind": "python",
                    "python": {"function": function, "labels": ["billing", "delivery", "other"]}},
        "label": {"cache_dir": str(cache_dir), "batch_size": 4, "retries": 1, "progress_every_s": 0.5, **label},
        "augment": {"variants": 0},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def calls(log: Path) -> list[str]:
    """Text hashes sent to the teacher, one per line (empty when it was never called)."""
    return log.read_text().split() if log.exists() else []
