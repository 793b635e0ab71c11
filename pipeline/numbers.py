"""Numbers as an operator reads them, in logs, artifacts and tables: 4 significant digits, not 16."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 4) -> str:
    """``0.1667`` for 0.16666666666666666, ``n/a`` for None, ``true``/``false`` for booleans; others as str."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def pct(value: Any) -> str:
    """A share as a percentage with one decimal (``92.8 %``); ``n/a`` when it is not a number."""
    return "n/a" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{100 * value:.1f} %"
