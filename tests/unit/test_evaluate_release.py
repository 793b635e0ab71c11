"""register_from_gate on a real SQLite registry: a failing gate is registered rejected, never candidate."""

import json

import pytest

from pipeline.config.registry import RegistryConfig
from pipeline.evaluate.release import ReleaseError, register_from_gate

pytestmark = pytest.mark.unit


def bundle(tmp_path):
    d = tmp_path / "bundle"
    d.mkdir()
    (d / "bundle.json").write_text(json.dumps({"format": "distill-bundle/1", "labels": ["ham", "spam"], "temperature": 1.0}))
    (d / "model.int8.onnx").write_bytes(b"weights")
    return d


@pytest.mark.parametrize("passed", [True, False])
def test_gate_verdict_decides_candidate(tmp_path, passed):
    from pipeline.registry import open_registry

    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"passed": passed, "checks": [{"suite": "gold", "metric": "accuracy", "model": "student_int8",
                                                              "value": 0.9 if passed else 0.5, "threshold": 0.85,
                                                              "passed": passed}]}))
    calib = tmp_path / "calibration.json"
    calib.write_text(json.dumps({"temperature": 1.7}))
    cfg = RegistryConfig(url=f"sqlite:///{tmp_path / 'reg.db'}", artifacts_dir=str(tmp_path / "artifacts"))
    with open_registry(cfg) as reg:
        version = register_from_gate(None, bundle(tmp_path), gate, calib, repo_dir=tmp_path, registry=reg)
        candidate = reg.get_alias("candidate").version
    assert version.gate_passed is passed and version.rejected is (not passed)
    assert (candidate is not None and candidate.id == version.id) if passed else candidate is None
    if not passed:
        assert any("gold/accuracy" in r for r in version.reasons)
    stored = json.loads((tmp_path / "artifacts").glob("*/bundle.json").__next__().read_text())
    assert stored["temperature"] == 1.7
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["temperature"] == 1.0  # DVC output untouched


def test_missing_gate_report_is_a_clear_error(tmp_path):
    with pytest.raises(ReleaseError, match="gate report not found"):
        register_from_gate(None, bundle(tmp_path), tmp_path / "nope.json", registry=object())


def test_unchanged_bundle_keeps_its_version_and_relative_paths_follow_the_project(tmp_path, monkeypatch):
    """A re-run that changed nothing registers nothing new; the default relative registry lives in the project."""
    from pipeline.config import parse_params
    from pipeline.registry import open_registry

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"passed": True, "checks": []}))
    params = parse_params({"ingest": {}})  # registry defaults are relative: sqlite:///.distill/registry.db
    made = bundle(tmp_path)
    first = register_from_gate(params, made, gate, repo_dir=project)
    again = register_from_gate(params, made, gate, repo_dir=project)
    assert again.id == first.id
    assert (project / ".distill" / "registry.db").exists() and not (elsewhere / ".distill").exists()
    with open_registry(RegistryConfig(), root=project) as reg:
        assert [v.id for v in reg.list_versions()] == [first.id]
