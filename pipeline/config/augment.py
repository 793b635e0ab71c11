"""params.yaml `augment` section: extra transfer texts made from the unlabeled split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section


class AugmentConfig(Section):
    # Augmented variants per unlabeled text (0 = no augmentation).
    variants: int = Field(default=0, ge=0)
    # Operations drawn from for each variant (see pipeline.augment.OPS).
    ops: list[Literal["dropout", "mask", "span", "swap"]] = Field(
        default_factory=lambda: ["dropout", "mask", "span", "swap"], min_length=1)
    # Per-word probability for dropout, masking and adjacent swaps.
    p: float = Field(default=0.15, gt=0.0, lt=1.0)
    # Token that replaces masked words.
    mask_token: str = "[MASK]"
    # span sampling keeps a contiguous run of at least this share of the words.
    min_span: float = Field(default=0.5, gt=0.0, le=1.0)
