"""Run the DVC pipeline one stage at a time, so an orchestrator can wrap each stage in a task.

Prefect tasks and a plain ``dvc repro`` share one cache and one dvc.lock because both go through
DVC: a stage whose inputs did not change is skipped by DVC itself.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import DistillError

log = logging.getLogger("distill.dvc")


class StageFailed(DistillError):
    """A DVC stage exited non-zero; the message carries the end of its output."""


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool  # False when DVC found nothing changed and skipped it
    seconds: float


def _env() -> dict[str, str]:
    # Stage commands call `python`: make it this interpreter, whichever venv it lives in.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def stage_graph(root: str | Path = ".") -> dict[str, list[str]]:
    """dvc.yaml's stages in run order, each mapped to the stages it reads outputs of (DVC's own edges).

    Imported ``.dvc`` files (feedback parts) are data, not stages, and are left out."""
    import networkx as nx
    from dvc.repo import Repo

    declared = list((yaml.safe_load((Path(root) / "dvc.yaml").read_text()) or {}).get("stages", {}))
    with Repo(str(root)) as repo:
        graph = repo.index.graph
        ordered = list(reversed(list(nx.topological_sort(graph))))
        return {s.name: sorted(getattr(u, "name", None) for u in graph.successors(s)
                               if getattr(u, "name", None) in declared)
                for s in ordered if getattr(s, "name", None) in declared}


def stage_order(root: str | Path = ".") -> list[str]:
    """Names of the dvc.yaml stages, each after the stages it depends on."""
    return list(stage_graph(root))


def repro_stage(name: str, root: str | Path = ".", on_line: Callable[[str], None] | None = None) -> StageRun:
    """``dvc repro --single-item NAME``: run one stage if its inputs changed, stream its output."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--single-item", name], cwd=root, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if is_dvc_chatter(line):
            log.debug("%s", line)  # still in the failure tail below, not in the task log
        else:
            (on_line or log.info)(line)
    code = proc.wait()
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise StageFailed(f"stage {name!r} failed (exit {code}):\n{tail}")
    skipped = any(f"Stage '{name}' didn't change" in line for line in lines)
    return StageRun(stage=name, ran=not skipped, seconds=round(time.perf_counter() - started, 2))


# DVC's own hints after a stage ran (git add, autostage, push): useful at a terminal, noise in a task log.
_CHATTER = re.compile(r"^\s*$|^Updating lock file|^To track the changes with git|^\s*git add |"
                      r"^To enable auto staging|^\s*dvc config core\.autostage|^Use `dvc push`|"
                      r"^Data and pipelines are up to date")


def is_dvc_chatter(line: str) -> bool:
    return bool(_CHATTER.match(line))


def has_remote(root: str | Path = ".") -> bool:
    out = subprocess.run([sys.executable, "-m", "dvc", "remote", "list"], cwd=root, env=_env(),
                         capture_output=True, text=True)
    return out.returncode == 0 and bool(out.stdout.strip())


def push(root: str | Path = ".") -> str:
    """``dvc push`` every cached output to the default remote; returns DVC's summary line."""
    out = subprocess.run([sys.executable, "-m", "dvc", "push"], cwd=root, env=_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise DistillError(f"dvc push failed: {out.stderr.strip() or out.stdout.strip()}")
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else "nothing to push"


def metrics_files(root: str | Path = ".") -> dict[str, list[str]]:
    """Stage name -> the metrics files dvc.yaml declares for it (vars resolved)."""
    from pipeline.outputs import stage_files

    return {name: files["metrics"] for name, files in stage_files(root).items()}
