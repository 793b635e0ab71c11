"""Retrain flow: every DVC stage as a Prefect task, then push outputs, register and publish a summary.

    distill retrain            # or: python -m flows.retrain

Runs against Prefect's ephemeral local server by default and against PREFECT_API_URL when set.
Because each task is ``dvc repro --single-item <stage>``, the flow and a plain ``dvc repro`` share
one cache and one dvc.lock: unchanged stages are skipped by DVC. Each task waits for the stages whose
outputs it reads (dvc.yaml's edges), so the run graph in the UI is DVC's pipeline graph.

The run ends Completed when the gate passed (or no gate ran), and **Failed** with the failing checks in
its message when the gate failed: the bundle is then registered as rejected, and the flow's result is a
:class:`GateFailed` error carrying the same summary dict a passing run returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows import fmt, named_run, pct, tag_run
from pipeline import dvcops
from pipeline.errors import DistillError

# Stages that call out to a teacher (possibly over the network) get retries; the rest are
# deterministic, so a retry would only repeat the same failure.
STAGE_RETRIES = {"label": 2}


class GateFailed(DistillError):
    """The retrain ran, and its student failed the evaluation gate; ``result`` is the flow's summary."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


@task
def dvc_stage(name: str, root: str) -> dict:
    logger = get_run_logger()

    def line(text: str) -> None:  # the stage's own WARNING and ERROR lines keep their level in the task log
        level = "error" if " ERROR " in text else "warning" if " WARNING " in text else "info"
        getattr(logger, level)(text)

    result = dvcops.repro_stage(name, root, on_line=line)
    return {"stage": result.stage, "ran": result.ran, "seconds": result.seconds}


@task(name="dvc-push", retries=2, retry_delay_seconds=5)
def push_outputs(root: str) -> str:
    return dvcops.push(root)


def _read(root: str, name: str) -> dict:
    import json

    from pipeline import outputs

    path = outputs.path(name, root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def headline(root: str, gate: bool | None, registered: str | None) -> tuple[str, list[tuple[str, str]]]:
    """The verdict line and the few numbers an operator looks at first (rounded): the summary stage's
    headline numbers (pipeline/summary.py), computed from the stage records the run left."""
    from pipeline.summary import summarize as headline_numbers

    ev = _read(root, "evaluate_metrics")
    top = headline_numbers(_read(root, "label_metrics"), _read(root, "export_metrics"), ev)
    verdict = {True: "gate PASSED", False: "gate FAILED", None: "no gate ran"}[gate]
    if registered:
        verdict += f", {registered} registered" + (" as candidate" if gate else " as rejected")
    rows = [
        ("student int8 accuracy (gold test)", pct(top["accuracy"])),
        ("teacher accuracy (gold test)", pct(ev.get("gold.teacher.accuracy"))),
        ("retention (student / teacher)", pct(top["retention"])),
        ("agreement with the teacher", pct(top["agreement"])),
        ("gate checks failed", f"{fmt(ev.get('failed_checks'))} of {fmt(ev.get('checks'))}"),
        ("int8 model size", f"{fmt(top['size_mb'], 3)} MB"),
        ("int8 texts/s", fmt(top["texts_s"])),
    ]
    return verdict, rows


def summarize(root: str, runs: list[dict], pushed: str | None, gate: bool | None = None,
              registered: str | None = None) -> str:
    """The run summary in markdown: the verdict, headline numbers, cost, stages and where the details are."""
    from pipeline.config import load_params
    from pipeline.cost import cost_lines, pipeline_cost

    verdict, rows = headline(root, gate, registered)
    lines = [f"# Retrain: {verdict}", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    cost = pipeline_cost(Path(root), load_params(Path(root) / "params.yaml"))
    if cost is not None:
        lines += ["", "## Cost", ""] + [f"- {line.strip()}" for line in cost_lines(cost)]
    lines += ["", "## Stages", "", "| stage | ran | seconds |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {'yes' if r['ran'] else 'skipped (unchanged)'} | {fmt(r['seconds'], 3)} |" for r in runs]
    files = [name for names in dvcops.metrics_files(root).values() for name in names if (Path(root) / name).exists()]
    lines += ["", "Details: the `gate-report` artifact, and " + ", ".join(f"`{f}`" for f in files) + " in the project.",
              "", f"DVC push: {pushed or 'not pushed'}"]
    return "\n".join(lines)


@flow(name="retrain", flow_run_name=named_run("retrain"), log_prints=True,
      task_runner=ThreadPoolTaskRunner(max_workers=1))
def retrain(root: str = ".", push: bool = True):
    """Run the batch pipeline stage by stage; push to the DVC remote; register; publish a summary artifact."""
    from pipeline.config import load_params

    load_params(Path(root) / "params.yaml")  # fail fast, naming the key, before any stage runs
    tag_run("retrain")
    futures: dict[str, Any] = {}
    runs = []
    for name, upstream in dvcops.stage_graph(root).items():
        stage = dvc_stage.with_options(name=f"dvc:{name}", retries=STAGE_RETRIES.get(name, 0))
        futures[name] = stage.submit(name, root, wait_for=[futures[u] for u in upstream])
        runs.append(futures[name].result())  # one stage at a time (DVC locks the repository); raises if it failed
    pushed = push_outputs(root) if push and dvcops.has_remote(root) else None
    report = publish_gate(root)
    gate = report.passed if report is not None else None
    registered = register_candidate(root) if report is not None else None
    create_markdown_artifact(key="retrain-summary", markdown=summarize(root, runs, pushed, gate, registered),
                             description="Retrain verdict, headline numbers, cost and stages")
    create_table_artifact(key="retrain-stages", table=runs, description="DVC stages of this retrain run")
    result = {"stages": runs, "pushed": pushed, "gate_passed": gate, "registered": registered}
    if gate is False:
        failing = gate_failing(report)
        message = f"gate failed on {len(failing)} check(s): {', '.join(failing[:6])}" + (" ..." if len(failing) > 6 else "")
        tag_run("gate:failed")
        get_run_logger().error("%s; %s registered as rejected", message, registered)
        return Failed(message=message, data=GateFailed(message, result))
    tag_run("gate:passed" if gate else "gate:none")
    return Completed(message=f"gate passed, {registered} registered as candidate" if gate else "no gate ran",
                     data=result)


def run(root: str = ".", push: bool = True) -> dict:
    """Run the flow and return its summary dict whatever the gate said (what the demo and tests read)."""
    state = retrain(root=root, push=push, return_state=True)
    out = state.result(raise_on_failure=False)
    if isinstance(out, GateFailed):
        return out.result
    if isinstance(out, BaseException):
        raise out
    return out


def gate_failing(gate) -> list[str]:
    """The failing checks of a GateReport, short: ``gold/accuracy_paired_upper 0.7117 < 0.9005`` (the int8
    student's, which is served)."""
    checks = [c for c in gate.raw.get("checks", []) if not c.get("passed")]
    served = [c for c in checks if c.get("model") == "student_int8"] or checks
    return [f"{c['suite']}/{c['metric']} {fmt(c.get('value'))} {'<' if c.get('comparison') == '>=' else '>'} "
            f"{fmt(c.get('threshold'))}" for c in served]


def publish_gate(root: str):
    """Publish the gate report as a Prefect artifact; the gate (a GateReport), or None when no gate ran."""
    from pipeline import outputs
    from pipeline.release.register import read_gate

    report = outputs.path("gate_report", root)
    if not report.is_file():
        return None
    create_markdown_artifact(key="gate-report", markdown=report.read_text(encoding="utf-8"),
                             description="Evaluation gate: verdict and per-suite numbers")
    return read_gate(outputs.path("gate", root))


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
