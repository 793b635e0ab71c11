"""Helpers for model-server tests: tiny real bundles, a real server process, a real HTTP load generator.

Bundles are trained and exported with the project's own functions on a small BANKING77 subset:
``good_a`` and ``good_b`` (two seeds: similar, not identical) and ``bad`` (trained on soft labels whose
classes were rotated by one, so it disagrees with the others on nearly every text).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from pipeline.serve.loadgen import LoadGenerator  # noqa: F401  (re-exported for the tests)
from pipeline.serve.process import ServerProcess as _ServerProcess
from pipeline.serve.process import free_port  # noqa: F401  (re-exported for the tests)
from tests.conftest import ROOT


class ServerProcess(_ServerProcess):
    """The server process with this checkout's code first on the path (the tests' worktree)."""

    def __init__(self, params_path: Path, cwd: Path, env: dict[str, str] | None = None, port: int | None = None):
        super().__init__(params_path, cwd, dict(env or {}, PYTHONPATH=str(ROOT)), port=port)

GATE_PASSED = {"passed": True, "checks": [{"suite": "gold", "metric": "accuracy", "value": 0.5, "threshold": 0.3,
                                           "passed": True}]}


def _train_and_export(ingested, frame, names, distill: dict, seed: int, out: Path, name: str, texts: list[str]) -> Path:
    """Train a student with the ``distill`` params section on ``frame`` and export it to ``out/name``."""
    from pipeline.config import parse_params
    from pipeline.distill import train_from_frames
    from pipeline.export import export_bundle

    cfg = parse_params({"ingest": {}, "distill": distill}).distill
    export_cfg = parse_params({"ingest": {}, "export": {"latency_texts": 10, "parity_rows": 200,
                                                        "min_label_agreement": 0.9}}).export
    trained = train_from_frames(ingested, frame, names, cfg, seed=seed, out_dir=out / f"{name}-train")
    metrics = export_bundle(trained.checkpoint, out / name, export_cfg, texts)
    assert metrics["passed"], metrics["problems"]
    return out / name


def build_bundles(out: Path) -> dict[str, Path]:
    """Train and export three tiny students; returns name -> bundle folder. A few seconds on 2 cores."""
    from tests.student_data import banking77_frames

    ingested, labels_frame, names = banking77_frames(per_class_train=12, test_rows=200, seed=0)
    distill = {"featurizer": {"buckets": 4096}, "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}},
               "epochs": 3, "patience": 3, "lr": 0.08, "validation_share": 0.15}
    texts = ingested.loc[ingested.split == "test", "text"].tolist()
    rotated = labels_frame.copy()
    rotated["probs"] = [np.roll(p, 1) for p in labels_frame["probs"]]
    plans = {
        "good_a": (labels_frame, distill, 1),
        "good_b": (labels_frame, distill, 2),
        "bad": (rotated, {**distill, "use_gold": False}, 3),
    }
    return {name: _train_and_export(ingested, frame, names, dcfg, seed, out, name, texts)
            for name, (frame, dcfg, seed) in plans.items()}


def build_words_bundle(out: Path, test_rows: int = 300) -> tuple[Path, list[str]]:
    """One tiny student with the default words featurizer (params.yaml's: no tokenizer file, char
    n-grams, a character cut), exported; returns its bundle folder and held-out texts it never saw."""
    from tests.student_data import banking77_frames

    ingested, labels_frame, names = banking77_frames(per_class_train=12, test_rows=test_rows, seed=0)
    featurizer = {"tokenizer": "words", "max_chars": 1000, "ngrams": [1, 2], "buckets": 4096, "char_ngrams": [3, 4]}
    distill = {"featurizer": featurizer, "epochs": 4, "patience": 4, "lr": 0.08,
               "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}}, "validation_share": 0.15}
    texts = ingested.loc[ingested.split == "test", "text"].tolist()
    return _train_and_export(ingested, labels_frame, names, distill, 1, out, "words", texts), texts


def corrupt_copy(bundle: Path, dest: Path) -> Path:
    """A copy of ``bundle`` whose int8 model file is garbage (as a bad disk or a broken upload leaves it)."""
    shutil.copytree(bundle, dest)
    (dest / "model.int8.onnx").write_bytes(b"this is not an onnx model" * 100)
    return dest


def failing_copy(bundle: Path, dest: Path, must_pass: list[str]) -> tuple[Path, int]:
    """A copy of ``bundle`` whose models raise on any input wider than the widest of ``must_pass``.

    The graph gains a Gather of element ``width - 1`` from a constant of ``limit`` zeros, which
    onnxruntime refuses (index out of bounds) once the id matrix is wider: the model loads, answers the
    smoke texts, and fails on longer traffic. The manifest digest is recomputed, as an operator who
    edits a model on purpose would. Returns the copy and the width limit.
    """
    import json

    import onnx
    from onnx import helper, numpy_helper

    from pipeline.bundle import files_digest, load_bundle

    shutil.copytree(bundle, dest)
    limit = int(load_bundle(dest).featurizer(must_pass).shape[1])
    manifest = json.loads((dest / "bundle.json").read_text())
    for name in manifest["files"].values():
        model = onnx.load(dest / name)
        graph = model.graph
        out = graph.output[0].name
        graph.initializer.extend([numpy_helper.from_array(np.zeros(limit, dtype=np.float32), "fail_table"),
                                  numpy_helper.from_array(np.array(1, dtype=np.int64), "fail_axis1"),
                                  numpy_helper.from_array(np.array(1, dtype=np.int64), "fail_one")])
        for node in graph.node:
            node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
        graph.node.extend([
            helper.make_node("Shape", ["ids"], ["fail_shape"]),
            helper.make_node("Gather", ["fail_shape", "fail_axis1"], ["fail_width"]),
            helper.make_node("Sub", ["fail_width", "fail_one"], ["fail_last"]),
            helper.make_node("Gather", ["fail_table", "fail_last"], ["fail_sum"]),
            # the table is zeros, so this adds 0.0 to every logit: answers stay those of the source bundle
            helper.make_node("Add", [f"{out}_pre", "fail_sum"], [out]),
        ])
        onnx.save(model, dest / name)
    manifest["digest"] = files_digest(dest, manifest["digest_files"])
    (dest / "bundle.json").write_text(json.dumps(manifest, indent=2))
    return dest, limit


def metric(url: str, name: str, **labels) -> float:
    """The sum of a server's ``/metrics`` samples named ``name`` whose labels include ``labels``."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for fam in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=5).text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def wait_until(predicate, timeout: float = 20.0, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection to 127.0.0.1 and read until the server closes it (or ``wait`` passes)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out

