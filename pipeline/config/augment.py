"""params.yaml `augment` section: extra transfer texts made from the labeled and unlabeled splits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section


class AugmentConfig(Section):
    # Augmented variants per text of the splits below (0 = no augmentation).
    variants: int = Field(default=0, ge=0)
    # Splits whose texts are augmented. With every row labeled (no unlabeled split) only variants of the
    # labeled texts can carry the teacher beyond the rows it was fitted on; a variant never gets a gold label.
    splits: list[Literal["labeled", "unlabeled"]] = Field(default_factory=lambda: ["labeled", "unlabeled"],
                                                          min_length=1)
    # Operations drawn from for each variant (see pipeline.augment.OPS).
    ops: list[str] = Field(default_factory=lambda: ["dropout", "mask", "span", "swap"], min_length=1)
    # Per-word probability for dropout, masking and adjacent swaps.
    p: float = Field(default=0.15, gt=0.0, lt=1.0)
    # Token that replaces masked words.
    mask_token: str = "[MASK]"
    # span sampling keeps a contiguous run of at least this share of the words.
    min_span: float = Field(default=0.5, gt=0.0, le=1.0)

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, ops: list[str]) -> list[str]:
        from pipeline.augment import OPS

        return [OPS.check(name) for name in ops]
