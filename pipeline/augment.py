"""Transfer-set augmentation: word dropout, masking, span sampling and adjacent swaps.

``augment_rows`` turns each text of ``augment.splits`` (labeled and unlabeled by default) into
``augment.variants`` perturbed copies, seeded per (seed, origin id, variant) so the same input always
gives the same texts. The label stage adds them as ``split = augmented`` rows (with ``origin_id``) and
labels them through the teacher cache, so each augmented text costs one teacher call ever; they never
carry a gold label. Used by the label stage (``python -m pipeline.stages.label``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from pipeline.config.augment import AugmentConfig
from pipeline.plugins import Plugins

Op = Callable[[list[str], np.random.Generator, AugmentConfig], list[str]]
OPS: Plugins[Op] = Plugins("augment.ops entry")
op = OPS.register


@op("dropout")
def word_dropout(words: list[str], rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    keep = [w for w in words if rng.random() >= cfg.p]
    return keep or words[:1]


@op("mask")
def mask_words(words: list[str], rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    return [cfg.mask_token if rng.random() < cfg.p else w for w in words]


@op("span")
def sample_span(words: list[str], rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    n = len(words)
    length = int(rng.integers(max(1, int(np.ceil(cfg.min_span * n))), n + 1))
    start = int(rng.integers(0, n - length + 1))
    return words[start:start + length]


@op("swap")
def swap_adjacent(words: list[str], rng: np.random.Generator, cfg: AugmentConfig) -> list[str]:
    out = list(words)
    i = 0
    while i < len(out) - 1:
        if rng.random() < cfg.p:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 2
        else:
            i += 1
    return out


def augment_text(text: str, origin_id: str, variant: int, cfg: AugmentConfig, seed: int) -> str:
    """One deterministic variant of ``text``: the op and its randomness depend only on the arguments."""
    words = text.split()
    if not words:
        return text
    origin = int(hashlib.sha256(origin_id.encode()).hexdigest()[:12], 16)
    rng = np.random.default_rng([seed, origin, variant])
    name = cfg.ops[int(rng.integers(len(cfg.ops)))]
    return " ".join(OPS.get(name)(words, rng, cfg))


def augment_rows(ids: list[str], texts: list[str], cfg: AugmentConfig, seed: int) -> tuple[list[dict], dict]:
    """Augmented rows (id, text, split, origin_id) for the given unlabeled rows, and counts.

    A variant equal to its original or to an earlier variant of the same text is dropped and counted
    under ``duplicates`` (labeling it again would teach nothing new).
    """
    rows: list[dict] = []
    duplicates = 0
    for origin_id, text in zip(ids, texts):
        seen = {text}
        for v in range(cfg.variants):
            new = augment_text(text, origin_id, v, cfg, seed)
            if new in seen:
                duplicates += 1
                continue
            seen.add(new)
            rid = "aug-" + hashlib.sha256(f"{origin_id}\0{v}\0{new}".encode()).hexdigest()[:16]
            rows.append({"id": rid, "text": new, "split": "augmented", "origin_id": origin_id})
    return rows, {"augmented_rows": len(rows), "augment_duplicates": duplicates}
