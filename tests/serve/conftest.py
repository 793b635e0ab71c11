"""Fixtures of the model-server and canary tests: real bundles (built once), a workspace with its own
registry, prediction log, label cache and params file, and a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers.serving import GATE_PASSED, ServerProcess, free_port


def write_params(ws: Path, labels: list[str], teacher_bundle: Path, **overrides) -> Path:
    data = {
        "ingest": {},
        "registry": {"url": f"sqlite:///{ws}/registry.db", "artifacts_dir": str(ws / "artifacts")},
        "serve": {"prediction_log_url": f"sqlite:///{ws}/predictions.db", "poll_interval_s": 0.2,
                  "log_flush_s": 0.1, "max_body_bytes": 6_000, "max_batch": 16, "max_text_chars": 500},
        "label": {"cache_dir": str(ws / "label-cache")},
        "teacher": {"kind": "python", "python": {"function": "tests.helpers.bundle_teacher:predict", "labels": labels}},
        "canary": {"steps": [0.2, 0.5, 1.0], "min_requests": 40, "step_timeout_s": 60, "poll_s": 0.2,
                   "max_p95_ms": 200, "max_p99_ms": 500, "min_stable_agreement": 0.3,
                   "min_teacher_agreement": 0.6, "teacher_sample": 30, "max_error_rate": 0.01},
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    path = ws / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Workspace:
    """A scratch deployment: params file, registry, prediction log; the helpers tests need."""

    def __init__(self, root: Path, bundles: dict[str, Path], **overrides):
        self.overrides = overrides
        from pipeline.bundle import load_bundle
        from pipeline.config import load_params

        self.root = root
        self.bundles = bundles
        labels = load_bundle(bundles["good_a"]).labels
        self.labels = labels
        self.params_path = write_params(root, labels, bundles["good_a"], **overrides)
        self.params = load_params(self.params_path)
        # The teacher the good candidate (good_b) was "distilled from": it agrees with good_b on nearly
        # every text and with the bad student on almost none; two good students agree on ~60 %.
        self.env = {"DISTILL_TEST_TEACHER_BUNDLE": str(bundles["good_b"])}

    def registry(self):
        from pipeline.registry import open_registry

        return open_registry(self.params.registry)

    def register(self, bundle: Path, reason: str = "test") -> str:
        with self.registry() as reg:
            return reg.register(bundle, GATE_PASSED, {"test": True}, self.params, actor="tests",
                                reason=reason, repo_dir=self.root).id

    def serve_production(self, bundle: Path | None = None) -> ServerProcess:
        """Register ``bundle`` (default good_a), make it production, start a server and wait until it serves."""
        with self.registry() as reg:
            v = self.register(bundle or self.bundles["good_a"])
            reg.promote(v, "production", actor="tests", reason="baseline")
        server = self.server()
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def predlog(self):
        from pipeline import predlog

        return predlog.connect(self.params.serve.prediction_log_url)

    def server(self) -> ServerProcess:
        """A server on a free port; the params file's canary.server_url is pointed at it."""
        from pipeline.config import load_params

        port = free_port()
        canary = {**self.overrides.get("canary", {}), "server_url": f"http://127.0.0.1:{port}"}
        write_params(self.root, self.labels, self.bundles["good_a"], **{**self.overrides, "canary": canary})
        self.params = load_params(self.params_path)
        return ServerProcess(self.params_path, self.root, self.env, port=port)


def make_workspace(root: Path, bundles, monkeypatch, **overrides) -> Workspace:
    """A Workspace whose environment (teacher bundle, no registry or log URL overrides) is set for the test."""
    ws = Workspace(root, bundles, **overrides)
    for key, value in ws.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    return ws


@pytest.fixture
def workspace(tmp_path, bundles, monkeypatch) -> Workspace:
    return make_workspace(tmp_path, bundles, monkeypatch)


def read_json(path: Path):
    return json.loads(path.read_text())
