"""Two real processes change the same alias at once: no update is lost and history stays a chain."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.registry.conftest import PASSED_GATE

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
CHANGES = 25

WORKER = textwrap.dedent("""
    import os, random, sys, time
    from pipeline.registry import Registry
    url, artifacts, go, name, n = sys.argv[1:6]
    reg = Registry(url, artifacts)
    reg.state_token()  # connected
    open(go + "." + name, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    for i in range(int(n)):
        # alternate versions so consecutive changes really differ
        reg.set_alias("canary", "v1" if i % 2 else "v2", actor=name, reason=f"{name} change {i}",
                      numbers={"i": i}, weight=(i % 10) / 10)
        # A short pause like a real flow's: SQLite's busy handler is not fair, and a writer looping
        # with no pause at all could take every turn (seen on a loaded 2-core machine with a 20 ms pause),
        # which would not exercise the interleaving.
        time.sleep(0.005 + random.random() * 0.05)
    reg.close()
""")


def test_two_processes_hammering_set_alias_keep_history_consistent(registry, registry_url, make_bundle, tmp_path):
    for payload in ("a", "b"):
        registry.register(make_bundle(payload), PASSED_GATE, {}, {}, actor="test", reason="setup")
    token = registry.state_token()
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, registry_url, str(tmp_path / "artifacts"), str(go),
                               f"worker-{k}", str(CHANGES)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.worker-{k}").exists() for k in (1, 2)):  # both connected: start together
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not start"
        time.sleep(0.02)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    canary = registry.history(alias="canary")
    assert len(canary) == 2 * CHANGES
    assert {h.actor for h in canary} == {"worker-1", "worker-2"}
    # Interleaved, not one process after the other (otherwise the test proves nothing about locking).
    switches = sum(a.actor != b.actor for a, b in zip(canary, canary[1:]))
    assert switches >= 2, [h.actor for h in canary]
    assert canary[0].previous is None
    for before, after in zip(canary, canary[1:]):
        assert after.previous == before.version, (before, after)
    state = registry.get_alias("canary")
    assert (state.version.id, state.weight) == (canary[-1].version, canary[-1].weight)
    assert registry.state_token() == token + 2 * CHANGES
