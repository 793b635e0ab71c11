"""One alert per breaching run: a Slack-compatible webhook message and a Prefect event.

The webhook gets ``{"text": ..., "blocks": [...]}`` (Slack incoming-webhook format; other chat tools
accept the ``text`` field). A webhook that keeps failing after the retries is logged, never fatal: the
report and the event still record the breach.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.monitor.summary import MonitorSummary

log = logging.getLogger("distill.monitor")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def alert_payload(summary: MonitorSummary, report_path: str, dashboard_url: str | None = None) -> dict[str, Any]:
    """The webhook body: headline in ``text``, the numbers and the report location in ``blocks``."""
    breaches = summary.verdict.breaches
    checks = ", ".join(b["check"] for b in breaches)
    drift, teacher = summary.drift, summary.teacher
    text = (f":rotating_light: distill monitor: {len(breaches)} threshold breach(es) ({checks}) in "
            f"{summary.rows} predictions of model {summary.model_versions or '?'}")
    lines = [f"• *{b['check']}*: {_fmt(b['value'])} (limit {_fmt(b['limit'])})"
             + (f" columns {', '.join(b['columns'])}" if b.get("columns") else "") for b in breaches]
    numbers = (f"rows {summary.rows} · drift share {_fmt(drift['drift_share'])} · teacher agreement "
               f"{_fmt(teacher['agreement'])} on {teacher['rows']} rows · mean confidence "
               f"{_fmt(drift.get('mean_confidence'))} · disagreements to feedback {summary.feedback['rows']}")
    worst = teacher.get("worst_classes") or []
    if worst:
        numbers += "\nworst classes against the teacher: " + ", ".join(
            f"{w['class']} {_fmt(w['agreement'])} ({w['rows']} rows)" for w in worst)
    where = f"Report: `{report_path}`" + (f" · Dashboard: <{dashboard_url}>" if dashboard_url else "")
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "distill monitor: drift alert"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": numbers}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": where}]},
        ],
    }


def send_webhook(url: str, payload: dict[str, Any], retries: int, backoff_s: float, timeout_s: float) -> dict[str, Any]:
    """POST ``payload``; retry connection errors, 429 and 5xx with exponential backoff (tenacity). Never raises."""
    import httpx
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

    def retryable(resp) -> bool:  # a 4xx other than 429 will not get better by retrying
        return resp is None or resp.status_code == 429 or resp.status_code >= 500

    last = {"error": ""}

    def post():
        try:
            resp = httpx.post(url, json=payload, timeout=timeout_s)
        except httpx.HTTPError as exc:
            last["error"] = f"{type(exc).__name__}: {exc}"
            return None
        if resp.status_code >= 300:
            last["error"] = f"HTTP {resp.status_code}: {resp.text[:200]}"
        return resp

    retrying = Retrying(stop=stop_after_attempt(retries + 1), retry=retry_if_result(retryable),
                        wait=wait_exponential(multiplier=backoff_s, min=backoff_s), reraise=False)
    try:
        resp = retrying(post)
    except RetryError:
        resp = None
    attempts = retrying.statistics.get("attempt_number", 1)
    if resp is not None and resp.status_code < 300:
        return {"sent": True, "attempts": attempts, "status": resp.status_code}
    log.error("alert webhook failed after %d attempt(s): %s", attempts, last["error"])
    return {"sent": False, "attempts": attempts, "error": last["error"]}


def emit_breach_event(event: str, summary: MonitorSummary) -> str | None:
    """Emit the Prefect event the retrain trigger listens for; returns its id (None if Prefect is unavailable)."""
    try:
        from prefect.events import emit_event
    except ImportError:  # pragma: no cover - prefect is a dependency
        return None
    payload = {
        "rows": summary.rows, "drift_share": summary.drift["drift_share"],
        "agreement": summary.teacher["agreement"], "teacher_rows": summary.teacher["rows"],
        "breaches": [{"check": b["check"], "value": b["value"], "limit": b["limit"]} for b in summary.verdict.breaches],
        "report": summary.report_path, "feedback_rows": summary.feedback["rows"],
    }
    ev = emit_event(event=event, resource={"prefect.resource.id": "distill.monitor", "prefect.resource.name": "monitor"},
                    payload=payload)
    return str(ev.id) if ev is not None else None
