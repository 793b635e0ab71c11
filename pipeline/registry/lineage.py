"""Where a model came from: the git commit (and whether the tree was dirty) and dvc.lock hashes.

Both are best-effort: a registry used outside a git or DVC repository records ``None`` rather than
failing, because a version without lineage is still better than no version.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Lineage:
    git_commit: str | None
    git_dirty: bool | None
    # stage name -> {"deps": {path: md5}, "outs": {path: md5}}; None when there is no dvc.lock
    dvc_stages: dict[str, dict[str, dict[str, str]]] | None
    # md5 of dvc.lock itself, a single value that pins every stage at once
    dvc_lock_md5: str | None


def collect_lineage(repo_dir: str | Path = ".") -> Lineage:
    """Read git and dvc.lock state of ``repo_dir``."""
    repo = Path(repo_dir)
    commit, dirty = _git_state(repo)
    lock = repo / "dvc.lock"
    stages: dict[str, dict[str, dict[str, str]]] | None = None
    lock_md5: str | None = None
    if lock.is_file():
        raw = lock.read_bytes()
        lock_md5 = hashlib.md5(raw).hexdigest()
        stages = parse_dvc_lock(raw.decode("utf-8"))
    return Lineage(git_commit=commit, git_dirty=dirty, dvc_stages=stages, dvc_lock_md5=lock_md5)


def parse_dvc_lock(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """Keep, per stage, the md5 of every dependency and output (enough to fetch them with DVC)."""
    import yaml

    data: Any = yaml.safe_load(text) or {}
    stages = data.get("stages", {}) if isinstance(data, dict) else {}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for name, stage in (stages or {}).items():
        if not isinstance(stage, dict):
            continue
        entry: dict[str, dict[str, str]] = {}
        for kind in ("deps", "outs"):
            hashes = {str(item["path"]): str(item.get("md5") or item.get("hash") or "")
                      for item in stage.get(kind) or [] if isinstance(item, dict) and "path" in item}
            entry[kind] = hashes
        out[str(name)] = entry
    return out


def _git_state(repo: Path) -> tuple[str | None, bool | None]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return commit.strip(), None
    written = _run_outputs(repo)
    edited = [line[3:].strip('"') for line in status.splitlines() if line.strip()]
    # what the pipeline run itself rewrote (dvc.lock, the stages' metrics files) is not a local edit
    return commit.strip(), any(path not in written for path in edited)


def _run_outputs(repo: Path) -> set[str]:
    """dvc.lock and every output path dvc.yaml declares (the files ``dvc repro`` writes), repo-relative."""
    try:
        from pipeline.outputs import stage_files

        files = stage_files(repo)
    except Exception:  # no dvc.yaml, or one that does not parse: nothing is exempt
        return set()
    return {"dvc.lock"} | {p for kinds in files.values() for paths in kinds.values() for p in paths}


def run_name(kind: str, repo_dir: str | Path = ".") -> str:
    """A flow run's name that says what it is: ``retrain 2026-12-01 d4592a9`` (``+dirty`` for local edits)."""
    import time

    commit, dirty = _git_state(Path(repo_dir))
    where = "no-git" if commit is None else commit[:7] + ("+dirty" if dirty else "")
    return f"{kind} {time.strftime('%Y-%m-%d %H:%M')} {where}"
