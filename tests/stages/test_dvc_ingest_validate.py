"""`dvc repro validate` on a scratch copy of the project, then a second repro that re-runs nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e


def test_dvc_repro_ingest_validate_then_nothing_to_do(repo_copy: Path, request):
    cache = request.config.cache.mkdir("spamassassin-npm")  # shared with the data test: one download
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["ingest"]["spamassassin"].update({"cache_dir": str(cache), "per_group": 30})
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    repro = lambda *args: subprocess.run([sys.executable, "-m", "dvc", "repro", *args], cwd=repo_copy, env=env,  # noqa: E731
                                         capture_output=True, text=True, timeout=300)

    first = repro("validate")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'ingest'" in first.stdout and "Running stage 'validate'" in first.stdout
    ingest_metrics = json.loads((repo_copy / "metrics/ingest.json").read_text())
    assert ingest_metrics["source"]["per_group"] == 30
    assert 140 <= ingest_metrics["rows"] <= 150
    assert json.loads((repo_copy / "metrics/validate.json").read_text())["success"] is True

    second = repro("validate")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout
