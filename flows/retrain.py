"""Retrain flow: every DVC stage as a Prefect task, then push outputs and publish a summary.

    distill retrain            # or: python -m flows.retrain

Runs against Prefect's ephemeral local server by default and against PREFECT_API_URL when set.
Because each task is ``dvc repro --single-item <stage>``, the flow and a plain ``dvc repro`` share
one cache and one dvc.lock: unchanged stages are skipped by DVC.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows import named_run
from pipeline import dvcops

# Stages that call out to a teacher (possibly over the network) get retries; the rest are
# deterministic, so a retry would only repeat the same failure.
STAGE_RETRIES = {"label": 2}


@task(name="dvc-stage-order")
def plan(root: str) -> list[str]:
    return dvcops.stage_order(root)


@task
def dvc_stage(name: str, root: str) -> dict:
    logger = get_run_logger()
    result = dvcops.repro_stage(name, root, on_line=logger.info)
    return {"stage": result.stage, "ran": result.ran, "seconds": result.seconds}


@task(name="dvc-push", retries=2, retry_delay_seconds=5)
def push_outputs(root: str) -> str:
    return dvcops.push(root)


def summarize(root: str, runs: list[dict], pushed: str | None) -> str:
    """A markdown summary: which stages ran, how long, and their metrics files."""
    from pipeline.config import load_params
    from pipeline.cost import cost_lines, pipeline_cost

    lines = ["# Retrain summary", "", "| stage | ran | seconds |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {'yes' if r['ran'] else 'skipped (unchanged)'} | {r['seconds']} |" for r in runs]
    cost = pipeline_cost(Path(root), load_params(Path(root) / "params.yaml"))
    if cost is not None:
        lines += ["", "## Cost", ""] + [f"- {line.strip()}" for line in cost_lines(cost)]
    for stage, files in dvcops.metrics_files(root).items():
        for name in files:
            path = Path(root) / name
            if path.exists():
                lines += ["", f"## {stage}: `{name}`", "", "```json", json.dumps(json.loads(path.read_text()), indent=2)[:4000], "```"]
    lines += ["", f"DVC push: {pushed or 'not pushed'}"]
    return "\n".join(lines)


@flow(name="retrain", flow_run_name=named_run("retrain"), log_prints=True)
def retrain(root: str = ".", push: bool = True) -> dict:
    """Run the batch pipeline stage by stage; push to the DVC remote; publish a summary artifact."""
    from pipeline.config import load_params

    load_params(Path(root) / "params.yaml")  # fail fast, naming the key, before any stage runs
    runs = []
    for name in plan(root):
        runs.append(dvc_stage.with_options(name=f"dvc:{name}", retries=STAGE_RETRIES.get(name, 0))(name, root))
    pushed = push_outputs(root) if push and dvcops.has_remote(root) else None
    create_markdown_artifact(key="retrain-summary", markdown=summarize(root, runs, pushed),
                             description="Stages run by the retrain flow and their metrics")
    gate = publish_gate(root)
    registered = register_candidate(root) if gate is not None else None
    return {"stages": runs, "pushed": pushed, "gate_passed": gate, "registered": registered}


def publish_gate(root: str) -> bool | None:
    """Publish the gate report as a Prefect artifact; the gate's verdict, or None when no gate ran."""
    from pipeline import outputs
    from pipeline.release.register import read_gate

    report = outputs.path("gate_report", root)
    if not report.is_file():
        return None
    create_markdown_artifact(key="gate-report", markdown=report.read_text(encoding="utf-8"),
                             description="Evaluation gate: verdict and per-suite numbers")
    return read_gate(outputs.path("gate", root)).passed


@task(name="register-from-gate")
def register_candidate(root: str) -> str | None:
    """Register the bundle: candidate when the gate passed, rejected with its failing checks otherwise."""
    from pipeline import outputs
    from pipeline.config import load_params
    from pipeline.release.register import register_from_gate

    version = register_from_gate(load_params(Path(root) / "params.yaml"), outputs.path("bundle", root),
                                 outputs.path("gate", root), outputs.path("calibration", root),
                                 actor="retrain-flow", reason="retrain flow", repo_dir=root)
    return version.id


if __name__ == "__main__":
    retrain()
