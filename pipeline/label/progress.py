"""Progress of a labeling run: a rich progress bar (rate, ETA) on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("distill.label")


class Progress:
    """Count labeled texts against ``total``; show rate and ETA."""

    def __init__(self, total: int, every_s: float = 10.0, description: str = "labeling"):
        self.total, self.done, self.every_s = total, 0, every_s
        self.started = self._last = time.perf_counter()
        self._bar = None
        if total and sys.stderr.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeRemainingColumn)

            self._bar = RichProgress(TextColumn(description), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"),
                                     TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, rate="")

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int) -> None:
        self.done += n
        rate = self.rate
        if self._bar is not None:
            self._bar.update(self._task, advance=n, rate=f"{rate:.1f} texts/s")
            return
        now = time.perf_counter()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            log.info("labeled %d/%d texts (%.0f%%), %.1f texts/s, ETA %.0f s", self.done, self.total,
                     100.0 * self.done / max(self.total, 1), rate, eta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
