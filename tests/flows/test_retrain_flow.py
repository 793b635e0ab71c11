"""The retrain Prefect flow on the default data and params, in a scratch copy of the repository.

Every DVC stage runs as a task (ingest ... export) on a test Prefect server; a second flow run finds
nothing changed and DVC skips every stage. Outputs land at the paths dvc.yaml names and are pushed
to the scratch DVC remote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def default_params(repo: Path, npm_cache: Path, label_cache: Path) -> None:
    """The project's params.yaml unchanged but for where the npm tarball and the label cache live.

    The default data and settings run in full (the gate's floors are set for them, not for a sample).
    Both caches live in pytest's cache folder: a second run on the same machine asks the teacher nothing."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["spamassassin"]["cache_dir"] = str(npm_cache)
    params["label"]["cache_dir"] = str(label_cache)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_retrain_flow_runs_every_stage_then_skips_them(repo_copy: Path, request, prefect_harness, monkeypatch):
    from flows.retrain import GateFailed, retrain
    from pipeline import dvcops

    default_params(repo_copy, request.config.cache.mkdir("spamassassin-npm"), request.config.cache.mkdir("labels-default"))
    stages = dvcops.stage_order(repo_copy)
    assert stages[:2] == ["ingest", "validate"] and {"teacher", "label", "distill", "export"} <= set(stages)

    first_state = retrain(root=str(repo_copy), push=True, return_state=True)
    first = first_state.result()
    assert [r["stage"] for r in first["stages"]] == stages
    assert all(r["ran"] for r in first["stages"]), first["stages"]
    assert first["pushed"] and "pushed" in first["pushed"]
    for name in ("data/ingested.parquet", "data/labels.parquet", "models/teacher/teacher.json",
                 "models/student/checkpoint.pt", "models/bundle/bundle.json", "models/bundle/model.int8.onnx"):
        assert (repo_copy / name).exists(), name
    assert json.loads((repo_copy / "metrics/validate.json").read_text())["success"] is True
    assert (repo_copy / "dvc.lock").exists()
    # The default config passes its own gate, and the bundle becomes the candidate in the project's registry.
    gate = json.loads((repo_copy / "reports/gate.json").read_text())
    assert gate["passed"] is True, f"the default config failed its own gate: {gate['failing']}"
    assert first["gate_passed"] is True
    from pipeline.config.registry import RegistryConfig
    from pipeline.registry import open_registry

    with open_registry(RegistryConfig(), root=repo_copy) as registry:
        version = registry.get_version(first["registered"])
        assert version.gate_passed is True and not version.rejected
        assert registry.get_alias("candidate").version.id == version.id

    second = retrain(root=str(repo_copy), push=False)
    assert not any(r["ran"] for r in second["stages"]), second["stages"]
    assert second["registered"] == first["registered"], "an unchanged bundle is not registered again"

    # A deliberately untrained student (one epoch at a learning rate that moves no weight) fails the gate
    # with the failing suites named, is registered as rejected, and never becomes the candidate.
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["distill"].update({"epochs": 1, "patience": 1, "lr": 1e-9})
    params["export"]["min_label_agreement"] = 0.0  # a constant model: parity is not what this run tests
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    starved_state = retrain(root=str(repo_copy), push=False, return_state=True)
    assert starved_state.is_failed() and "gold/" in starved_state.message, starved_state.message
    error = starved_state.result(raise_on_failure=False)
    assert isinstance(error, GateFailed) and str(error) == starved_state.message
    starved = error.result
    ran = {r["stage"] for r in starved["stages"] if r["ran"]}
    assert {"distill", "export", "evaluate"} <= ran and "label" not in ran  # the teacher is not asked again
    assert starved["gate_passed"] is False
    failing = {c["suite"] for c in json.loads((repo_copy / "reports/gate.json").read_text())["checks"] if not c["passed"]}
    assert "gold" in failing, failing
    assert "## Failing checks" in (repo_copy / "reports/gate.md").read_text()
    with open_registry(RegistryConfig(), root=repo_copy) as registry:
        rejected = registry.get_version(starved["registered"])
        assert rejected.rejected and any("gold/" in reason for reason in rejected.reasons), rejected.reasons
        candidate = registry.get_alias("candidate").version
        assert candidate is None or candidate.id != rejected.id

    # What the Prefect UI shows: runs named for what they are, tagged with their outcome, a task graph
    # with dvc.yaml's edges (not a star), and the artifacts leading with the verdict.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        passed_run = client.read_flow_run(first_state.state_details.flow_run_id)
        failed_run = client.read_flow_run(starved_state.state_details.flow_run_id)
        assert passed_run.name.startswith("retrain 20") and passed_run.state.is_completed()
        assert {"distill", "retrain", "gate:passed"} <= set(passed_run.tags), passed_run.tags
        assert failed_run.state.is_failed() and "gate:failed" in failed_run.tags
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[passed_run.id])))
        by_id = {t.id: t.name.rsplit("-", 1)[0] for t in tasks}
        parents = {by_id[t.id]: {by_id[i.id] for i in t.task_inputs.get("wait_for", [])} for t in tasks}
        graph = dvcops.stage_graph(repo_copy)
        for stage, upstream in graph.items():
            assert parents[f"dvc:{stage}"] == {f"dvc:{u}" for u in upstream}, (stage, parents)
        summary = client.read_latest_artifacts(limit=50)
    latest = {a.key: a for a in summary}
    assert latest["retrain-summary"].data.startswith("# Retrain: gate FAILED, ")
    assert "| student int8 accuracy (gold test) |" in latest["retrain-summary"].data
    assert "```json" not in latest["retrain-summary"].data  # numbers, not a dump


def test_retrain_flow_stops_on_a_params_typo_before_any_stage(repo_copy: Path, prefect_harness):
    from flows.retrain import retrain
    from pipeline.config import ConfigError

    text = (repo_copy / "params.yaml").read_text().replace("  test_fraction:", "  test_fracton:")
    (repo_copy / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match="test_fracton: unknown key"):
        retrain(root=str(repo_copy), push=False)
    assert not (repo_copy / "data").exists()
