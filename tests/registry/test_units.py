"""Pure parts of the registry: config section, URL resolution, version ids, lineage, bundle digests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.config import load_params, parse_params
from pipeline.config.registry import RegistryConfig
from pipeline.registry import BundleError, UnknownVersion, parse_version_id, resolve_url
from pipeline.registry.artifacts import bundle_digest
from pipeline.registry.lineage import collect_lineage, parse_dvc_lock

pytestmark = pytest.mark.unit


def test_config_section_defaults_and_env_override():
    assert load_params("params.yaml").registry == RegistryConfig()
    cfg = parse_params({"ingest": {}, "registry": {"url": "postgresql://u@h/db"}}).registry
    assert resolve_url(cfg, environ={}) == "postgresql://u@h/db"
    assert resolve_url(cfg, environ={"DISTILL_REGISTRY_URL": "sqlite:///x.db"}) == "sqlite:///x.db"
    with pytest.raises(Exception, match="registry.artifact_dir: unknown key"):
        parse_params({"ingest": {}, "registry": {"artifact_dir": "x"}})


def test_version_ids():
    assert parse_version_id("v12") == parse_version_id("12") == parse_version_id(12) == 12
    for bad in ("v0", "x3", "", "v-1"):
        with pytest.raises(UnknownVersion):
            parse_version_id(bad)


def test_bundle_digest_depends_on_names_and_bytes(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    with pytest.raises(BundleError, match="no bundle.json"):
        bundle_digest(a)
    (a / "bundle.json").write_text("{}")
    (a / "m.onnx").write_bytes(b"1")
    first = bundle_digest(a)
    (a / "m.onnx").rename(a / "n.onnx")
    renamed = bundle_digest(a)
    (a / "n.onnx").write_bytes(b"2")
    assert len({first, renamed, bundle_digest(a)}) == 3
    with pytest.raises(BundleError, match="run the export stage"):
        bundle_digest(tmp_path / "missing")


def test_lineage_reads_git_and_dvc_lock(tmp_path):
    assert collect_lineage(tmp_path).git_commit is None
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  export:\n    cmd: python -m pipeline.export\n"
        "    deps:\n    - path: models/student/checkpoint.pt\n      md5: aaa\n"
        "    outs:\n    - path: models/bundle\n      md5: bbb.dir\n")
    git("add", "dvc.lock")
    git("commit", "-qm", "lock")
    clean = collect_lineage(tmp_path)
    assert len(clean.git_commit) == 40 and clean.git_dirty is False
    assert clean.dvc_stages == {"export": {"deps": {"models/student/checkpoint.pt": "aaa"},
                                           "outs": {"models/bundle": "bbb.dir"}}}
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    dirty = collect_lineage(tmp_path)
    assert dirty.git_dirty is True and dirty.dvc_lock_md5 != clean.dvc_lock_md5
    assert parse_dvc_lock("") == {}


def test_what_a_pipeline_run_rewrites_is_not_a_local_edit(tmp_path):
    """A fresh clone after `dvc repro` registers clean versions: dvc.lock and the declared outputs changed,
    no code did. An edited source file still makes the version dirty."""
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "dvc.yaml").write_text("vars:\n  - paths:\n      m: metrics/m.json\nstages:\n  s:\n"
                                       "    cmd: python s.py\n    deps: [s.py]\n    metrics:\n"
                                       "      - ${paths.m}:\n          cache: false\n")
    (tmp_path / "metrics").mkdir()
    for name, text in {"dvc.lock": "stages: {}\n", "metrics/m.json": "{}", "s.py": "print(1)\n"}.items():
        (tmp_path / name).write_text(text)
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (tmp_path / "dvc.lock").write_text("stages: {s: {}}\n")
    (tmp_path / "metrics/m.json").write_text('{"accuracy": 0.9}')
    assert collect_lineage(tmp_path).git_dirty is False
    (tmp_path / "s.py").write_text("print(2)\n")
    assert collect_lineage(tmp_path).git_dirty is True


def test_cli_help_does_not_import_sqlalchemy():
    code = "import sys, pipeline.cli; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
