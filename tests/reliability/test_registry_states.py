"""Catalogue, registry states: bad bundles, damaged stores and databases, wrong requests.

Each is refused with one clear line (``distill registry ...``: exit code 1, ``error: ...``) and the
registry is exactly as before: versions, aliases, history and the artifact store. An alias never ends
on a version the server could not load, and no message shows a database password."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.registry import Registry
from pipeline.registry.cli import app
from tests.reliability.helpers import assert_one_clear_line, digest_tree

pytestmark = pytest.mark.db

PASSED = {"passed": True, "checks": [{"suite": "gold", "metric": "accuracy", "value": 0.9, "threshold": 0.5,
                                      "passed": True}]}
FAILED = {"passed": False, "checks": [{"suite": "gold", "metric": "accuracy", "value": 0.1, "threshold": 0.5,
                                       "passed": False}]}


@pytest.fixture
def reg(tmp_path, bundles):
    """A registry with v1 (production), v2 (candidate) and v3 (rejected)."""
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    v1 = registry.register(bundles["good_a"], PASSED, {}, None, actor="tests", reason="one", repo_dir=tmp_path)
    registry.promote(v1.id, "production", actor="tests", reason="baseline")
    registry.register(bundles["good_b"], PASSED, {}, None, actor="tests", reason="two", repo_dir=tmp_path)
    registry.register(bundles["bad"], FAILED, {}, None, actor="tests", reason="three", repo_dir=tmp_path)
    yield registry
    registry.close()


def state(registry: Registry) -> tuple:
    return ([(v.id, v.status, v.bundle_digest) for v in registry.list_versions()],
            {name: (a.version.id if a.version else None, a.weight) for name, a in registry.aliases().items()},
            len(registry.history()), registry.state_token(), digest_tree(registry.artifacts_dir))


def cli(tmp_path: Path, *args: str):
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"ingest": {}, "registry": {"url": f"sqlite:///{tmp_path / 'registry.db'}",
                                                             "artifacts_dir": str(tmp_path / "artifacts")}}))
    return CliRunner().invoke(app, ["--params", str(params), *args])


def _copy(bundle: Path, dest: Path) -> Path:
    shutil.copytree(bundle, dest)
    return dest


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _gate(tmp_path: Path, body: dict | str) -> Path:
    path = tmp_path / "gate.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


# (id, builder of the bundle folder to register, gate report, needles)
BAD_REGISTRATIONS = [
    ("flipped-byte", lambda t, b: (_copy(b, t / "x"), _flip_byte(t / "x" / "model.int8.onnx"))[0], PASSED,
     ["refused", "do not match the digest"]),
    ("not-onnx-with-fixed-digest", "fixed-digest", PASSED, ["refused", "int8 model cannot predict"]),
    ("no-manifest", lambda t, b: (_copy(b, t / "x"), (t / "x" / "bundle.json").unlink())[0], PASSED,
     ["no bundle.json"]),
    ("manifest-not-json", lambda t, b: (_copy(b, t / "x"), (t / "x" / "bundle.json").write_text("{half"))[0], PASSED,
     ["x/bundle.json: not valid JSON"]),
    ("model-file-missing", lambda t, b: (_copy(b, t / "x"), (t / "x" / "model.int8.onnx").unlink())[0], PASSED,
     ["missing"]),
    ("missing-folder", lambda t, b: t / "nowhere", PASSED, ["nowhere: no bundle.json"]),
    ("gate-not-json", lambda t, b: b, "{not json", ["gate.json: not valid JSON"]),
    ("gate-without-verdict", lambda t, b: b, {"checks": []}, ["not a gate report (no boolean 'passed')"]),
]


def _manifest_digest(folder: Path) -> str | None:
    try:
        return json.loads((folder / "bundle.json").read_text())["digest"]
    except (OSError, ValueError, KeyError):
        return None


def _fixed_digest(tmp_path: Path, bundle: Path) -> Path:
    """A bundle whose int8 file is garbage but whose manifest digest was recomputed to match it."""
    from pipeline.bundle import files_digest

    dest = _copy(bundle, tmp_path / "x")
    (dest / "model.int8.onnx").write_bytes(b"not an onnx model" * 50)
    manifest = json.loads((dest / "bundle.json").read_text())
    manifest["digest"] = files_digest(dest, manifest["digest_files"])
    (dest / "bundle.json").write_text(json.dumps(manifest))
    return dest


@pytest.mark.parametrize("case", BAD_REGISTRATIONS, ids=[c[0] for c in BAD_REGISTRATIONS])
def test_a_bundle_the_server_could_not_load_is_never_registered(reg, tmp_path, bundles, case):
    _, build, gate, needles = case
    folder = _fixed_digest(tmp_path, bundles["good_b"]) if build == "fixed-digest" else build(tmp_path, bundles["good_b"])
    if isinstance(gate, dict) and "passed" in gate:  # the gate report of this very bundle
        gate = {**gate, "bundle_digest": _manifest_digest(folder) or _manifest_digest(bundles["good_b"])}
    before = state(reg)
    result = cli(tmp_path, "register", str(folder), "--gate", str(_gate(tmp_path, gate)), "--reason", "try")
    assert result.exit_code == 1, result.output
    assert_one_clear_line(result.output, "error:", *needles)
    assert state(reg) == before


def test_promoting_a_version_whose_stored_copy_is_corrupt_is_refused(reg, tmp_path):
    _flip_byte(reg.artifact_path("v2") / "model.int8.onnx")
    before = state(reg)
    result = cli(tmp_path, "promote", "v2", "--to", "production", "--reason", "ship it")
    assert result.exit_code == 1
    assert_one_clear_line(result.output, "v2 cannot take an alias", "changed since registration")
    assert state(reg) == before and reg.get_alias("production").version.id == "v1"


def test_promoting_a_version_whose_stored_copy_is_gone_is_refused(reg, tmp_path):
    shutil.rmtree(reg.artifact_path("v2"))
    before = state(reg)
    result = cli(tmp_path, "promote", "v2", "--to", "canary", "--weight", "0.1", "--reason", "try")
    assert result.exit_code == 1
    assert_one_clear_line(result.output, "v2", "not in the artifact store")
    assert state(reg) == before


def test_rolling_back_onto_a_corrupt_version_is_refused(reg, tmp_path):
    reg.promote("v2", "production", actor="tests", reason="next")
    _flip_byte(reg.artifact_path("v1") / "model.onnx")
    before = state(reg)
    result = cli(tmp_path, "rollback", "production", "--reason", "undo")
    assert result.exit_code == 1
    assert_one_clear_line(result.output, "v1 cannot take an alias")
    assert state(reg) == before and reg.get_alias("production").version.id == "v2"


# (id, CLI arguments, needles)
BAD_REQUESTS = [
    ("promote-rejected", ["promote", "v3", "--to", "production", "--reason", "x"], ["v3 was rejected by the gate"]),
    ("promote-unknown-version", ["promote", "v99", "--to", "production", "--reason", "x"], ["unknown version 'v99'"]),
    ("promote-not-a-version", ["promote", "latest", "--to", "production", "--reason", "x"], ["not a version id"]),
    ("promote-unknown-alias", ["promote", "v2", "--to", "staging", "--reason", "x"], ["unknown alias 'staging'"]),
    ("weight-on-production", ["promote", "v2", "--to", "production", "--weight", "0.5", "--reason", "x"],
     ["only the canary alias carries a traffic weight"]),
    ("weight-out-of-range", ["promote", "v2", "--to", "canary", "--weight", "1.5", "--reason", "x"],
     ["between 0 and 1"]),
    ("blank-reason", ["promote", "v2", "--to", "canary", "--weight", "0.1", "--reason", "  "], ["needs a reason"]),
    ("rollback-without-history", ["rollback", "canary", "--reason", "x"], ["no earlier version to roll back to"]),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_a_wrong_request_changes_nothing(reg, tmp_path, case):
    _, args, needles = case
    before = state(reg)
    result = cli(tmp_path, *args)
    assert result.exit_code == 1, result.output
    assert_one_clear_line(result.output, "error:", *needles)
    assert state(reg) == before


def test_a_schema_of_another_version_is_refused_on_open(reg, tmp_path):
    with sqlite3.connect(tmp_path / "registry.db") as db:
        db.execute("UPDATE registry_meta SET value = 99 WHERE key = 'schema_version'")
    result = cli(tmp_path, "list")
    assert result.exit_code == 1
    assert_one_clear_line(result.output, "holds registry schema 99")


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    (tmp_path / "registry.db").write_text("this is a text file, not SQLite")
    before = digest_tree(tmp_path / "registry.db")
    result = cli(tmp_path, "list")
    assert result.exit_code == 1
    assert_one_clear_line(result.output, "cannot be opened", "not a database")
    assert digest_tree(tmp_path / "registry.db") == before


@pytest.mark.parametrize("url,needles", [
    ("postgresql://distill:Sup3r-Secret@127.0.0.1:9/registry", ["cannot be opened", "distill:***@127.0.0.1:9"]),
    ("not a url at all", ["is not a database URL"]),
], ids=["unreachable-postgres", "not-a-url"])
def test_unusable_urls_are_one_line_without_the_password(tmp_path, url, needles):
    result = CliRunner().invoke(app, ["--params", str(tmp_path / "none.yaml"), "--url", url, "list"])
    assert result.exit_code == 1
    message = assert_one_clear_line(result.output, *needles)
    assert "Sup3r-Secret" not in message
