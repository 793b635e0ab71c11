"""A folder of raw emails: single-message files (``.eml`` or any other file) and mbox files.

A file is read as an mbox when its name ends in ``.mbox`` or it starts with an mbox ``From `` line;
every other regular, non-hidden file is one RFC 822 message. With ``label_from_folder`` the label is
the name of the first sub-folder under ``ingest.source.path`` (``mail/spam/x.eml`` -> ``spam``);
files directly in the root get no label and are counted. ``group`` is the relative folder path.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import DataError
from pipeline.ingest.email_text import message_text
from pipeline.ingest.sources import SourceData, raw_frame, register

if TYPE_CHECKING:
    from pipeline.config.ingest import IngestConfig


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".mbox":
        return True
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _messages(path: Path) -> list[bytes]:
    if not _is_mbox(path):
        return [path.read_bytes()]
    box = mailbox.mbox(str(path), create=False)
    try:
        return [box.get_bytes(key) for key in box.keys()]
    finally:
        box.close()


@register("email_dir")
def read_email_dir(cfg: "IngestConfig", seed: int) -> SourceData:
    """Reader for ``kind: email_dir``."""
    src = cfg.source
    root = Path(src.path)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (ingest.source.path must be a folder of .eml / mbox files)")
    counts: Counter = Counter()
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            counts["skipped.hidden_file"] += 1
            continue
        folder = rel.parent.as_posix() if rel.parent != Path(".") else None
        label = rel.parts[0] if (src.label_from_folder and len(rel.parts) > 1) else None
        if src.label_from_folder and label is None:
            counts["unlabeled.file_in_root_folder"] += 1
        for index, raw in enumerate(_messages(path)):
            parsed = message_text(raw)
            for issue in parsed.issues:
                counts[f"repaired.{issue}"] += 1
            rows.append({"id": None, "text": parsed.text, "label": label, "group": folder,
                         "source": rel.as_posix() if index == 0 else f"{rel.as_posix()}#{index}"})
    description = {"kind": "email_dir", "path": str(root), "label_from_folder": src.label_from_folder}
    return SourceData([raw_frame(rows)], counts, description)
