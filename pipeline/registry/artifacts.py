"""Content-addressed artifact store: a registered bundle is copied to ``<root>/<sha256>/``.

The digest covers every file's relative path and bytes, so the same bundle registered twice is stored
once, and a serving host can check that what it fetched is exactly what was registered.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.registry.errors import BundleError


def bundle_digest(bundle_dir: str | Path) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs of a bundle directory."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"{root}: bundle directory not found; run the export stage (dvc repro export) first")
    if not (root / "bundle.json").is_file():
        raise BundleError(f"{root}: no bundle.json; is this the export stage's bundle folder?")
    outer = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                inner.update(block)
        outer.update(path.relative_to(root).as_posix().encode() + b"\0" + inner.hexdigest().encode() + b"\n")
    return outer.hexdigest()


def verify_bundle(bundle_dir: str | Path, expected_digest: str | None = None) -> str:
    """Check a bundle folder is one a server can load; return its digest. BundleError says what is wrong.

    The folder digest must be ``expected_digest`` (when given: the registered content address), the
    model files must match the digest their ``bundle.json`` records, and the int8 model must answer a
    smoke prediction with a probability row. This is what the server checks before it serves a version,
    so a version that passes here is one the server can load.
    """
    from pipeline.bundle import BundleError as LoadError
    from pipeline.bundle import load_bundle, smoke_check

    digest = bundle_digest(bundle_dir)
    if expected_digest is not None and digest != expected_digest:
        raise BundleError(f"{bundle_dir}: files changed since registration: digest {digest[:12]}, registered "
                          f"{expected_digest[:12]} (corrupt or edited copy); register the bundle again")
    try:
        smoke_check(load_bundle(bundle_dir, threads=1, verify=True))
    except LoadError as exc:
        raise BundleError(f"refused: {exc}") from None
    except (OSError, ValueError, KeyError) as exc:  # an unreadable manifest or file
        raise BundleError(f"refused: {bundle_dir}: the bundle cannot be loaded: {type(exc).__name__}: {exc}") from None
    return digest


TMP_PREFIX = ".tmp-"  # a copy in progress: .tmp-<pid>-<digest prefix>-<random>


def _sweep_copies_of_dead_writers(root: Path) -> None:
    """Remove half-made copies whose writer was killed (its process is gone); never a live writer's."""
    from pipeline.io import process_alive

    for entry in root.glob(f"{TMP_PREFIX}*"):
        pid = entry.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def store_bundle(bundle_dir: str | Path, artifacts_dir: str | Path, digest: str) -> Path:
    """Copy the bundle to ``artifacts_dir/digest`` unless it is there already; return that path.

    The copy goes to a temporary sibling first and is renamed into place, so a reader never sees a
    half-written bundle, and two processes storing the same digest at once both succeed.
    """
    root = Path(artifacts_dir)
    dest = root / digest
    if dest.is_dir():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    _sweep_copies_of_dead_writers(root)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{TMP_PREFIX}{os.getpid()}-{digest[:12]}-"))
    try:
        shutil.copytree(bundle_dir, tmp, dirs_exist_ok=True)
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
