"""Disagreements between student and teacher (and texts the cascade deferred), kept for the next transfer set.

Each monitor run that finds any writes one part ``<feedback_dir>/<run id>.parquet`` (columns ``text``,
``student_label``, ``teacher_label``, ``ts``, ``model_version``) and tracks it with ``dvc add``, so the
part is versioned and pushed like any other data. The label stage reads every part (``--feedback``) and
adds the texts to the transfer set (split ``feedback``); the teacher already labeled them here, so the
label cache makes that free.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from pipeline.io import write_parquet

log = logging.getLogger("distill.monitor")


def disagreements(sample, max_rows: int):
    """Rows of ``sample`` (with ``label`` and ``teacher_label``) where the two differ, one per text, plus
    the texts the serving cascade deferred to the teacher (``deferred``): the student was unsure there,
    so they are the most useful rows for the next transfer set. Disagreements come first."""
    deferred = sample["deferred"].astype(bool) if "deferred" in sample else False
    differ = sample["label"] != sample["teacher_label"]
    diff = sample[differ | deferred].assign(_order=(~differ).astype(int)).sort_values("_order", kind="stable")
    diff = diff.drop_duplicates("text")
    out = diff.drop(columns=["student_label"], errors="ignore").rename(columns={"label": "student_label"})
    out = out[["text", "student_label", "teacher_label", "ts", "model_version"]]
    return out.head(max_rows).reset_index(drop=True)


def write_part(frame, feedback_dir: str | Path, run_id: str, repo_root: str | Path | None = None) -> dict:
    """Write one part and ``dvc add`` it when ``repo_root`` is a DVC repository."""
    if frame.empty:
        return {"rows": 0, "path": None, "dvc": False}
    path = Path(feedback_dir) / f"{run_id}.parquet"
    write_parquet(path, frame)
    tracked = False
    root = Path(repo_root) if repo_root is not None else None
    if root is not None and (root / ".dvc").is_dir():
        out = subprocess.run([sys.executable, "-m", "dvc", "add", "-q", str(path.resolve().relative_to(root.resolve()))],
                             cwd=root, capture_output=True, text=True)
        tracked = out.returncode == 0
        if not tracked:
            log.error("dvc add %s failed: %s", path, (out.stderr or out.stdout).strip()[-500:])
    return {"rows": len(frame), "path": str(path), "dvc": tracked}


def read_feedback(feedback_dir: str | Path):
    """Every part's rows, one per text (the latest teacher label wins), or an empty frame."""
    import pandas as pd

    parts = sorted(Path(feedback_dir).glob("*.parquet")) if Path(feedback_dir).is_dir() else []
    if not parts:
        return pd.DataFrame(columns=["text", "student_label", "teacher_label", "ts", "model_version"])
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame.sort_values("ts", kind="stable").drop_duplicates("text", keep="last").reset_index(drop=True)
