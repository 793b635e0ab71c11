"""Register the evaluated bundle from the gate's verdict: candidate when it passed, rejected otherwise.

    from pipeline.release.register import register_from_gate
    version = register_from_gate(params, "models/bundle", "reports/gate.json", "models/calibration.json")

A gate report belongs to one bundle: ``gate.json`` records the digest of the model files it judged
(``bundle_digest``), and registration refuses a report whose digest is not the bundle's. A bundle the
gate once rejected is not made a candidate by registering it again; an operator can override that
(``force_reason``), and the override goes into the registry history.

The registered copy of the bundle carries the fitted temperature in ``bundle.json`` (``temperature``),
so serving applies the calibration the gate judged, and the cascade's confidence cut (``cascade``). The bundle in ``models/bundle`` (a DVC output) is
never modified: the temperature is written into a staged copy that the registry stores.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import outputs
from pipeline.errors import DistillError
from pipeline.io import read_json, write_json


class ReleaseError(DistillError):
    """The gate report or the bundle needed for registration is missing, unreadable or not each other's."""


@dataclass(frozen=True)
class GateReport:
    """What registration reads of ``reports/gate.json`` (the whole file stays in ``raw``)."""

    passed: bool
    failing: list[str]  # one readable line per failing check
    bundle_digest: str | None  # the model files the gate judged
    raw: dict[str, Any]
    path: str


def read_gate(path: str | Path) -> GateReport:
    path = Path(path)
    if not path.is_file():
        raise ReleaseError(f"{path}: gate report not found; run the evaluate stage first")
    gate = read_json(path)
    if not isinstance(gate, dict) or not isinstance(gate.get("passed"), bool):
        raise ReleaseError(f"{path}: not a gate report (no boolean 'passed')")
    return GateReport(gate["passed"], list(gate.get("failing") or []), gate.get("bundle_digest"), gate, str(path))


def bundle_model_digest(bundle_dir: str | Path) -> str:
    """The digest of a bundle's model files, as its ``bundle.json`` states it (what the gate records)."""
    manifest = Path(bundle_dir) / "bundle.json"
    if not manifest.is_file():
        raise ReleaseError(f"{bundle_dir}: no bundle.json; run the export stage first")
    digest = read_json(manifest).get("digest")
    if not digest:
        raise ReleaseError(f"{manifest}: names no digest of its model files; re-export the bundle")
    return str(digest)


def check_gate_binding(gate: GateReport, bundle_dir: str | Path) -> None:
    """Raise ReleaseError unless the gate report was written for this bundle."""
    judged = gate.bundle_digest
    if not judged:
        raise ReleaseError(f"{gate.path}: names no bundle_digest, so it cannot be matched to {bundle_dir}; "
                           "re-run the evaluate stage (dvc repro evaluate)")
    actual = bundle_model_digest(bundle_dir)
    if judged != actual:
        raise ReleaseError(f"{gate.path} judged bundle {judged[:12]}, but {bundle_dir} is bundle {actual[:12]}: "
                           "the report belongs to another bundle; re-run the evaluate stage on this one")


def stage_calibrated_bundle(bundle_dir: str | Path, calibration_path: str | Path | None, into: Path) -> Path:
    """Copy the bundle into ``into``; set ``bundle.json``'s temperature, cascade cut and out-of-domain cut from calibration.json."""
    bundle_dir = Path(bundle_dir)
    if not (bundle_dir / "bundle.json").is_file():
        raise ReleaseError(f"{bundle_dir}: no bundle.json; run the export stage first")
    staged = into / "bundle"
    shutil.copytree(bundle_dir, staged)
    if calibration_path is not None and Path(calibration_path).is_file():
        manifest = read_json(staged / "bundle.json")
        calibration = read_json(calibration_path)
        manifest["temperature"] = float(calibration["temperature"])
        if calibration.get("cascade"):  # the serving cut the evaluate stage fitted (serve.cascade reads it)
            manifest["cascade"] = calibration["cascade"]
        if calibration.get("ood"):  # the out-of-domain cut (serve.ood_abstain reads it)
            manifest["ood"] = calibration["ood"]
        write_json(staged / "bundle.json", manifest)
    return staged


def register_from_gate(params, bundle_dir: str | Path, gate_path: str | Path,
                       calibration_path: str | Path | None = None, *, actor: str = "retrain-flow",
                       reason: str = "retrain", repo_dir: str | Path = ".", registry=None,
                       force_reason: str | None = None, metrics: dict[str, Any] | None = None):
    """Register the bundle with its gate report. A failed gate registers it as rejected (never a candidate).

    Registering the same bundle again returns its version. When that version was rejected and the new
    report passes, ReleaseError is raised unless ``force_reason`` says why the operator overrides the
    gate; the version is then reinstated as candidate with that reason in the history. ``metrics``
    (default: the evaluate stage's metrics file) are recorded with the version.
    """
    gate = read_gate(gate_path)
    check_gate_binding(gate, bundle_dir)
    if metrics is None:
        metrics_path = outputs.path("evaluate_metrics", repo_dir)
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
                if version.bundle_digest != digest:
                    continue
                if version.rejected and gate.passed:
                    if not force_reason:
                        raise ReleaseError(
                            f"this bundle is already registered as {version.id}, which the gate rejected "
                            f"({'; '.join(version.reasons) or 'failed'}); it is not made a candidate again. "
                            "To override the gate, register it with a reason (--force-reason \"...\")")
                    return registry.reinstate(version.id, actor=actor, reason=force_reason)
                return version
            return registry.register(staged, gate.raw, metrics, params, actor=actor, reason=reason,
                                     repo_dir=repo_dir, set_candidate=gate.passed)
    finally:
        if owns:
            registry.close()
