"""Fixtures of the web-runtime tests: the Node.js tools of web/ (installed by `make install`) and a
words-featurizer bundle, built once per module."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

WEB = ROOT / "web"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: the web runtime's tests run web/ under Node.js (apt-get install nodejs)")
    if not (WEB / "node_modules" / "@noble" / "hashes").exists():
        pytest.fail("web/node_modules is missing: run `make install` (npm ci in web/)")
    return found


def run_node(script: str, payload: dict, timeout: float = 120) -> dict:
    """Run ``web/scripts/<script>`` with ``payload`` as JSON on stdin; its stdout parsed as JSON."""
    proc = subprocess.run([node(), str(WEB / "scripts" / script)], input=json.dumps(payload), capture_output=True,
                          text=True, timeout=timeout, cwd=WEB)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def words_bundle(tmp_path_factory) -> tuple[Path, list[str]]:
    from tests.helpers.serving import build_words_bundle

    return build_words_bundle(tmp_path_factory.mktemp("web-bundle"))
