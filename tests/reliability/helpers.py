"""What every catalogue test checks besides the answer itself: no traceback, one clear line, nothing changed."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest_tree(*paths: Path) -> dict[str, str]:
    """sha256 of every file under ``paths`` (missing paths map to "absent"): a before/after fingerprint."""
    out: dict[str, str] = {}
    for root in paths:
        root = Path(root)
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(root)] = "absent"
    return out


def assert_one_clear_line(err: str, *needles: str) -> str:
    """``err`` is a user error: no traceback, and its first line names what to fix (every needle)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip() and " INFO " not in line]
    assert lines, "no error message at all"
    message = "\n".join(lines)
    for needle in needles:
        assert needle in message, (needle, message)
    return message
