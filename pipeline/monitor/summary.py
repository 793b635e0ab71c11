"""The record of one monitor run: what the verdict, the alert, the Prefect flow and the demo read.

Written to ``monitor.report_path`` as JSON (:meth:`MonitorSummary.to_dict`); the numbers of the drift
and quality reports stay the mappings Evidently's results give (``drift``, ``teacher``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class MonitorVerdict:
    status: str  # ok | breach | insufficient_data
    breaches: list[dict[str, Any]] = field(default_factory=list)  # check, value, limit (and columns)
    note: str | None = None


@dataclass
class MonitorSummary:
    run_id: str
    window: dict[str, float]  # since, until (epoch seconds)
    rows: int
    rows_without_text: int
    model_versions: list[str]
    report_path: str
    drift: dict[str, Any] = field(default_factory=lambda: {"drift_share": None, "columns": {}})
    teacher: dict[str, Any] = field(default_factory=lambda: {"rows": 0, "agreement": None})
    feedback: dict[str, Any] = field(default_factory=lambda: {"rows": 0, "path": None, "dvc": False})
    # acknowledged predictions that server runs lost before the log got them, found in this window
    # (pipeline/predlog.py, predlog_gaps): the window holds that many fewer rows than were served
    predlog_lost: dict[str, Any] = field(default_factory=lambda: {"rows": 0, "runs": []})
    verdict: MonitorVerdict | None = None
    snapshots: list[str] = field(default_factory=list)
    workspace: dict[str, str] | None = None
    report_html: str | None = None
    alert: dict[str, Any] | None = None
    event_id: str | None = None
    seconds: float | None = None

    @property
    def status(self) -> str:
        return self.verdict.status if self.verdict is not None else "unjudged"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
