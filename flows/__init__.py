"""Prefect flows. They compose library calls from pipeline/; they do not compute."""

from __future__ import annotations


def named_run(kind: str, root_parameter: str | None = "root"):
    """``flow_run_name`` for a flow: ``<kind> <date time> <commit>`` of the project the run works on."""

    def name() -> str:
        from prefect.runtime import flow_run

        from pipeline.registry.lineage import run_name

        root = (flow_run.parameters or {}).get(root_parameter, ".") if root_parameter else "."
        return run_name(kind, root)

    return name
