"""Content digests of model files, so a teacher's fingerprint changes exactly when its weights do."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Files in a model directory that change the model's answers (weights, tokenizer, config).
_MODEL_SUFFIXES = {".safetensors", ".bin", ".onnx", ".data", ".json", ".txt", ".model", ".npz"}


def file_digest(path: str | Path) -> str:
    """sha256 of one file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_digest(path: str | Path) -> str:
    """sha256 over the names and digests of a model directory's relevant files (sorted, so stable)."""
    root = Path(path)
    h = hashlib.sha256()
    for item in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _MODEL_SUFFIXES):
        h.update(str(item.relative_to(root)).encode())
        h.update(file_digest(item).encode())
    return h.hexdigest()


def source_digest(path: str | Path) -> str:
    """A digest of a local file or directory; hub ids (not on disk) digest to their name."""
    p = Path(path)
    if p.is_dir():
        return dir_digest(p)
    if p.is_file():
        return file_digest(p)
    return hashlib.sha256(str(path).encode()).hexdigest()


WEIGHT_SUFFIXES = {".safetensors", ".bin", ".onnx", ".data", ".pt", ".gguf", ".npz"}


def weight_files_in(path: str | Path) -> list[Path]:
    """The model weight files of a local model: the file itself, or the weight files under a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return []  # a hub id or a remote model: nothing on this disk to weigh
