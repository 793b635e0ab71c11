"""Monitor flow: one run of the production monitor, as a Prefect flow (scheduled by flows/deploy.py).

    python -m flows.monitor          # or: distill monitor (same run, no Prefect)

The logic is pipeline.monitor.run_monitor; the flow adds retries, the ``monitor-summary`` artifact
(verdict first, then the numbers against their limits) and tags. A breach ends the run in a Completed
state named **Breach**, whose message names the checks: Prefect emits ``prefect.flow-run.Breach`` for it,
which an automation can match, beside the ``distill.monitor.drift`` event (emitted inside run_monitor)
that triggers the retrain deployment. Every other verdict ends in a plain Completed state.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed

from flows import fmt, named_run, tag_run

BREACH_STATE = "Breach"


@task(name="monitor-run", retries=1, retry_delay_seconds=30)
def monitor_once(root: str, bundle: str | None, data: str | None, teacher_dir: str | None, log_url: str | None):
    from pipeline.config import load_params
    from pipeline.monitor import run_monitor

    params = load_params(Path(root) / "params.yaml")
    result = run_monitor(params, bundle_dir=bundle, ingested_path=data, teacher_dir=teacher_dir, log_url=log_url,
                         root=root)
    return result.summary


def summary_markdown(summary) -> str:
    """Verdict and the numbers an operator checks, rounded; the limits beside the values that broke them."""
    v = summary.verdict
    checks = ", ".join(b["check"] for b in (v.breaches if v else []))
    head = {"breach": f"BREACH ({checks})", "ok": "ok", "insufficient_data": "not enough data"}.get(summary.status,
                                                                                                    summary.status)
    lines = [f"# Monitor: {head}", "", "| | |", "|---|---|",
             f"| rows in the window | {summary.rows} |",
             f"| drift share | {fmt(summary.drift.get('drift_share'))} |",
             f"| teacher agreement | {fmt(summary.teacher.get('agreement'))} on {summary.teacher.get('rows', 0)} rows |",
             f"| disagreements sent to feedback/ | {summary.feedback.get('rows', 0)} |",
             f"| predictions the log lost | {summary.predlog_lost.get('rows', 0)} |"]
    worst = summary.teacher.get("worst_classes") or []
    if worst:
        lines += ["", "## Classes furthest from the teacher", "", "| class | rows | agreement |", "|---|---|---|"]
        lines += [f"| {w.get('class')} | {w.get('rows')} | {fmt(w.get('agreement'))} |" for w in worst[:5]]
    if v and v.breaches:
        lines += ["", "## Breaches", "", "| check | value | limit |", "|---|---|---|"]
        lines += [f"| {b['check']} | {fmt(b['value'])} | {fmt(b['limit'])} |" for b in v.breaches]
    if v and v.note:
        lines += ["", v.note]
    lines += ["", f"Report: `{summary.report_html}`; alert: {summary.alert or 'none'}"]
    return "\n".join(lines)


@flow(name="monitor", flow_run_name=named_run("monitor"), log_prints=True)
def monitor(root: str = ".", bundle: str | None = None, data: str | None = None, teacher_dir: str | None = None,
            log_url: str | None = None):
    """Read the prediction-log window, compare with the teacher, save Evidently snapshots, alert on breaches.

    ``bundle``, ``data`` and ``teacher_dir`` default to the stage outputs under ``root`` (dvc.yaml's paths)."""
    summary = monitor_once(root, bundle, data, teacher_dir, log_url)
    breach = summary.status == "breach"
    (get_run_logger().warning if breach else get_run_logger().info)(
        "monitor: %s (%s rows)", summary.status, summary.rows)
    create_markdown_artifact(key="monitor-summary", description="Latest monitor run: verdict and numbers",
                             markdown=summary_markdown(summary))
    tag_run("monitor", f"monitor:{summary.status}")
    if breach:
        checks = ", ".join(b["check"] for b in summary.verdict.breaches)
        return Completed(name=BREACH_STATE, message=f"breach: {checks}", data=summary.to_dict())
    return Completed(message=summary.status, data=summary.to_dict())


if __name__ == "__main__":
    monitor()
