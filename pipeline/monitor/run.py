"""One monitor run: read the window, compare with the teacher, build and save reports, judge, alert.

    distill monitor [--params params.yaml] [--bundle models/bundle] [--data data/ingested.parquet]
                    [--teacher-dir models/teacher] [--log-url sqlite:///.distill/predictions.db]

Writes ``monitor.report_path`` (numbers and verdict of this run), two snapshots into the Evidently
workspace, and a feedback part when the student and the teacher disagreed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import write_json
from pipeline.monitor.summary import MonitorSummary
from pipeline.monitor.verdict import worst_classes

log = logging.getLogger("distill.monitor")


@dataclass
class MonitorResult:
    summary: MonitorSummary
    alerted: bool

    @property
    def status(self) -> str:
        return self.summary.status


def current_frame(window, vocab):
    """The window as the drift report sees it: text, descriptors, predicted label, confidence."""
    import pandas as pd

    from pipeline.monitor.descriptors import describe

    texts = window["text"].astype(str).tolist()
    return pd.concat([pd.DataFrame({"text": texts}), describe(texts, vocab),
                      window[["label", "confidence"]].reset_index(drop=True)], axis=1)


def run_monitor(params, *, bundle_dir: str | Path | None = None, ingested_path: str | Path | None = None,
                teacher_dir: str | Path | None = None, log_url: str | None = None, root: str | Path = ".",
                now: float | None = None, teacher=None, reference=None, emit: bool = True) -> MonitorResult:
    """Run the monitor once. ``reference`` ((frame, vocabulary)) and ``teacher`` may be passed in to reuse them.

    The bundle, ingested table and teacher default to the stage outputs under ``root`` (pipeline.outputs).
    """
    from pipeline import outputs
    from pipeline.keys import text_key
    from pipeline.monitor import alert, feedback, reports, verdict, window as win
    from pipeline.monitor.reference import load_reference
    from pipeline.monitor.teacher_sample import teacher_labels

    cfg = params.monitor
    root = Path(root)
    bundle_dir = bundle_dir if bundle_dir is not None else outputs.path("bundle", root)
    ingested_path = ingested_path if ingested_path is not None else outputs.path("ingested", root)
    teacher_dir = teacher_dir if teacher_dir is not None else outputs.path("teacher", root)
    at = lambda p: Path(p) if Path(p).is_absolute() else root / p  # noqa: E731
    started = time.perf_counter()
    since, until = win.window_bounds(cfg.window_minutes, at(cfg.state_path), now)
    rows, without_text = win.read_window(log_url, since, until, cfg.max_rows)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(until))
    summary = MonitorSummary(run_id=run_id, window={"since": since, "until": until}, rows=len(rows),
                             rows_without_text=without_text,
                             model_versions=sorted(rows["model_version"].unique().tolist()),
                             report_path=str(at(cfg.report_path)))
    summary.predlog_lost = rows.attrs.get("lost", summary.predlog_lost)
    if summary.predlog_lost["rows"]:
        log.warning("monitor: %d acknowledged predictions never reached the log in this window (server runs %s)",
                    summary.predlog_lost["rows"], ", ".join(g["run_id"] for g in summary.predlog_lost["runs"]))
    if len(rows) < cfg.thresholds.min_rows:
        summary.verdict = verdict.judge(summary, cfg.thresholds)
        log.warning("monitor: %s", summary.verdict.note)
        return _finish(summary, cfg, at, started, until, alerted=False)

    ref_frame, vocab = reference or load_reference(at(ingested_path), at(bundle_dir), cfg.reference_splits,
                                                   cfg.reference_max_rows, params.seed)
    current = current_frame(rows, vocab)

    if teacher is None:
        from pipeline.teachers import load_teacher

        teacher = load_teacher(params.teacher, at(teacher_dir))
    sample = teacher_labels(rows["text"].astype(str).tolist(), teacher, str(at(params.label.cache_dir)),
                            cfg.teacher_budget, params.label.batch_size, params.label.retries)
    keys = rows["text"].astype(str).map(text_key)
    labeled = rows.assign(teacher_label=keys.map(sample.labels))
    labeled = labeled[labeled["teacher_label"].notna()].drop_duplicates("text")
    summary.teacher = {"rows": len(labeled), "agreement": None, "cached": sample.cached, "sent": sample.sent,
                          "calls": sample.calls, "failed": sample.failed,
                          "skipped_for_budget": sample.skipped_for_budget, "fingerprint": sample.fingerprint}

    stamp = reports.now_utc() if now is None else reports.datetime.fromtimestamp(until, reports.timezone.utc)
    meta = {"run_id": run_id, "rows": str(len(rows))}
    drift_snap = reports.drift_snapshot(current, ref_frame, stamp, meta, cfg.thresholds)
    summary.drift = reports.drift_numbers(drift_snap)
    snaps = [drift_snap]
    if len(labeled) >= cfg.thresholds.min_teacher_rows:
        quality_snap = reports.quality_snapshot(labeled, stamp, meta, list(teacher.labels))
        summary.teacher.update(reports.quality_numbers(quality_snap))
        snaps.append(quality_snap)
    elif len(labeled):
        summary.teacher["agreement"] = float((labeled["label"] == labeled["teacher_label"]).mean())
    summary.teacher["worst_classes"] = worst_classes(labeled)

    ws, project = reports.open_project(at(cfg.workspace), cfg.project, list(teacher.labels), cfg.thresholds)
    summary.snapshots = reports.save_snapshots(ws, project, snaps)
    summary.workspace = {"path": str(at(cfg.workspace)), "project_id": str(project.id)}
    html = at(cfg.report_path).with_suffix(".html")
    html.parent.mkdir(parents=True, exist_ok=True)
    drift_snap.save_html(str(html))
    summary.report_html = str(html)

    summary.feedback = feedback.write_part(feedback.disagreements(labeled, cfg.max_feedback_rows),
                                              at(cfg.feedback_dir), run_id, root)
    summary.verdict = verdict.judge(summary, cfg.thresholds)
    alerted = summary.status == "breach"
    if alerted:
        url = os.environ.get(cfg.webhook_url_env)
        payload = alert.alert_payload(summary, summary.report_path, cfg.dashboard_url)
        summary.alert = (alert.send_webhook(url, payload, cfg.webhook_retries, cfg.webhook_backoff_s,
                                               cfg.webhook_timeout_s) if url else
                            {"sent": False, "error": f"{cfg.webhook_url_env} is not set"})
        if not url:
            log.warning("monitor: breach but no webhook URL in $%s", cfg.webhook_url_env)
        if emit:
            summary.event_id = alert.emit_breach_event(cfg.event, summary)
    return _finish(summary, cfg, at, started, until, alerted)


def _finish(summary, cfg, at, started, until, alerted) -> MonitorResult:
    from pipeline.monitor.window import remember_window

    summary.seconds = round(time.perf_counter() - started, 2)
    write_json(at(cfg.report_path), summary.to_dict())
    remember_window(at(cfg.state_path), until)
    from pipeline.numbers import fmt

    (log.warning if alerted else log.info)("monitor %s: %s, %d rows, drift share %s, agreement %s on %d rows, %d disagreements -> feedback",
             summary.run_id, summary.status, summary.rows, fmt(summary.drift["drift_share"]),
             fmt(summary.teacher["agreement"]), summary.teacher["rows"], summary.feedback["rows"])
    return MonitorResult(summary, alerted)
