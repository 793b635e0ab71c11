"""The one hash of a text that every part of distill keys on.

The label cache, the gate's teacher oracle, the prediction log and ingest's content ids all call
:func:`text_key`; if two of them hashed differently, a cached teacher answer would silently be missed
and paid for again. Lone surrogates (which plain UTF-8 cannot encode) hash by their code points.
"""

from __future__ import annotations

import hashlib


def text_key(text: str) -> str:
    """sha256 (hex) of the text's UTF-8 bytes: the label cache's key, the prediction log's text hash."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_id(text: str) -> str:
    """Stable row id of a text that has none: the first 16 hex digits of :func:`text_key`."""
    return text_key(text)[:16]
