"""Shared fixtures. Tests never touch a model hub or the internet beyond the package registries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for key, value in {"GIT_AUTHOR_NAME": "distill tests", "GIT_AUTHOR_EMAIL": "tests@distill.local",
                   "GIT_COMMITTER_NAME": "distill tests", "GIT_COMMITTER_EMAIL": "tests@distill.local"}.items():
    os.environ.setdefault(key, value)

import pipeline  # noqa: E402,F401  (switches telemetry off for every tool the tests drive)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One Prefect test server for the whole session (~15 s to start once)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


# Files and folders of the project that a pipeline run needs in a scratch copy of the repository.
PROJECT_FILES = ["pipeline", "flows", "dvc.yaml", "params.yaml", "suites", ".dvcignore", "pyproject.toml", "feedback"]


def project_files() -> list[str]:
    """The files of :data:`PROJECT_FILES` that git tracks (committed or staged), never runtime state a run
    left in the work tree (feedback parts of a demo, caches, models). A source tree without git: every
    file but caches."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--", *PROJECT_FILES], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout:
        return [f for f in proc.stdout.split("\0") if f and (ROOT / f).is_file()]
    found = []
    for name in PROJECT_FILES:
        src = ROOT / name
        found += [str(p.relative_to(ROOT)) for p in ([src] if src.is_file() else src.rglob("*"))
                  if p.is_file() and "__pycache__" not in p.parts and not (name == "feedback" and p.suffix != ".md")]
    return found


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Three tiny real bundles (tests/helpers/serving.py), built once per session for every test that needs one."""
    from tests.helpers.serving import build_bundles

    return build_bundles(tmp_path_factory.mktemp("bundles"))


@pytest.fixture
def repo_copy(tmp_path):
    """A scratch git+DVC repository holding a copy of the project code, for end-to-end runs.

    The DVC remote points inside the scratch dir, so tests never write to the user's remote.
    """
    dest = tmp_path / "repo"
    dest.mkdir()
    for rel in project_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = lambda *cmd: subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q", "-b", "main")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "scratch copy")
    return dest


def require_banking77() -> Path:
    if not (BANKING77 / "train.csv").exists():
        raise FileNotFoundError(f"BANKING77 not found at {BANKING77}: the shared data folder must sit beside the repo")
    return BANKING77
