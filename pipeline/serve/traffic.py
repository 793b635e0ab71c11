"""Sticky canary routing: a request key hashes to a point in [0, 1); points below the weight go to the canary.

The same key therefore always takes the same route at a given weight, and raising the weight only moves
keys from stable to canary (never back), so a user does not flip between models while a canary grows.
"""

from __future__ import annotations

import hashlib

STABLE = "stable"
CANARY = "canary"
_SCALE = float(1 << 64)


def bucket(key: str) -> float:
    """The key's fixed point in [0, 1) (blake2b, so it is stable across processes and restarts)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose_route(key: str, weight: float) -> str:
    """``canary`` for a share ``weight`` of keys, ``stable`` for the rest."""
    if weight <= 0.0:
        return STABLE
    if weight >= 1.0:
        return CANARY
    return CANARY if bucket(key) < weight else STABLE


def request_key(key: str | None, texts: list[str]) -> str:
    """What a request is routed by: its ``key`` when given, else its text(s)."""
    if key:
        return "k:" + key
    return "t:" + ("\x1f".join(texts) if len(texts) > 1 else texts[0])
