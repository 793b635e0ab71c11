"""params.yaml `validate` section: thresholds of the Great Expectations suite."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class ValidateConfig(Section):
    # Every text must be at least this long (characters).
    min_chars: int = Field(default=1, ge=0)
    # ... and at most this long (set it to ingest.max_chars).
    max_chars: int = Field(default=20_000, ge=1)
    # Allowed labels; None means "the labels present in the labeled split".
    labels: list[str] | None = None
    # Every class must hold at least this fraction of an even share (1/k of the labeled rows, k classes):
    # 0.02 is 1 % of the rows with 2 classes, 0.2 % with 10 and 0.03 % with 77, so the rule scales with the
    # label set. It stops a stray label (a typo, a value from another column) and lets real imbalance
    # through: a class at a tenth or a twentieth of an even share is common in public text data.
    min_class_ratio: float = Field(default=0.02, ge=0.0, le=1.0)
    # An absolute floor on every class's share of the labeled rows as well (null: only the ratio).
    min_class_share: float | None = Field(default=None, ge=0.0, le=1.0)
    # Every class may hold at most this share of the labeled rows (0.99: the other 1 %, as min_class_ratio
    # allows with 2 classes).
    max_class_share: float = Field(default=0.99, ge=0.0, le=1.0)
    # Rows listed per failing expectation in the report.
    examples: int = Field(default=5, ge=0)
