"""Monitor flow: one run of the production monitor, as a Prefect flow (scheduled by flows/deploy.py).

    python -m flows.monitor          # or: distill monitor (same run, no Prefect)

The logic is pipeline.monitor.run_monitor; the flow adds retries, a markdown artifact with the numbers,
and (inside run_monitor) the ``distill.monitor.drift`` event that triggers the retrain deployment.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows import named_run


@task(name="monitor-run", retries=1, retry_delay_seconds=30)
def monitor_once(root: str, bundle: str | None, data: str | None, teacher_dir: str | None, log_url: str | None):
    from pipeline.config import load_params
    from pipeline.monitor import run_monitor

    params = load_params(Path(root) / "params.yaml")
    result = run_monitor(params, bundle_dir=bundle, ingested_path=data, teacher_dir=teacher_dir, log_url=log_url,
                         root=root)
    return result.summary


@flow(name="monitor", flow_run_name=named_run("monitor"), log_prints=True)
def monitor(root: str = ".", bundle: str | None = None, data: str | None = None, teacher_dir: str | None = None,
            log_url: str | None = None) -> dict:
    """Read the prediction-log window, compare with the teacher, save Evidently snapshots, alert on breaches.

    ``bundle``, ``data`` and ``teacher_dir`` default to the stage outputs under ``root`` (dvc.yaml's paths)."""
    summary = monitor_once(root, bundle, data, teacher_dir, log_url)
    get_run_logger().info("monitor: %s (%s rows)", summary.status, summary.rows)
    create_markdown_artifact(key="monitor-summary", description="Latest monitor run", markdown="\n".join([
        f"# Monitor: {summary.status}", "",
        f"rows {summary.rows}, drift share {summary.drift['drift_share']}, teacher agreement "
        f"{summary.teacher['agreement']} on {summary.teacher['rows']} rows", "",
        "```json", json.dumps(asdict(summary.verdict), indent=2, default=str)[:4000], "```"]))
    return summary.to_dict()


if __name__ == "__main__":
    monitor()
