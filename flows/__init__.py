"""Prefect flows. They compose library calls from pipeline/; they do not compute."""

from __future__ import annotations

from pipeline.numbers import fmt, pct

__all__ = ["fmt", "named_run", "pct", "tag_run"]


def named_run(kind: str, root_parameter: str | None = "root"):
    """``flow_run_name`` for a flow: ``<kind> <date time> <commit>`` of the project the run works on."""

    def name() -> str:
        from prefect.runtime import flow_run

        from pipeline.registry.lineage import run_name

        root = (flow_run.parameters or {}).get(root_parameter, ".") if root_parameter else "."
        return run_name(kind, root)

    return name


def tag_run(*tags: str) -> None:
    """Add tags to the running flow run (``distill``, its kind, its outcome), so the UI can filter on them.

    The decorator takes no tags and a direct call has no deployment, so the run tags itself."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if not flow_run.id:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(flow_run.id).tags
        client.update_flow_run(flow_run.id, tags=sorted(set(current) | {"distill", *tags}))
