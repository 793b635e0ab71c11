"""Distillation: train the student on the teacher's soft labels (the ``distill`` stage's work).

    python -m pipeline.stages.distill --data data/ingested.parquet --labels data/labels.parquet \
        --out models/student --metrics metrics/distill.json --plots plots/distill

Reads the ``distill`` params section (and ``seed``). Writes ``<out>/checkpoint.pt`` (self-describing,
resumable: re-running after a kill continues from the last finished epoch), the metrics JSON (best
epoch, validation agreement with the teacher, test accuracy against gold, test agreement with the
teacher, loss) and DVC plots ``history.csv`` (epoch, loss, val_agreement) and ``confusion.csv``
(actual, predicted). :func:`train_from_frames` is the pure entry point other code (bench) calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.distill.data import TransferSet, build_transfer_set

__all__ = ["DistillResult", "train_from_frames", "train_transfer_set", "write_outputs"]

log = logging.getLogger("distill.distill")

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class DistillResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    confusion: list[tuple[str, str]]  # (actual, predicted) on test rows with a gold label


def train_transfer_set(data: TransferSet, cfg, seed: int, out_dir: str | Path,
                       stop_after_epoch: int | None = None) -> DistillResult:
    """Train (or resume) the student on a prepared transfer set and evaluate it on its test rows."""
    from pipeline.distill.checkpoint import load_student
    from pipeline.distill.train import TrainJob, predict_logits, run_training
    from pipeline.students.featurize import Featurizer, spec_from_config

    spec = spec_from_config(cfg.featurizer)
    path = Path(out_dir) / CHECKPOINT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    job = TrainJob(data=data, cfg=cfg, spec=spec, seed=seed, checkpoint=str(path),
                   stop_after_epoch=stop_after_epoch)
    log.info("training %s on %d rows (%d validation, %d test), %d process(es)", cfg.student.name,
             len(data.train_texts), len(data.val_texts), len(data.test_texts), cfg.processes)
    run_training(job)

    loaded = load_student(path)
    training = loaded.checkpoint["training"]
    history = list(training["history"])
    best = next(h for h in history if h["epoch"] == training["best_epoch"])
    metrics: dict[str, Any] = {
        "student": cfg.student.name,
        "best_epoch": training["best_epoch"],
        "epochs_run": training["epoch"],
        "finished": bool(training["done"]),
        "val_agreement": training["best_val"],
        "loss": best["loss"],
        "train_rows": len(data.train_texts),
        "val_rows": len(data.val_texts),
        "test_rows": len(data.test_texts),
        "parameters": int(sum(p.numel() for p in loaded.model.parameters())),
    }
    confusion: list[tuple[str, str]] = []
    if data.test_texts:
        pred = predict_logits(loaded.model, Featurizer(spec), data.test_texts).argmax(axis=1)
        known = data.test_gold >= 0
        if known.any():
            metrics["test_accuracy"] = float((pred[known] == data.test_gold[known]).mean())
            confusion = [(data.labels[a], data.labels[p]) for a, p in zip(data.test_gold[known], pred[known])]
        if data.test_probs is not None:
            teacher = data.test_probs.argmax(axis=1)
            metrics["test_agreement"] = float((pred == teacher).mean())
            if known.any():
                metrics["teacher_test_accuracy"] = float((teacher[known] == data.test_gold[known]).mean())
    return DistillResult(checkpoint=path, metrics=metrics, history=history, confusion=confusion)


def train_from_frames(ingested, labels_frame, label_names: list[str], cfg, seed: int, out_dir: str | Path,
                      stop_after_epoch: int | None = None) -> DistillResult:
    """Pure entry point: ingested + labels tables (contracts.md) -> trained checkpoint and metrics."""
    data = build_transfer_set(ingested, labels_frame, label_names, cfg.validation_share, cfg.use_gold)
    return train_transfer_set(data, cfg, seed, out_dir, stop_after_epoch)


def write_outputs(result: DistillResult, metrics_path: str | Path, plots_dir: str | Path) -> None:
    import csv
    import io

    from pipeline.io import atomic_write_bytes, write_json

    write_json(metrics_path, result.metrics)
    for name, header, rows in (
        ("history.csv", ["epoch", "loss", "val_agreement"],
         [[h["epoch"], f"{h['loss']:.6f}", f"{h['val_agreement']:.6f}"] for h in result.history]),
        ("confusion.csv", ["actual", "predicted"], [list(r) for r in result.confusion]),
    ):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        atomic_write_bytes(Path(plots_dir) / name, buf.getvalue().encode())
