"""``distill registry`` commands on a SQLite registry, through the real typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.registry import Registry
from tests.registry.conftest import FAILED_GATE, PASSED_GATE

pytestmark = pytest.mark.db


@pytest.fixture
def cli(tmp_path, monkeypatch, make_bundle):
    """A SQLite registry holding v1 (passed), v2 (rejected), v3 (passed), and a runner pointed at it."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.chdir(tmp_path)  # no params.yaml here: defaults apply, the env var picks the database
    monkeypatch.setenv("DISTILL_REGISTRY_URL", url)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables wide enough to show whole cells
    with Registry(url, tmp_path / ".distill" / "artifacts") as reg:
        for gate, payload in ((PASSED_GATE, "a"), (FAILED_GATE, "b"), (PASSED_GATE, "c")):
            reg.register(make_bundle(payload), gate, {"accuracy": 0.9}, {}, actor="test", reason=f"build {payload}")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["registry", *args])


def test_list_and_show(cli):
    out = cli("list", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [(v["id"], v["status"], v["aliases"]) for v in data["versions"]] == [
        ("v1", "registered", []), ("v2", "rejected", []), ("v3", "registered", ["candidate"])]
    table = cli("list")
    assert table.exit_code == 0 and "v2" in table.output and "rejected" in table.output
    shown = cli("show", "v2")
    assert shown.exit_code == 0 and "typos/agreement" in shown.output and "FAIL" in shown.output
    assert json.loads(cli("show", "v3", "--json").output)["reason"] == "build c"


def test_promote_rollback_history(cli):
    assert cli("promote", "v1", "--to", "production", "--reason", "first").exit_code == 0
    out = cli("promote", "v3", "--to", "production", "--reason", "better", "--json")
    assert out.exit_code == 0 and json.loads(out.output)["version"] == "v3"
    back = cli("rollback", "production", "--reason", "latency up")
    assert back.exit_code == 0 and "rolled back to v1" in back.output
    hist = json.loads(cli("history", "--alias", "production", "--json").output)
    assert [(h["action"], h["version"], h["previous"], h["reason"]) for h in hist] == [
        ("promote", "v1", None, "first"), ("promote", "v3", "v1", "better"), ("rollback", "v1", "v3", "latency up")]
    assert hist[0]["actor"].startswith("cli:registry promote")
    assert "latency up" in cli("history").output


def test_history_fits_a_100_column_terminal(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    cli("promote", "v1", "--to", "production", "--reason", "first")
    cli("promote", "v3", "--to", "production", "--reason", "better: " + "a long explanation " * 8)
    out = cli("history", "--numbers").output
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert "production v1 -> v3" in out and "cli:registry promote" in out  # nothing cut short
    assert "…" not in out  # short columns are never cut, the reason wraps


def test_errors_are_messages_with_exit_code_1(cli):
    rejected = cli("promote", "v2", "--to", "canary", "--reason", "x")
    assert rejected.exit_code == 1 and "v2 was rejected by the gate" in rejected.output
    unknown = cli("show", "v9")
    assert unknown.exit_code == 1 and "unknown version 'v9': versions are v1..v3" in unknown.output
    nothing = cli("rollback", "canary", "--reason", "x")
    assert nothing.exit_code == 1 and "no earlier version to roll back to" in nothing.output


def test_register_checks_that_the_gate_report_is_this_bundles(cli, tmp_path, make_bundle):
    bundle = make_bundle("d")
    digest = json.loads((bundle / "bundle.json").read_text())["digest"]
    other = tmp_path / "other-gate.json"
    other.write_text(json.dumps({**PASSED_GATE, "bundle_digest": "e" * 64}))
    refused = cli("register", str(bundle), "--gate", str(other), "--reason", "manual")
    assert refused.exit_code == 1 and "belongs to another bundle" in refused.output
    assert len(json.loads(cli("list", "--json").output)["versions"]) == 3  # nothing registered

    own = tmp_path / "gate.json"
    own.write_text(json.dumps({**PASSED_GATE, "bundle_digest": digest}))
    done = cli("register", str(bundle), "--gate", str(own), "--reason", "manual", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["id"] == "v4"
