"""``make demo`` / ``distill demo``: run the pipeline on the embedded default and say what it made.

The pipeline runs through the retrain Prefect flow (so the run shows up in the Prefect UI); the summary
reads the metrics files the stages wrote and lists every DVC output with its size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml


def _outputs(root: Path) -> list[tuple[str, str]]:
    stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
    found = []
    for name, spec in stages.items():
        for kind in ("outs", "metrics", "plots"):
            for entry in spec.get(kind, []) or []:
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                found.append((name, path))
    return found


def _size(path: Path) -> str:
    if not path.exists():
        return "missing"
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""


def _metrics(root: Path, name: str) -> dict:
    path = root / "metrics" / name
    return json.loads(path.read_text()) if path.exists() else {}


def summary(root: Path, runs: list[dict], seconds: float) -> str:
    lines = [f"distill demo: pipeline finished in {seconds:.0f} s", ""]
    lines.append("stages: " + ", ".join(f"{r['stage']} ({'ran' if r['ran'] else 'cached'}, {r['seconds']:.0f} s)" for r in runs))
    ingest = _metrics(root, "ingest.json")
    if ingest.get("splits"):
        lines.append(f"data: {ingest.get('rows_read')} read, {ingest.get('rows')} kept; per split: "
                     + ", ".join(f"{k} {v}" for k, v in ingest["splits"].items()))
    validate = _metrics(root, "validate.json")
    if validate:
        lines.append(f"validation: {'passed' if validate.get('success') else 'FAILED'}")
    lines += ["", "outputs (tracked by DVC):"]
    lines += [f"  {path:<34} {_size(root / path):>10}   (stage {stage})" for stage, path in _outputs(root)]
    lines += ["", "next: `dvc metrics show`, `dvc dag`, the Prefect UI (`prefect server start`) for the run history."]
    return "\n".join(lines)


def run_demo(root: str | Path = ".", push: bool = True) -> int:
    from flows.retrain import retrain

    root = Path(root).resolve()
    started = time.perf_counter()
    result = retrain(root=str(root), push=push)
    print(summary(root, result["stages"], time.perf_counter() - started))
    return 0
