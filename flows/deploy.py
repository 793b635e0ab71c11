"""Every schedule and trigger of the distill flows, from one place; serves them from this process.

    python -m flows.deploy            # PREFECT_API_URL=http://127.0.0.1:4200/api (prefect server start)

- retrain: nightly cron, and again whenever the monitor emits ``distill.monitor.drift`` (a breach);
- monitor: every ``MONITOR_INTERVAL_S`` seconds;
- canary: after each completed retrain run (flows/canary.py, when that flow is in the tree).

infra/prefect/prefect.yaml carries the same schedules and triggers for a work pool in production.
"""

from __future__ import annotations

from pathlib import Path

RETRAIN_CRON = "0 3 * * *"
MONITOR_INTERVAL_S = 3600
DRIFT_EVENT = "distill.monitor.drift"  # = params.yaml monitor.event
CANARY_ENTRYPOINT = "flows/canary.py:canary"


def retrain_on_drift(root: str = "."):
    """Run the retrain deployment when the monitor reports a breach (at most once per hour)."""
    from datetime import timedelta

    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(name="retrain-on-drift", expect={DRIFT_EVENT},
                                  match={"prefect.resource.id": "distill.monitor"}, posture="Reactive",
                                  threshold=1, within=timedelta(hours=1), parameters={"root": root, "push": True})


def canary_after_retrain():
    """Start the canary when a retrain flow run completes (the canary exits early without a new candidate)."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(name="canary-after-retrain", expect={"prefect.flow-run.Completed"},
                                  match_related={"prefect.resource.role": "flow", "prefect.resource.name": "retrain"},
                                  posture="Reactive", threshold=1)


def deployments(root: str = ".") -> list:
    """The runner deployments: retrain (cron + drift trigger), monitor (interval), canary (after retrain)."""
    from flows.monitor import monitor
    from flows.retrain import retrain

    out = [
        retrain.to_deployment(name="retrain-nightly", cron=RETRAIN_CRON, parameters={"root": root, "push": True},
                              triggers=[retrain_on_drift(root)]),
        monitor.to_deployment(name="monitor-hourly", interval=MONITOR_INTERVAL_S, parameters={"root": root}),
    ]
    if (Path(root) / CANARY_ENTRYPOINT.split(":")[0]).exists():
        from prefect.flows import load_flow_from_entrypoint

        canary = load_flow_from_entrypoint(str(Path(root) / CANARY_ENTRYPOINT))
        out.append(canary.to_deployment(name="canary-on-retrain", triggers=[canary_after_retrain()]))
    return out


def main() -> None:
    from prefect import serve

    serve(*deployments("."))


if __name__ == "__main__":
    main()
