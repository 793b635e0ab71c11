"""Registry fixtures: the same tests run on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from tests.registry.postgres import PostgresServer, start_server

_db_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session; fails (never skips) when PostgreSQL is not installed."""
    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path) -> str:
    """A fresh, empty registry database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"registry_{next(_db_names)}")


@pytest.fixture
def registry(registry_url, tmp_path):
    from pipeline.registry import Registry

    reg = Registry(registry_url, tmp_path / "artifacts")
    yield reg
    reg.close()


@pytest.fixture
def make_bundle(tmp_path, bundles):
    """A copy of a tiny real bundle plus a payload file (so each payload is its own digest); returns its path.

    Real, because the registry loads every bundle it registers or aliases, as the server would.
    """
    counter = itertools.count(1)

    def make(payload: str = "weights") -> Path:
        path = tmp_path / f"bundle{next(counter)}"
        shutil.copytree(bundles["good_a"], path)
        (path / "payload.txt").write_text(payload)
        return path

    return make


PASSED_GATE = {"passed": True, "checks": [
    {"suite": "gold", "metric": "accuracy", "value": 0.95, "threshold": 0.9, "passed": True}]}
FAILED_GATE = {"passed": False, "checks": [
    {"suite": "gold", "metric": "accuracy", "value": 0.95, "threshold": 0.9, "passed": True},
    {"suite": "typos", "metric": "agreement", "value": 0.71, "threshold": 0.85, "passed": False},
    {"suite": "budget", "metric": "latency_ms", "value": 12.0, "threshold": 5.0, "passed": False}]}
