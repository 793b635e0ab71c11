"""Prepare the configured teacher in its directory (the ``teacher`` stage's work).

Kinds that need fitting (``embedding-head``: a head on the labeled split) are fitted here; every other
kind is built once to check it loads, and its ``teacher.json`` (kind, labels, fingerprint) is written.
Entry: ``python -m pipeline.stages.teacher`` (pipeline/stages/teacher.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pipeline.config.teacher import TeacherConfig
from pipeline.errors import DataError
from pipeline.io import write_json

log = logging.getLogger("distill.teacher")


def _fit_embedding_head(cfg: TeacherConfig, frame, model_dir: Path, seed: int) -> dict:
    from pipeline.teachers.embedding_head import fit_head

    labeled = frame[(frame["split"] == "labeled") & frame["label"].notna()]
    if labeled.empty:
        raise DataError("the ingested table has no labeled rows with a label: the embedding-head teacher "
                        "needs some (raise ingest.labeled_fraction)")
    return fit_head(cfg.embedding_head, labeled["text"].tolist(), labeled["label"].astype(str).tolist(),
                    model_dir, seed=seed)


# kind -> fitter; kinds not listed need no fitting.
FITTERS: dict[str, Callable[[TeacherConfig, object, Path, int], dict]] = {"embedding-head": _fit_embedding_head}


def prepare_teacher(cfg: TeacherConfig, frame, model_dir: str | Path, seed: int) -> dict:
    """Fit (when the kind needs it) or check the teacher; write ``teacher.json``; return its record."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if cfg.kind in FITTERS:
        return FITTERS[cfg.kind](cfg, frame, model_dir, seed)
    from pipeline.teachers import load_teacher

    teacher = load_teacher(cfg, model_dir)
    record = {"kind": cfg.kind, "labels": list(teacher.labels), "fingerprint": teacher.fingerprint}
    write_json(model_dir / "teacher.json", record)
    log.info("teacher %s ready: %d labels, fingerprint %s", cfg.kind, len(teacher.labels), teacher.fingerprint)
    return record


def check_gold_labels(labeled, labels: list[str]) -> None:
    """The labeled rows' gold labels are the teacher's labels (distill and evaluate stop on any other)."""
    known = set(labels)
    gold = labeled["label"].dropna().astype(str)
    unknown = gold[~gold.isin(known)].value_counts()
    if len(unknown):
        shown = ", ".join(f"{name!r} ({rows} rows)" for name, rows in unknown.head(10).items())
        raise DataError(f"gold labels of the labeled rows are not among the teacher's labels "
                        f"({', '.join(labels)}): {shown}. Checked before labeling: rename them in the data, or "
                        "fix the teacher's label names (teacher.llm.labels, or id2label in an hf model's config.json)")


def check_user_suites(params, labels: list[str], root: str) -> None:
    """Every case of the user suites names one of ``labels`` (the evaluate stage's own check, run early)."""
    from pipeline.evaluate.suitefile import SuiteFileError, load_suites

    if "user" not in params.evaluate.suites:
        return
    try:
        load_suites(params.evaluate.user.paths, root, labels=labels)
    except SuiteFileError as exc:
        raise DataError(f"{exc}. Checked before labeling: evaluate.user.paths "
                        f"({', '.join(params.evaluate.user.paths) or 'none'}) must name suite files written for "
                        "the teacher's labels (docs/evaluation.md shows the format), or be [] for none") from None
