"""Register the evaluated bundle from the gate's verdict: candidate when it passed, rejected otherwise.

    from pipeline.evaluate.release import register_from_gate
    version = register_from_gate(params, "models/bundle", "reports/gate.json", "models/calibration.json")

The registered copy of the bundle carries the fitted temperature in ``bundle.json`` (``temperature``),
so serving applies the calibration the gate judged. The bundle in ``models/bundle`` (a DVC output) is
never modified: the temperature is written into a staged copy that the registry stores.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import DistillError
from pipeline.io import read_json, write_json


class ReleaseError(DistillError):
    """The gate report or the bundle needed for registration is missing or unreadable."""


def read_gate(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ReleaseError(f"{path}: gate report not found; run the evaluate stage first")
    gate = read_json(path)
    if not isinstance(gate, dict) or not isinstance(gate.get("passed"), bool):
        raise ReleaseError(f"{path}: not a gate report (no boolean 'passed')")
    return gate


def stage_calibrated_bundle(bundle_dir: str | Path, calibration_path: str | Path | None, into: Path) -> Path:
    """Copy the bundle into ``into`` and set ``bundle.json``'s temperature from calibration.json."""
    bundle_dir = Path(bundle_dir)
    if not (bundle_dir / "bundle.json").is_file():
        raise ReleaseError(f"{bundle_dir}: no bundle.json; run the export stage first")
    staged = into / "bundle"
    shutil.copytree(bundle_dir, staged)
    if calibration_path is not None and Path(calibration_path).is_file():
        manifest = read_json(staged / "bundle.json")
        manifest["temperature"] = float(read_json(calibration_path)["temperature"])
        write_json(staged / "bundle.json", manifest)
    return staged


def register_from_gate(params, bundle_dir: str | Path, gate_path: str | Path,
                       calibration_path: str | Path | None = None, *, actor: str = "flow:retrain",
                       reason: str = "retrain", repo_dir: str | Path = ".", registry=None):
    """Register the bundle with its gate report. A failed gate registers it as rejected (never a candidate)."""
    gate = read_gate(gate_path)
    metrics_path = Path(repo_dir) / "metrics" / "evaluate.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else {}
    owns = registry is None
    if owns:
        from pipeline.registry import open_registry

        registry = open_registry(getattr(params, "registry", None), root=repo_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="distill-release-") as tmp:
            staged = stage_calibrated_bundle(bundle_dir, calibration_path, Path(tmp))
            # A re-run that changed nothing produces the same bundle: keep its version, add none.
            from pipeline.registry.artifacts import bundle_digest

            digest = bundle_digest(staged)
            for version in registry.list_versions():
                if version.bundle_digest == digest:
                    return version
            return registry.register(staged, gate, metrics, params, actor=actor, reason=reason,
                                     repo_dir=repo_dir, set_candidate=gate["passed"])
    finally:
        if owns:
            registry.close()
