"""Canary flow: roll the registry's candidate out step by step, then promote, hold or roll back.

    distill canary [--params params.yaml]        # or: python -m flows.canary

Each step (``canary.steps``) gives the canary a larger traffic share, waits for ``canary.min_requests``
canary predictions in the prediction log, and judges them (pipeline/canary.py). The first failing step
rolls back (canary alias cleared, production untouched); a step starved of traffic holds; all steps
passing promotes. Every decision lands in the registry history with its numbers (actor ``canary-flow``).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline import canary as lib


@task(cache_policy=NO_CACHE)
def start_rollout(params) -> dict | None:
    """The rollout's start, or None when the registry has no candidate (e.g. the retrain gate failed)."""
    from pipeline.registry import open_registry

    with open_registry(params.registry) as reg:
        try:
            return lib.begin(reg).__dict__
        except lib.NoCandidate as exc:
            get_run_logger().info("%s", exc)
            return None


@task(cache_policy=NO_CACHE)
def run_step(params, version: str, weight: float) -> dict:
    """Set the weight, wait for traffic, measure and judge one step."""
    from pipeline import predlog
    from pipeline.registry import open_registry

    cfg = params.canary
    engine, tbl = predlog.connect(params.serve.prediction_log_url)
    try:
        before = lib.scrape_canary_counters(cfg.server_url)
        with open_registry(params.registry) as reg:
            since = lib.set_step(reg, version, weight)
        seen = lib.wait_for_traffic(engine, tbl, version, since, cfg.min_requests, cfg.step_timeout_s, cfg.poll_s)
        after = lib.scrape_canary_counters(cfg.server_url)
        numbers = lib.measure_step(engine, tbl, version, since, before, after, params)
        verdict = lib.judge(weight, numbers, cfg)
        get_run_logger().info("step %.0f%%: %s after %d canary predictions %s %s", weight * 100, verdict.decision,
                              seen, numbers, verdict.problems)
        return verdict.to_dict()
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def decide(params, version: str, verdicts: list[dict]) -> str:
    from pipeline.registry import open_registry

    with open_registry(params.registry) as reg:
        return lib.finish(reg, version, [lib.Verdict(**v) for v in verdicts])


@flow(name="canary", log_prints=True)
def canary(params_path: str = "params.yaml") -> dict:
    """Walk the candidate through ``canary.steps``; stop at the first step that does not pass."""
    from pipeline.config import load_params

    params = load_params(params_path)
    start = start_rollout(params)
    if start is None:
        return {"decision": "none", "version": None, "direct": False, "steps": []}
    if start["direct"]:
        return {"decision": "promote", "version": start["version"], "direct": True, "steps": []}
    verdicts = []
    for weight in params.canary.steps:
        verdict = run_step(params, start["version"], weight)
        verdicts.append(verdict)
        if verdict["decision"] != "pass":
            break
    decision = decide(params, start["version"], verdicts)
    lines = [f"# Canary {start['version']} vs {start['production']}: **{decision}**", "",
             "| weight | decision | rows | p95 ms | p99 ms | error rate | stable agr. | teacher agr. | problems |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        n = v["numbers"]
        lines.append(f"| {v['weight']} | {v['decision']} | {n.get('canary_rows')} | {n.get('p95_ms')} | {n.get('p99_ms')} "
                     f"| {n.get('error_rate')} | {n.get('stable_agreement')} | {n.get('teacher_agreement')} "
                     f"| {'; '.join(v['problems'])} |")
    create_markdown_artifact(key="canary-decision", markdown="\n".join(lines),
                             description="Canary steps, their numbers and the decision")
    return {"decision": decision, "version": start["version"], "direct": False, "steps": verdicts}


if __name__ == "__main__":
    canary()
