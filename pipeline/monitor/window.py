"""Which prediction-log rows one monitor run looks at: the last ``window_minutes``, or since the last run."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.io import read_json, write_json


def window_bounds(window_minutes: float | None, state_path: str | Path, now: float | None = None) -> tuple[float | None, float]:
    """(since, until) in epoch seconds. With no window, ``since`` is where the previous run stopped."""
    until = time.time() if now is None else now
    if window_minutes is not None:
        return until - window_minutes * 60.0, until
    path = Path(state_path)
    since = read_json(path).get("until") if path.exists() else None
    return since, until


def remember_window(state_path: str | Path, until: float) -> None:
    write_json(state_path, {"until": until})


def read_window(log_url: str | None, since: float | None, until: float, max_rows: int):
    """The window's rows with text (rows logged without text cannot be described or compared)."""
    from pipeline import predlog

    engine, tbl = predlog.connect(log_url)
    try:
        frame = predlog.read_window(engine, tbl, since=since, until=until)
        gaps = [g for g in predlog.read_gaps(engine, since) if g["detected_at"] < until]
    finally:
        engine.dispose()
    lost = {"rows": int(sum(g["lost"] for g in gaps)), "runs": gaps}
    # The monitor judges the student: where the cascade let the teacher answer, ``label`` is the teacher's,
    # so the student's own answer (``student_label``) takes its place; ``served_label`` keeps what was sent.
    frame["served_label"] = frame["label"]
    frame["deferred"] = frame["source"].eq("teacher") if "source" in frame else False
    if "student_label" in frame:
        frame["label"] = frame["student_label"].fillna(frame["label"])
    without_text = int(frame["text"].isna().sum())
    frame = frame[frame["text"].notna()]
    if len(frame) > max_rows:
        frame = frame.iloc[-max_rows:]
    frame = frame.reset_index(drop=True)
    frame.attrs["lost"] = lost  # rows acknowledged in the window that never reached the log (predlog_gaps)
    return frame, without_text
