"""Registry behaviour on both backends: a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from pipeline.registry import (NothingToRollBack, RegistryError, RejectedVersion, UnknownAlias, UnknownVersion)
from pipeline.registry.artifacts import bundle_digest
from tests.registry.conftest import FAILED_GATE, PASSED_GATE

pytestmark = pytest.mark.db


def _register(registry, bundle, gate=PASSED_GATE, **kw):
    return registry.register(bundle, gate, {"accuracy": 0.95}, {"distill": {"temperature": 2.0}},
                             actor="flow:retrain", reason="nightly retrain", **kw)


def test_register_records_lineage_and_stores_bundle(registry, make_bundle):
    bundle = make_bundle()
    v = _register(registry, bundle)
    assert (v.id, v.status, v.gate_passed, v.reasons) == ("v1", "registered", True, [])
    assert v.metrics == {"accuracy": 0.95} and v.params == {"distill": {"temperature": 2.0}}
    assert v.bundle_digest == bundle_digest(bundle)
    stored = registry.artifact_path(v.id)
    assert stored.name == v.bundle_digest
    assert (stored / "payload.txt").read_text() == "weights"
    assert (stored / "model.int8.onnx").read_bytes() == (bundle / "model.int8.onnx").read_bytes()
    assert bundle_digest(stored) == v.bundle_digest
    # A passing version becomes the candidate in the same transaction.
    assert registry.get_alias("candidate").version.id == "v1"
    assert [(h.action, h.alias, h.version) for h in registry.history()] == [
        ("register", None, "v1"), ("set_alias", "candidate", "v1")]
    assert registry.get_version("1") == registry.get_version("v1") == registry.list_versions()[0]


def test_failed_gate_registers_rejected_version_that_never_takes_an_alias(registry, make_bundle):
    v = _register(registry, make_bundle(), gate=FAILED_GATE)
    assert v.status == "rejected" and v.rejected
    assert v.reasons == ["typos/agreement: 0.71 vs threshold 0.85", "budget/latency_ms: 12.0 vs threshold 5.0"]
    assert registry.get_alias("candidate").version is None
    for alias in ("candidate", "canary", "production"):
        with pytest.raises(RejectedVersion, match="v1 was rejected by the gate .*typos/agreement"):
            registry.promote("v1", alias, actor="cli", reason="try anyway")
    assert [h.action for h in registry.history()] == ["reject"]


def test_set_alias_chain_weights_and_state_token(registry, make_bundle):
    v1 = _register(registry, make_bundle("a"))
    v2 = _register(registry, make_bundle("b"))
    token = registry.state_token()
    state = registry.promote(v2.id, "canary", actor="flow:canary", reason="step 1", numbers={"errors": 0}, weight=0.05)
    assert (state.version.id, state.weight) == ("v2", 0.05)
    assert registry.state_token() > token
    # Same version, new weight: the weight is the change; without a weight it is kept.
    registry.set_alias("canary", v2.id, actor="flow:canary", reason="step 2", weight=0.25, numbers={"p95_ms": 3.1})
    assert registry.set_alias("canary", v2.id, actor="flow:canary", reason="hold").weight == 0.25
    registry.promote(v1.id, "production", actor="cli", reason="first release")
    canary = registry.history(alias="canary")
    assert [(h.version, h.previous, h.weight) for h in canary] == [("v2", None, 0.05), ("v2", "v2", 0.25),
                                                                   ("v2", "v2", 0.25)]
    assert canary[1].numbers == {"p95_ms": 3.1} and canary[0].actor == "flow:canary"
    assert registry.get_alias("production").weight is None
    with pytest.raises(RegistryError, match="only the canary alias carries a traffic weight"):
        registry.promote(v1.id, "production", actor="cli", reason="x", weight=0.5)
    with pytest.raises(RegistryError, match="between 0 and 1"):
        registry.set_alias("canary", v2.id, actor="cli", reason="x", weight=1.5)
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.set_alias("canary", v2.id, actor="cli", reason=" ")


def test_unknown_version_and_alias_errors_say_what_exists(registry, make_bundle):
    with pytest.raises(UnknownVersion, match="no version is registered yet"):
        registry.get_version("v1")
    _register(registry, make_bundle())
    with pytest.raises(UnknownVersion, match=r"unknown version 'v7': versions are v1..v1"):
        registry.promote("v7", "production", actor="cli", reason="x")
    with pytest.raises(UnknownVersion, match="not a version id"):
        registry.get_version("latest")
    with pytest.raises(UnknownAlias, match="aliases are candidate, canary, production"):
        registry.promote("v1", "prod", actor="cli", reason="x")


def test_rollback_walks_back_through_history(registry, make_bundle):
    versions = [_register(registry, make_bundle(str(i))).id for i in range(3)]
    with pytest.raises(NothingToRollBack, match="'production' holds nothing"):
        registry.rollback("production", actor="cli", reason="oops")
    for v in versions:
        registry.promote(v, "production", actor="flow:canary", reason=f"release {v}")
    assert registry.rollback("production", actor="cli", reason="errors up").version.id == "v2"
    # A second rollback goes one more step back, not forth to v3.
    assert registry.rollback("production", actor="cli", reason="still bad").version.id == "v1"
    with pytest.raises(NothingToRollBack, match="holds v1 .*no earlier version"):
        registry.rollback("production", actor="cli", reason="again")
    assert [(h.action, h.version, h.previous) for h in registry.history(alias="production")] == [
        ("promote", "v1", None), ("promote", "v2", "v1"), ("promote", "v3", "v2"),
        ("rollback", "v2", "v3"), ("rollback", "v1", "v2")]


def test_canary_rollback_restores_previous_weight_and_clear(registry, make_bundle):
    v1, v2 = (_register(registry, make_bundle(p)).id for p in ("a", "b"))
    registry.promote(v1, "canary", actor="flow:canary", reason="a", weight=0.5)
    registry.promote(v2, "canary", actor="flow:canary", reason="b", weight=0.05)
    state = registry.rollback("canary", actor="flow:canary", reason="agreement low")
    assert (state.version.id, state.weight) == (v1, 0.5)
    cleared = registry.clear_alias("canary", actor="flow:canary", reason="done")
    assert cleared.version is None and cleared.weight is None
    assert registry.rollback("canary", actor="cli", reason="undo clear").version.id == v1


def test_history_is_append_only_in_the_database(registry, registry_url, make_bundle):
    _register(registry, make_bundle())
    engine = create_engine(registry.url)
    try:
        for statement in ("UPDATE registry_history SET reason = 'rewritten'", "DELETE FROM registry_history"):
            with pytest.raises(DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    conn.execute(text(statement))
    finally:
        engine.dispose()
    assert [h.reason for h in registry.history()] == ["nightly retrain", "nightly retrain"]
    assert not any(hasattr(registry, name) for name in ("delete_history", "update_history", "delete_version"))


def test_same_bundle_is_stored_once_and_reopen_keeps_state(registry, registry_url, make_bundle, tmp_path):
    from pipeline.registry import Registry

    bundle = make_bundle()
    a, b = _register(registry, bundle), _register(registry, bundle)
    assert a.bundle_digest == b.bundle_digest and a.id != b.id
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == [a.bundle_digest]
    registry.promote(a.id, "production", actor="cli", reason="r")
    with Registry(registry_url, tmp_path / "artifacts") as again:
        assert again.get_alias("production").version.id == a.id
        assert again.state_token() == registry.state_token()
        assert len(again.history()) == len(registry.history()) == 5
        assert [h.id for h in again.history(limit=2)] == [h.id for h in registry.history()[-2:]]
