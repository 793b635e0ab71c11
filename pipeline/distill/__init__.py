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

import numpy as np

from pipeline.distill.data import StoredTransferSet, TransferSet, build_transfer_set
from pipeline.distill.hints import Embedder, with_hints
from pipeline.distill.rows import chunks

__all__ = ["DistillResult", "train_from_files", "train_from_frames", "train_transfer_set", "write_outputs"]

log = logging.getLogger("distill.distill")

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class DistillResult:
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    confusion: list[tuple[str, str]]  # (actual, predicted) on test rows with a gold label


def train_transfer_set(data: TransferSet | StoredTransferSet, cfg, seed: int, out_dir: str | Path,
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
    train_rows, val_rows, test_rows = data.train_rows(), data.val_rows(), data.test_rows()
    log.info("training %s on %d rows (%d validation, %d test), %d process(es)", cfg.student.name,
             train_rows.n, val_rows.n, test_rows.n, cfg.processes)
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
        "train_rows": train_rows.n,
        "val_rows": val_rows.n,
        "test_rows": test_rows.n,
        "parameters": int(sum(p.numel() for p in loaded.model.parameters())),
    }
    if "hint_cosine" in best:  # the training-time cosine of the features' map with the teacher's embeddings
        metrics["hint"] = {"weight": cfg.hint_weight, "dim": (train_rows.k or 0) - len(data.labels),
                           "cosine": best["hint_cosine"]}
    confusion: list[tuple[str, str]] = []
    if test_rows.n:
        featurizer, parts = Featurizer(spec), []
        for texts, probs, gold in chunks(test_rows):  # one chunk of texts in memory at a time
            parts.append((predict_logits(loaded.model, featurizer, texts).argmax(axis=1), gold,
                          None if probs is None else probs.argmax(axis=1)))
        pred, test_gold = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        known = test_gold >= 0
        if known.any():
            metrics["test_accuracy"] = float((pred[known] == test_gold[known]).mean())
            confusion = [(data.labels[a], data.labels[p]) for a, p in zip(test_gold[known], pred[known])]
        if parts[0][2] is not None:
            teacher = np.concatenate([p[2] for p in parts])
            metrics["test_agreement"] = float((pred == teacher).mean())
            if known.any():
                metrics["teacher_test_accuracy"] = float((teacher[known] == test_gold[known]).mean())
    return DistillResult(checkpoint=path, metrics=metrics, history=history, confusion=confusion)


def train_from_frames(ingested, labels_frame, label_names: list[str], cfg, seed: int, out_dir: str | Path,
                      stop_after_epoch: int | None = None, hints: Embedder | None = None) -> DistillResult:
    """Pure entry point: ingested + labels tables (contracts.md) -> trained checkpoint and metrics.
    ``hints``: the teacher's sentence encoder, for the hint loss (used when ``cfg.hint_weight`` > 0)."""
    data = build_transfer_set(ingested, labels_frame, label_names, cfg.validation_share, cfg.use_gold)
    data = with_hints(data, hints if cfg.hint_weight > 0 else None)
    return train_transfer_set(data, cfg, seed, out_dir, stop_after_epoch)


def train_from_files(ingested_path: str | Path, labels_path: str | Path, cfg, seed: int, out_dir: str | Path,
                     stop_after_epoch: int | None = None, hints: Embedder | None = None) -> DistillResult:
    """The distill stage's entry: the two Parquet files are streamed into row stores in a scratch folder
    (``TMPDIR``), so memory holds a window of rows, not the tables; same rows and result as
    :func:`train_from_frames` on the same files."""
    import tempfile

    from pipeline.distill.data import stream_transfer_set

    with tempfile.TemporaryDirectory(prefix="distill-rows-") as scratch:
        data = stream_transfer_set(ingested_path, labels_path, cfg.validation_share, cfg.use_gold, scratch)
        data = with_hints(data, hints if cfg.hint_weight > 0 else None, Path(scratch) / "train-hints")
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
