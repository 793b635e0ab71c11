"""Stage ``teacher``: prepare the configured teacher in ``models/teacher/``.

Kinds that need fitting (``embedding-head``: a head on the labeled split) are fitted here; every other
kind is built once to check it loads, and its ``teacher.json`` (kind, labels, fingerprint) is written.

    python -m pipeline.teacher --data data/ingested.parquet --out models/teacher
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Sequence

from pipeline.config.teacher import TeacherConfig
from pipeline.errors import DataError
from pipeline.io import write_json
from pipeline.stage import load_stage_params, run_stage, stage_parser

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


def read_ingested(path: str | Path, columns: Sequence[str] = ("id", "text", "split")):
    """Read data/ingested.parquet and check the columns the caller needs."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: ingested table not found; run the ingest stage first (dvc repro ingest)")
    frame = pd.read_parquet(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the ingest contract (docs/contracts.md)")
    return frame


def main(argv: Sequence[str] | None = None) -> int:
    parser = stage_parser("distill teacher", __doc__)
    parser.add_argument("--data", required=True, help="ingested table (data/ingested.parquet)")
    parser.add_argument("--out", required=True, help="teacher directory to write (models/teacher)")

    def body(args: argparse.Namespace) -> None:
        params = load_stage_params(args)
        prepare_teacher(params.teacher, read_ingested(args.data, ("id", "text", "split", "label")), args.out,
                        params.seed)

    return run_stage("teacher", body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
