"""The monitor flow in a real Prefect server (session harness): a breach emits ``distill.monitor.drift``,
the retrain deployment carries the trigger that turns that event into a run, and deployments define the
schedules from one place (flows/deploy.py)."""

from __future__ import annotations

import time

import pytest

from tests.monitor.conftest import shifted_flow_kwargs
from tests.monitor.test_monitor import Receiver

pytestmark = pytest.mark.e2e


def _wait(fetch, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        found = fetch()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def test_shifted_traffic_in_the_flow_emits_the_event_the_retrain_trigger_expects(
        prefect_harness, banking_world, repo_copy, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    from flows.deploy import DRIFT_EVENT, MONITOR_INTERVAL_S, RETRAIN_CRON, deployments
    from flows.monitor import monitor

    # deployments: retrain on a cron + the drift trigger, monitor on an interval (no canary flow in this tree)
    deps = {d.name: d for d in deployments(str(repo_copy))}
    assert set(deps) >= {"retrain-nightly", "monitor-hourly"}
    assert deps["retrain-nightly"].schedules[0].schedule.cron == RETRAIN_CRON
    assert deps["monitor-hourly"].schedules[0].schedule.interval.total_seconds() == MONITOR_INTERVAL_S
    retrain_id = deps["retrain-nightly"].apply()
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name("retrain-on-drift")
    assert automation.trigger.expect == {DRIFT_EVENT}
    assert [(a.type, str(a.deployment_id)) for a in automation.actions] == [("run-deployment", str(retrain_id))]

    # a monitor flow run over shifted traffic
    kwargs = shifted_flow_kwargs(banking_world, repo_copy, tmp_path)
    with Receiver() as hook:
        monkeypatch.setenv("DISTILL_ALERT_WEBHOOK_URL", hook.url)
        state = monitor(**kwargs, return_state=True)
    summary = state.result()
    # the breach is the run's state (named, with the checks), so the UI shows it and an automation can match
    # Prefect's own prefect.flow-run.Breach event
    assert state.name == "Breach" and "teacher_agreement" in state.message, (state.name, state.message)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.state.name == "Breach" and {"distill", "monitor", "monitor:breach"} <= set(run.tags), run.tags
    assert summary["verdict"]["status"] == "breach" and len(hook.bodies) == 1
    assert summary["teacher"]["sent"] == 120 and summary["event_id"]

    def drift_events():
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[DRIFT_EVENT])), limit=50)
        return [e for e in page.events if str(e.id) == summary["event_id"]]

    (event,) = _wait(drift_events)

    def breach_state_events():
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=EventFilter(event=EventNameFilter(name=["prefect.flow-run.Breach"])),
                                      limit=50)
        return [e for e in page.events if e.resource.id == f"prefect.flow-run.{run_id}"]

    assert _wait(breach_state_events), "no prefect.flow-run.Breach event for the monitor run"
    assert event.resource.id == "distill.monitor"  # what the trigger's match selects
    assert event.payload["agreement"] == summary["teacher"]["agreement"] < 0.5
    assert {b["check"] for b in event.payload["breaches"]} >= {"teacher_agreement"}

    def retrain_runs():
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[retrain_id])))
        return [r for r in runs if "auto-scheduled" not in r.tags]  # not the cron's runs: the trigger's

    runs = _wait(retrain_runs, 30)
    assert len(runs) == 1 and runs[0].parameters == {"root": str(repo_copy), "push": True}, runs
