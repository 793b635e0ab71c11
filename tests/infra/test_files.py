"""Every infra file parses; the Dockerfile installs what the project pins and runs as the CLI."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

import pipeline
from tests.infra.conftest import INFRA, ROOT, load_yaml_docs

pytestmark = [pytest.mark.unit, pytest.mark.infra]


def test_every_yaml_and_json_file_parses():
    files = sorted(p for p in INFRA.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
    assert len(files) >= 15, files
    for path in files:
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path
        else:
            docs = load_yaml_docs(path)
            assert docs and all(isinstance(d, dict) for d in docs), path


def _dockerfile() -> list[tuple[str, str]]:
    text = (INFRA / "Dockerfile").read_text().replace("\\\n", " ")
    return [tuple(line.strip().split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_base_torch_first_lock_then_project():
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch=="))
    runs = [arg for instr, arg in steps if instr == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if f"pip install {torch_pin}" in r)
    assert "download.pytorch.org/whl/cpu" in runs[torch_at], "torch must come from the CPU index"
    lock_at = next(i for i, r in enumerate(runs) if "-r /tmp/requirements.lock" in r)
    project_at = next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps \.(\s|$)", r))
    assert torch_at < lock_at < project_at
    assert f"{torch_pin}\n" in (ROOT / "requirements.lock").read_text(), "lock file and pyproject disagree on torch"


def test_dockerfile_runs_the_cli_as_a_non_root_user_with_telemetry_off():
    steps = _dockerfile()
    user = [arg for instr, arg in steps if instr == "USER"]
    assert user and user[-1] not in {"root", "0"}
    entry = json.loads(next(arg for instr, arg in steps if instr == "ENTRYPOINT"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["distill"] and entry[0] in scripts
    env = " ".join(arg for instr, arg in steps if instr == "ENV")
    for key, value in pipeline._QUIET.items():
        assert f"{key}={value}" in env, key


def test_dockerfile_copies_what_exists_and_the_dockerignore_lets_it_through():
    allowed = [line[1:].removesuffix("/**") for line in (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for instr, arg in _dockerfile():
        if instr == "COPY":
            sources = arg.split()[:-1]
            for src in sources:
                assert (ROOT / src).exists(), src
                assert src in allowed, f"{src} is copied but excluded by Dockerfile.dockerignore"
