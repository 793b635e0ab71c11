"""register_from_gate on a real SQLite registry: a failing gate is registered rejected, never candidate;
a gate report registers only the bundle it judged; a rejected bundle is made a candidate only by an
operator's override, recorded in the history."""

import json

import pytest

from pipeline.config.registry import RegistryConfig
from pipeline.release.register import ReleaseError, register_from_gate

pytestmark = pytest.mark.unit


DIGEST = ""  # the real bundle's model digest, set by the fixture below


@pytest.fixture(autouse=True)
def _real_bundle(bundles):
    """Registration loads the bundle as the server would, so every test here uses a copy of a real one."""
    global DIGEST, SOURCE
    SOURCE = bundles["good_a"]
    DIGEST = json.loads((SOURCE / "bundle.json").read_text())["digest"]


def bundle(tmp_path):
    import shutil

    d = tmp_path / "bundle"
    shutil.copytree(SOURCE, d)
    return d


def write_gate(path, passed, digest=None):
    path.write_text(json.dumps({"passed": passed, "bundle_digest": digest or DIGEST, "checks": [
        {"suite": "gold", "metric": "accuracy", "model": "student_int8", "value": 0.9 if passed else 0.5,
         "threshold": 0.85, "passed": passed}]}))
    return path


def sqlite_registry(tmp_path):
    from pipeline.registry import open_registry

    return open_registry(RegistryConfig(url=f"sqlite:///{tmp_path / 'reg.db'}", artifacts_dir=str(tmp_path / "artifacts")))


@pytest.mark.parametrize("passed", [True, False])
def test_gate_verdict_decides_candidate(tmp_path, passed):
    from pipeline.registry import open_registry

    gate = write_gate(tmp_path / "gate.json", passed)
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
    gate = write_gate(tmp_path / "gate.json", True)
    params = parse_params({"ingest": {}})  # registry defaults are relative: sqlite:///.distill/registry.db
    made = bundle(tmp_path)
    first = register_from_gate(params, made, gate, repo_dir=project)
    again = register_from_gate(params, made, gate, repo_dir=project)
    assert again.id == first.id
    assert (project / ".distill" / "registry.db").exists() and not (elsewhere / ".distill").exists()
    with open_registry(RegistryConfig(), root=project) as reg:
        assert [v.id for v in reg.list_versions()] == [first.id]


def test_a_gate_report_of_another_bundle_is_refused_and_nothing_is_registered(tmp_path):
    gate = write_gate(tmp_path / "gate.json", True, digest="b" * 64)
    with sqlite_registry(tmp_path) as reg:
        with pytest.raises(ReleaseError, match="belongs to another bundle"):
            register_from_gate(None, bundle(tmp_path), gate, repo_dir=tmp_path, registry=reg)
        assert reg.list_versions() == []


def test_a_gate_report_that_names_no_bundle_is_refused(tmp_path):
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"passed": True, "checks": []}))
    with sqlite_registry(tmp_path) as reg:
        with pytest.raises(ReleaseError, match="names no bundle_digest"):
            register_from_gate(None, bundle(tmp_path), gate, repo_dir=tmp_path, registry=reg)
        assert reg.list_versions() == []


def test_a_rejected_bundle_becomes_candidate_only_when_forced_with_a_reason(tmp_path):
    made = bundle(tmp_path)
    with sqlite_registry(tmp_path) as reg:
        rejected = register_from_gate(None, made, write_gate(tmp_path / "failed.json", False), repo_dir=tmp_path,
                                      registry=reg)
        assert rejected.rejected
        passing = write_gate(tmp_path / "passed.json", True)
        with pytest.raises(ReleaseError, match=f"already registered as {rejected.id}, which the gate rejected"):
            register_from_gate(None, made, passing, repo_dir=tmp_path, registry=reg)
        assert reg.get_alias("candidate").version is None and reg.get_version(rejected.id).rejected
        forced = register_from_gate(None, made, passing, repo_dir=tmp_path, registry=reg,
                                    force_reason="gold labels of the failing slice were wrong")
        assert forced.id == rejected.id and not forced.rejected
        assert reg.get_alias("candidate").version.id == rejected.id
        override = [e for e in reg.history() if e.action == "reinstate"]
        assert len(override) == 1 and "gold labels of the failing slice were wrong" in override[0].reason
        assert "gold/accuracy" in override[0].reason  # the checks it had failed stay on record
        assert len(reg.list_versions()) == 1
