"""``embedding-head`` teacher: a sentence encoder plus a logistic-regression head fitted on the labeled split.

The head is fitted by the ``teacher`` stage (:func:`fit_head`), which writes ``head.npz`` and
``teacher.json`` to ``models/teacher/``; :class:`EmbeddingHeadTeacher` loads them back. The fingerprint
covers the encoder's file digest, the head weights and the settings that change embeddings
(``encoder``, ``max_length``); batch size and length bucketing only change speed, so they are left out
and do not invalidate the label cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config.teacher import EmbeddingHeadConfig
from pipeline.io import read_json, write_json
from pipeline.teachers.base import TeacherError, check_probabilities, fingerprint_of, register
from pipeline.teachers.encoder import Encoder
from pipeline.teachers.files import file_digest, weight_files_in

log = logging.getLogger("distill.teacher")

HEAD_FILE = "head.npz"
META_FILE = "teacher.json"
# Inverse regularization strengths tried by cross-validation.
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _encoder_of(cfg: EmbeddingHeadConfig) -> Encoder:
    return Encoder(cfg.encoder, max_length=cfg.max_length, batch_size=cfg.batch_size,
                   length_bucketing=cfg.length_bucketing, cache_dir=cfg.cache_dir)


def fit_head(cfg: EmbeddingHeadConfig, texts: Sequence[str], labels: Sequence[str], model_dir: str | Path,
             seed: int = 42, encoder: Encoder | None = None) -> dict:
    """Fit the multinomial logistic-regression head on (texts, gold labels); write it to ``model_dir``.

    The regularization strength is chosen by stratified k-fold cross-validation on these rows only
    (the caller passes the labeled split, never the test split). Returns the ``teacher.json`` record.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if len(texts) != len(labels) or not texts:
        raise TeacherError(f"fit_head needs as many labels as texts (got {len(texts)} texts, {len(labels)} labels)")
    names = sorted(set(labels))
    if len(names) < 2:
        raise TeacherError(f"fit_head needs at least 2 classes in the labeled split, found {names}")
    encoder = encoder or _encoder_of(cfg)
    x = encoder.embed(texts)
    y = np.array([names.index(label) for label in labels])
    folds = min(5, int(np.bincount(y).min()))
    scores: dict[str, float] = {}
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for c in C_GRID:
            clf = LogisticRegression(C=c, max_iter=2000, class_weight=cfg.class_weight)
            scores[str(c)] = float(cross_val_score(clf, x, y, cv=cv).mean())
        best_c = float(max(C_GRID, key=lambda c: (scores[str(c)], -c)))
    else:
        best_c = 1.0
        log.warning("a class has fewer than 2 labeled rows: no cross-validation, C=%.1f", best_c)
    clf = LogisticRegression(C=best_c, max_iter=2000, class_weight=cfg.class_weight).fit(x, y)
    coef, intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    if len(names) == 2:  # sklearn keeps one row for binary problems: softmax([0, z]) == sigmoid(z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([np.zeros_like(intercept), intercept])
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    np.savez(model_dir / HEAD_FILE, coef=coef, intercept=intercept)
    head_digest = file_digest(model_dir / HEAD_FILE)
    record = {
        "kind": "embedding-head",
        "labels": names,
        "fingerprint": _fingerprint(cfg, encoder.digest, head_digest),
        "encoder": cfg.encoder,
        "encoder_digest": encoder.digest,
        "head_digest": head_digest,
        "C": best_c,
        "class_weight": cfg.class_weight,
        "cv_folds": folds,
        "cv_accuracy": scores,
        "train_rows": len(texts),
    }
    write_json(model_dir / META_FILE, record)
    log.info("head fitted on %d rows, %d classes, C=%s (cv accuracy %s)", len(texts), len(names), best_c,
             f"{scores[str(best_c)]:.3f}" if scores else "n/a")
    return record


def _fingerprint(cfg: EmbeddingHeadConfig, encoder_digest: str, head_digest: str) -> str:
    return fingerprint_of("embedding-head", cfg.encoder, cfg.max_length, encoder_digest, head_digest)


class EmbeddingHeadTeacher:
    """Encoder + fitted head read from ``model_dir``."""

    def __init__(self, cfg: EmbeddingHeadConfig, model_dir: str | Path):
        model_dir = Path(model_dir)
        head_path, meta_path = model_dir / HEAD_FILE, model_dir / META_FILE
        if not head_path.exists() or not meta_path.exists():
            raise TeacherError(f"{model_dir}: no fitted head ({HEAD_FILE}, {META_FILE}); "
                               f"run the teacher stage first (dvc repro teacher)")
        meta = read_json(meta_path)
        head = np.load(head_path)
        self.coef, self.intercept = head["coef"], head["intercept"]
        self.labels: list[str] = list(meta["labels"])
        self.encoder = _encoder_of(cfg)
        if self.coef.shape != (len(self.labels), self.encoder.model.config.hidden_size):
            raise TeacherError(f"{head_path}: head shape {self.coef.shape} does not fit {len(self.labels)} labels "
                               f"and encoder width {self.encoder.model.config.hidden_size}; re-run the teacher stage")
        self._fingerprint = _fingerprint(cfg, self.encoder.digest, file_digest(head_path))
        self._files = [*weight_files_in(self.encoder.source), head_path, meta_path]

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def weight_files(self) -> list[Path]:
        """The encoder's weights and the fitted head: what serving this teacher takes."""
        return list(self._files)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        x = self.encoder.embed(texts)
        probs = _softmax(x.astype(np.float64) @ self.coef.T.astype(np.float64) + self.intercept)
        return check_probabilities(probs, len(texts), len(self.labels))


@register("embedding-head")
def build(cfg: EmbeddingHeadConfig, model_dir: str | Path) -> EmbeddingHeadTeacher:
    return EmbeddingHeadTeacher(cfg, model_dir)
