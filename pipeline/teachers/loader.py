"""Rebuild the configured teacher from params (``teacher`` section) and its fitted state directory."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.teacher import TeacherConfig
from pipeline.teachers.base import Teacher, build_teacher


def kind_settings(cfg: TeacherConfig):
    """The sub-section of ``cfg`` that holds the chosen kind's settings (``embedding-head`` -> embedding_head)."""
    return getattr(cfg, cfg.kind.replace("-", "_"))


def load_teacher(cfg: TeacherConfig, model_dir: str | Path) -> Teacher:
    """Build the teacher ``cfg.kind`` with its settings and ``model_dir`` (fitted state, e.g. a head)."""
    return build_teacher(cfg.kind, kind_settings(cfg), Path(model_dir))
