"""Evaluate the stage outputs on disk: load bundle, teacher and data, run every suite, write the gate files.

    python -m pipeline.stages.evaluate --bundle models/bundle --teacher-dir models/teacher \
        --data data/ingested.parquet --labels data/labels.parquet --suites-root . \
        --gate reports/gate.json --report reports/gate.md --metrics metrics/evaluate.json \
        --calibration models/calibration.json

A failed gate is a result, not a crash: the stage exits 0 and ``reports/gate.json`` says ``passed: false``;
the retrain flow reads it and never makes a failing model the candidate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.errors import DataError
from pipeline.io import read_json, write_json

log = logging.getLogger("distill.evaluate")


def load_bundle_files(bundle_dir: str | Path):
    """The exported bundle (``pipeline.bundle.load_bundle``) and its model files by variant."""
    from pipeline.bundle import load_bundle

    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    manifest = read_json(bundle_dir / "bundle.json")
    files = {f"student_{variant}": bundle_dir / name for variant, name in (manifest.get("files") or {}).items()}
    return bundle, files


def champion_bundle_dir(params, cfg) -> tuple[Path | None, str | None]:
    """The champion's bundle: ``evaluate.champion.bundle``, else the registry's ``production`` alias if set."""
    if cfg.champion.bundle:
        path = Path(cfg.champion.bundle)
        if not (path / "bundle.json").is_file():
            raise DataError(f"{path}: evaluate.champion.bundle has no bundle.json")
        return path, f"bundle {path}"
    registry_cfg = getattr(params, "registry", None)
    if registry_cfg is None:
        return None, None
    from pipeline.registry import open_registry

    with open_registry(registry_cfg) as reg:
        state = reg.get_alias(cfg.champion.alias)
        if state.version is None:
            return None, None
        path = reg.artifact_path(state.version.id)  # the store's copy, wherever the project now lives
    return path, f"registry {cfg.champion.alias} = {state.version.id}"


def _some(labels: list[str], shown: int = 5) -> str:
    return ", ".join(labels[:shown]) + (f", ... ({len(labels)} labels)" if len(labels) > shown else "")


def not_comparable(champ_text: str | None, champion: list[str], teacher: list[str]) -> str:
    """Why a champion with other labels than this release's teacher is not compared (report and log)."""
    return (f"{champ_text} not compared: it answers other labels ({_some(champion)}) than this release's "
            f"teacher ({_some(teacher)}), so this student is judged as a first release. A new label set is a "
            "new model: give it its own registry (registry.url) before promoting it, or set "
            "evaluate.champion.bundle to a bundle with these labels")


def evaluate_stage(params, bundle_dir: str | Path, teacher_dir: str | Path, data_path: str | Path,
                   labels_path: str | Path, suites_root: str | Path = "."):
    """Load everything, run the suites, decide. Returns (Evaluation, info for the report)."""
    from pipeline.evaluate.data import read_eval_data
    from pipeline.evaluate.predictors import BundleVariant, TeacherOracle
    from pipeline.evaluate.run import evaluate_models
    from pipeline.evaluate.suites import EvalContext

    cfg = params.evaluate
    from pipeline.teachers import load_teacher

    data, known, label_names = read_eval_data(data_path, labels_path, params.distill.validation_share,
                                              cfg.slices.group_column, cfg.max_rows)
    teacher = TeacherOracle(load_teacher(params.teacher, teacher_dir), known, cfg.teacher_cache_dir)
    bundle, files = load_bundle_files(bundle_dir)
    models: dict[str, Any] = {"teacher": teacher}
    for variant in ("fp32", "int8"):
        if f"student_{variant}" in files:
            models[f"student_{variant}"] = BundleVariant(bundle, variant)
    champ_dir, champ_text = champion_bundle_dir(params, cfg)
    if champ_dir is not None:
        from pipeline.bundle import load_bundle

        champion = BundleVariant(load_bundle(champ_dir), "int8")
        if list(champion.labels) == list(teacher.labels):
            models["champion"] = champion
        else:  # a new label set (new data in a project with a registry): a first release, not a challenger
            champ_text = not_comparable(champ_text, list(champion.labels), list(teacher.labels))
            log.warning("champion: %s", champ_text)
    ctx = EvalContext(data=data, models=models, cfg=cfg, root=Path(suites_root), bundle_files=files)
    result = evaluate_models(ctx)
    info = {"gate_models": list(cfg.gate_models), "champion": champ_text, "labels": label_names,
            "bundle_temperature": float(getattr(bundle, "temperature", 1.0)),
            "bundle_digest": bundle.digest,  # binds this report to the bundle it judged (pipeline/release)
            "teacher_calls": teacher.calls, "teacher_cache_hits": teacher.cache_hits,
            "rows": {"test": len(data.test_texts), "heldout": len(data.heldout_texts)},
            "suite_seconds": result.seconds}
    return result, info


def calibration_record(result, bundle_temperature: float = 1.0) -> dict[str, Any]:
    """What export/serving read from models/calibration.json (docs/contracts.md).

    The suites fit T on the bundle's probabilities, which already use the bundle's own temperature T0;
    softmax(log softmax(z / T0) / T) = softmax(z / (T0 * T)), so the temperature to ship is T0 * T.
    """
    temps = {m: t * bundle_temperature for m, t in (result.details.get("temperature") or {}).items()}
    by_model = result.metrics.get("calibration", {})
    served = "student_int8" if "student_int8" in temps else next(iter(temps), None)
    record = {"temperature": round(temps.get(served, 1.0), 6), "model": served,
              "fitted_on": result.details.get("temperature_fitted_on"),
              "per_model": {m: {k: round(v, 6) for k, v in by_model.get(m, {}).items()} for m in temps}}
    cascade = result.details.get("cascade")
    if isinstance(cascade, dict):  # the serving cut, on probabilities at the shipped temperature
        record["cascade"] = {"threshold": round(float(cascade["threshold"]), 6), "model": cascade["model"],
                             "target_deferral": cascade["target_deferral"],
                             "target_agreement": cascade["target_agreement"],
                             "heldout_deferred": round(float(cascade["heldout"]["deferred"]), 6),
                             "heldout_agreement": round(float(cascade["heldout"]["agreement"]), 6)}
    ood = result.details.get("ood")
    if isinstance(ood, dict):  # the out-of-domain cut on the served student's in-domain score (serve.ood_abstain)
        record["ood"] = {"threshold": round(float(ood["threshold"]), 6), "model": ood["model"], "score": ood["score"],
                         "in_domain_reject_rate": ood["in_domain_reject_rate"],
                         "recall": round(float(ood["recall"]), 6)}
    return record


def write_outputs(result, info: dict, gate_path, report_path, metrics_path, calibration_path=None,
                  data_docs=None) -> None:
    """gate.json, gate.md (linking ``data_docs``, the validate stage's Data Docs folder, when it exists),
    the flat metrics and the calibration record."""
    import os

    from pipeline.evaluate.report import flat_metrics, gate_json, gate_markdown
    from pipeline.io import atomic_write_bytes

    write_json(gate_path, gate_json(result.verdict, result.metrics, result.details, info))
    index = Path(data_docs) / "index.html" if data_docs is not None else None
    link = os.path.relpath(index, Path(report_path).parent) if index is not None and index.is_file() else None
    atomic_write_bytes(report_path, gate_markdown(result.verdict, result.metrics, result.details, info,
                                                  data_docs=link).encode())
    write_json(metrics_path, flat_metrics(result.verdict, result.metrics))
    if calibration_path is not None:
        write_json(calibration_path, calibration_record(result, info.get("bundle_temperature", 1.0)))
