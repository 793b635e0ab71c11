"""Label stage across processes: resume after SIGKILL, concurrent writers, Dask LocalCluster = local run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.keys import text_key
from pipeline.label.cache import DB_NAME
from pipeline.stages.teacher import main as teacher_main
from tests.helpers.labeling import calls, write_ingested, write_params

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _env(log: Path, **extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), DISTILL_TEST_CALL_LOG=str(log), **extra)


def _label_cmd(tmp: Path, params: Path, data: Path, out: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.stages.label", "--params", str(params), "--data", str(data),
            "--teacher-dir", str(tmp / "teacher"), "--out", str(tmp / out), "--metrics", str(tmp / f"{out}.json")]


def _cached(cache_dir: Path) -> int:
    db = cache_dir / DB_NAME
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        except sqlite3.OperationalError:  # table not created yet
            return 0


def _setup(tmp: Path, n: int, **label):
    data = write_ingested(tmp / "ingested.parquet", n)
    params = write_params(tmp / "params.yaml", tmp / "cache", **label)
    assert teacher_main(["--params", str(params), "--data", str(data), "--out", str(tmp / "teacher")]) == 0
    return data, params


def test_resume_after_kill_makes_exactly_the_missing_calls(tmp_path):
    data, params = _setup(tmp_path, 48)
    log = tmp_path / "calls.log"
    proc = subprocess.Popen(_label_cmd(tmp_path, params, data, "a.parquet"), cwd=ROOT,
                            env=_env(log, DISTILL_TEST_DELAY_S="0.3"), stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while _cached(tmp_path / "cache") < 12 and time.time() < deadline:  # 3 batches of 4 committed
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _cached(tmp_path / "cache")
    assert 12 <= done < 48 and not (tmp_path / "a.parquet").exists()
    log.unlink()
    subprocess.run(_label_cmd(tmp_path, params, data, "a.parquet"), cwd=ROOT, env=_env(log), check=True,
                   capture_output=True)
    sent = calls(log)
    assert len(sent) == 48 - done == len(set(sent))
    assert len(pd.read_parquet(tmp_path / "a.parquet")) == 48
    import json

    metrics = json.loads((tmp_path / "a.parquet.json").read_text())
    # the killed run's spend is on the ledger: the bill covers every text sent, not only this run's
    assert metrics["texts_sent"] == 48 - done
    assert metrics["spend_all_runs"]["texts_sent"] >= 48 and metrics["spend_all_runs"]["calls"] >= 12


def test_concurrent_runs_share_the_cache_safely(tmp_path):
    data, params = _setup(tmp_path, 80)
    log = tmp_path / "calls.log"
    procs = [subprocess.Popen(_label_cmd(tmp_path, params, data, f"{name}.parquet"), cwd=ROOT,
                              env=_env(log, DISTILL_TEST_DELAY_S="0.01"), stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert len(a) == len(b) == 80
    assert np.array_equal(np.stack(a["probs"]), np.stack(b["probs"]))
    assert _cached(tmp_path / "cache") == 80
    # every text was labeled at least once; overlap between the two runs is bounded by one full pass
    assert set(calls(log)) == {text_key(t) for t in a["text"]} and 80 <= len(calls(log)) <= 160


def test_dask_local_cluster_gives_the_same_labels_as_local(tmp_path):
    data, params = _setup(tmp_path, 60)
    log = tmp_path / "calls.log"
    subprocess.run(_label_cmd(tmp_path, params, data, "local.parquet"), cwd=ROOT, env=_env(log), check=True,
                   capture_output=True)
    log.unlink()
    dask_params = write_params(tmp_path / "dask.yaml", tmp_path / "dask-cache",
                               dask={"local_workers": 2, "shard_size": 16})
    done = subprocess.run(_label_cmd(tmp_path, dask_params, data, "dask.parquet"), cwd=ROOT, env=_env(log),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "local Dask cluster of 2 workers" in done.stderr
    local, dist = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "dask.parquet")
    pd.testing.assert_frame_equal(local.drop(columns="probs"), dist.drop(columns="probs"))
    assert np.array_equal(np.stack(local["probs"]), np.stack(dist["probs"]))
    assert sorted(calls(log)) == sorted(set(calls(log))) and len(calls(log)) == 60
    import json

    metrics = json.loads((tmp_path / "dask.parquet.json").read_text())
    assert metrics["cache_misses"] == 60 and metrics["usage"]["texts"] == 60


def test_a_real_dask_cluster_writes_the_local_labels_file_byte_for_byte(tmp_path):
    """Scheduler and two workers as separate processes on 127.0.0.1 (the `dask` CLI), as on a cluster."""
    import filecmp

    from pipeline.serve.process import free_port

    data, params = _setup(tmp_path, 60)
    log = tmp_path / "calls.log"
    subprocess.run(_label_cmd(tmp_path, params, data, "local.parquet"), cwd=ROOT, env=_env(log), check=True,
                   capture_output=True)
    log.unlink()
    port, dask = free_port(), str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{port}"
    env = _env(log, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--local-directory", str(tmp_path / f"worker-{i}")], cwd=tmp_path, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        cluster_params = write_params(tmp_path / "cluster.yaml", tmp_path / "cluster-cache",
                                      dask={"scheduler": address, "shard_size": 16})
        done = subprocess.run(_label_cmd(tmp_path, cluster_params, data, "cluster.parquet"), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert f"labeling on Dask scheduler {address}" in done.stderr
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    assert filecmp.cmp(tmp_path / "local.parquet", tmp_path / "cluster.parquet", shallow=False)
    assert sorted(calls(log)) == sorted(set(calls(log))) and len(calls(log)) == 60  # each text once, on the workers
