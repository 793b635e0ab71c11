"""Canary flow: roll the registry's candidate out step by step, then promote, hold or roll back.

    distill canary [--params params.yaml]        # or: python -m flows.canary

The logic is pipeline.release.canary.rollout (steps, waits, judging, registry history); the flow adds
a Prefect run around it and publishes the ``canary-decision`` artifact on every path.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import named_run


@task(name="canary-rollout", cache_policy=NO_CACHE)
def run_rollout(params):
    from pipeline.release.canary import rollout

    logger = get_run_logger()
    return rollout(params, on_step=lambda v: logger.info("step %.0f%%: %s %s", v.weight * 100, v.decision,
                                                          "; ".join(v.problems)))


@flow(name="canary", flow_run_name=named_run("canary", root_parameter=None), log_prints=True)
def canary(params_path: str = "params.yaml") -> dict:
    """Walk the candidate through ``canary.steps``; stop at the first step that does not pass."""
    from pipeline.config import load_params
    from pipeline.release.canary import rollout_markdown

    result = run_rollout(load_params(params_path))
    create_markdown_artifact(key="canary-decision", markdown=rollout_markdown(result),
                             description="Canary steps, their numbers and the decision")
    return result.to_dict()


if __name__ == "__main__":
    canary()
