"""params.yaml `monitor` section: the production monitor (window, teacher sample, thresholds, alerts).

Every threshold that decides an alert lives here; the webhook URL itself is a secret and comes from the
environment variable named by ``webhook_url_env``.
"""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class MonitorThresholds(Section):
    # Fewer rows than this in the window: no verdict, no alert (too little data to judge drift).
    min_rows: int = Field(default=100, ge=1)
    # Fewer teacher-labeled rows than this: agreement is reported but not judged.
    min_teacher_rows: int = Field(default=30, ge=1)
    # Alert when the student agrees with the teacher on less than this share of the sample.
    agreement_floor: float = Field(default=0.75, ge=0.0, le=1.0)
    # Alert when more than this share of the monitored columns drifted (Evidently's per-column tests).
    drift_share_ceiling: float = Field(default=0.5, ge=0.0, le=1.0)
    # Alert when one text descriptor (length, oov_share, nonletter_share) drifted with a p-value below this.
    descriptor_p_value: float = Field(default=0.001, gt=0.0, lt=1.0)


class MonitorConfig(Section):
    # Minutes of prediction log per run; null: everything since the previous run (state_path).
    window_minutes: float | None = Field(default=60.0, gt=0)
    # Where the end of the last window is kept (for window_minutes: null).
    state_path: str = ".distill/monitor_state.json"
    # Most rows read from one window (newest are kept).
    max_rows: int = Field(default=20000, ge=1)
    # Teacher calls (texts not yet in the label cache) one run may pay for; cached texts are free.
    teacher_budget: int = Field(default=200, ge=0)
    # Reference set: ingested rows of these splits with the student's predictions on them. The default is
    # the held-out test split: the student trained on the transfer rows, so their confidence and
    # vocabulary would make ordinary traffic look drifted.
    reference_splits: list[str] = Field(default_factory=lambda: ["test"], min_length=1)
    # Largest reference sample (rows of the reference splits).
    reference_max_rows: int = Field(default=2000, ge=10)
    # Evidently workspace and project that keep one snapshot per run and the dashboard.
    workspace: str = ".distill/evidently"
    # Evidently project name in the workspace.
    project: str = "distill monitor"
    # Latest run's numbers and verdicts.
    report_path: str = "reports/monitor.json"
    # Texts where student and teacher disagree: one Parquet part per run, tracked by DVC (dvc add),
    # read by the label stage into the next transfer set.
    feedback_dir: str = "feedback"
    # Most disagreements added to the next transfer set per run.
    max_feedback_rows: int = Field(default=1000, ge=0)
    # Alerts: the env var holding the Slack-compatible webhook URL; retries with exponential backoff.
    webhook_url_env: str = "DISTILL_ALERT_WEBHOOK_URL"
    # Retries of a failed alert delivery.
    webhook_retries: int = Field(default=3, ge=0)
    # First backoff wait between alert retries (seconds).
    webhook_backoff_s: float = Field(default=1.0, ge=0.0)
    # Timeout of one alert delivery (seconds).
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # Prefect event emitted on a breach; the retrain deployment's trigger listens for it.
    event: str = "distill.monitor.drift"
    # Link put in alerts (e.g. the Evidently UI address); the report path is always included.
    dashboard_url: str | None = None
    thresholds: MonitorThresholds = Field(default_factory=MonitorThresholds)
