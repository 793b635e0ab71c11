"""kill -9 of the distill and export stages and of registry writes (register, promote), as real processes.

After each kill: no temporary file inside an output, the last good output intact or none at all, a
re-run that finishes, and (registry) every alias on a version whose stored bundle still verifies,
every version row with its artifact, and a history that agrees with the aliases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """ingested.parquet and labels.parquet of a small BANKING77 subset (teacher simulated from gold)."""
    from pipeline.io import write_parquet
    from pipeline.label.table import write_labels
    from tests.student_data import banking77_frames

    root = tmp_path_factory.mktemp("kill-data")
    ingested, labels_frame, names = banking77_frames(per_class_train=20, test_rows=300, seed=0)
    write_parquet(root / "ingested.parquet", ingested)
    write_labels(root / "labels.parquet", labels_frame, names)
    return root


def _params(work: Path) -> Path:
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump({"ingest": {}, "distill": {
        "epochs": 6, "patience": 6, "featurizer": {"tokenizer": "words", "buckets": 8192, "char_ngrams": [3]},
        "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}}}, "export": {"parity_rows": 200,
                                                                                     "latency_texts": 20}}))
    return path


def _stage(work: Path, data: Path, stage: str) -> subprocess.Popen:
    args = {"distill": ["--data", str(data / "ingested.parquet"), "--labels", str(data / "labels.parquet"),
                        "--teacher-dir", "models/teacher", "--out", "models/student", "--metrics", "metrics/distill.json",
                        "--plots", "plots/distill"],
            "export": ["--checkpoint", "models/student/checkpoint.pt", "--data", str(data / "ingested.parquet"),
                       "--labels", str(data / "labels.parquet"), "--out", "models/bundle",
                       "--metrics", "metrics/export.json"]}[stage]
    return subprocess.Popen([sys.executable, "-m", f"pipeline.stages.{stage}", "--params", str(_params(work)), *args],
                            cwd=work, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the stage never reached the point to kill it at"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def _no_temporaries_in(*folders: Path) -> None:
    for folder in folders:
        for p in folder.rglob("*"):
            assert not p.name.startswith("."), f"temporary file left in an output: {p}"
            assert f"{os.getpid()}-" not in p.name


def test_kill_9_of_distill_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, data):
    import torch

    full, killed = tmp_path / "full", tmp_path / "killed"
    full.mkdir()
    killed.mkdir()
    _finish(_stage(full, data, "distill"))
    proc = _stage(killed, data, "distill")
    checkpoint = killed / "models" / "student" / "checkpoint.pt"
    _kill_when(proc, lambda: checkpoint.is_file() and checkpoint.stat().st_size > 0)
    _no_temporaries_in(killed / "models")
    out = _finish(_stage(killed, data, "distill"))
    assert "resum" in out.lower(), out  # it went on from the checkpoint, not from scratch
    _no_temporaries_in(killed / "models")
    assert not [p for p in (killed / ".distill" / "tmp").glob("*")] if (killed / ".distill" / "tmp").exists() else True
    a = torch.load(full / "models/student/checkpoint.pt", weights_only=True)
    b = torch.load(checkpoint, weights_only=True)
    assert a["training"]["done"] and b["training"]["done"]
    assert [h["val_agreement"] for h in a["training"]["history"]] == [h["val_agreement"] for h in b["training"]["history"]]
    for key in a["state_dict"]:
        assert torch.allclose(a["state_dict"][key], b["state_dict"][key], atol=1e-5), key
    assert oct(checkpoint.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the umask, not 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_kill_9_of_export_leaves_the_last_bundle_or_none_never_half_of_one(tmp_path, data):
    from pipeline.bundle import load_bundle

    work = tmp_path / "w"
    work.mkdir()
    _finish(_stage(work, data, "distill"))
    _finish(_stage(work, data, "export"))
    bundle = work / "models" / "bundle"
    previous = load_bundle(bundle).digest
    staging = work / ".distill" / "tmp"
    kills = 0
    for delay in (0.5, 1.5, 3.0):  # early, mid-quantization, during the parity and speed checks
        proc = _stage(work, data, "export")
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # the bundle is whole and loadable: the last good one, or the new one moved into place at once
        # (the same checkpoint exports the same files, so either way it is the same digest)
        assert load_bundle(bundle, verify=True).digest == previous
        _no_temporaries_in(bundle)
    assert kills >= 2, "export finished before it could be killed"
    _finish(_stage(work, data, "export"))
    load_bundle(bundle, verify=True)
    assert not list(staging.glob("*")), list(staging.glob("*"))  # what killed runs left was swept


REGISTRY_WRITER = """
import sys, time
from pipeline.registry import Registry
reg = Registry(sys.argv[1], sys.argv[2])
gate = {"passed": True, "checks": []}
print("ready", flush=True)
i = 0
while True:
    i += 1
    folder = sys.argv[3 + i % 2]
    v = reg.register(folder, gate, {}, None, actor="killer", reason=f"r{i}", repo_dir=sys.argv[2])
    reg.promote(v.id, "canary", actor="killer", reason=f"c{i}", weight=0.1)
    reg.promote(v.id, "production", actor="killer", reason=f"p{i}")
"""


def test_kill_9_of_register_and_promote_leaves_a_consistent_registry(tmp_path, bundles):
    import shutil

    from pipeline.registry import Registry
    from pipeline.registry.artifacts import verify_bundle

    url, store = f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts"
    folders = []
    for i in range(2):  # two bundles, so registrations alternate between two content addresses and new copies
        folders.append(shutil.copytree(bundles["good_a"], tmp_path / f"b{i}"))
    script = tmp_path / "writer.py"
    script.write_text(REGISTRY_WRITER)
    for round_ in range(4):
        for f in folders:  # a fresh payload each round: new digests, so each round stores new copies
            (f / "round.txt").write_text(str(round_))
        proc = subprocess.Popen([sys.executable, str(script), url, str(store), *map(str, folders)], cwd=tmp_path,
                                env=ENV, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0 + 0.4 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Registry(url, store) as reg:
            versions = reg.list_versions()
            assert versions, "nothing registered before the kill"
            for v in versions:  # every row has its whole artifact
                verify_bundle(reg.artifact_path(v.id), v.bundle_digest)
            for name, alias in reg.aliases().items():
                history = reg.history(alias=name)
                if alias.version is not None:
                    verify_bundle(reg.artifact_path(alias.version.id), alias.version.bundle_digest)
                    assert history and history[-1].version == alias.version.id
        # half-copied artifacts are never under a digest name
        for entry in store.iterdir():
            if not entry.name.startswith("."):
                verify_bundle(entry, entry.name)
    # the next registration sweeps the half-made copies the killed writers left
    (folders[0] / "round.txt").write_text("after the kills")
    with Registry(url, store) as reg:
        reg.register(folders[0], {"passed": True, "checks": []}, {}, None, actor="tests", reason="after",
                     repo_dir=tmp_path)
    assert not [e.name for e in store.iterdir() if e.name.startswith(".")]
