"""The registry: model versions with lineage, aliases, and an append-only history, in a database.

Every change runs in one write transaction that first locks what it changes: the alias row with
``SELECT ... FOR UPDATE`` on PostgreSQL, the whole database with ``BEGIN IMMEDIATE`` on SQLite. The
previous version recorded in history is read under that lock, so concurrent changes from several
processes (a canary flow and an operator, two retrain runs) never lose an update, and the history of
an alias is a chain in which each entry's ``previous`` is the entry before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, func, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.config.registry import redact_url
from pipeline.registry.artifacts import store_bundle, verify_bundle
from pipeline.registry.errors import (ArtifactMissing, BundleError, NothingToRollBack, RegistryError,
                                      RejectedVersion, SchemaMismatch, UnknownAlias, UnknownVersion)
from pipeline.registry.lineage import collect_lineage
from pipeline.registry.schema import (ALIASES, SCHEMA_VERSION, STATUS_REGISTERED, STATUS_REJECTED, AliasRow,
                                      Base, HistoryRow, Meta, VersionRow)

if TYPE_CHECKING:
    from pipeline.config.registry import RegistryConfig

URL_ENV = "DISTILL_REGISTRY_URL"
# Any constant works; it only has to be the same for every process creating the schema.
_SCHEMA_LOCK_KEY = 0x6469_7374  # "dist"


@dataclass(frozen=True)
class Version:
    """One registered model version and its lineage."""

    id: str
    number: int
    created_at: datetime
    status: str
    reasons: list[str]
    gate_passed: bool
    gate: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    git_commit: str | None
    git_dirty: bool | None
    dvc_stages: dict[str, Any] | None
    dvc_lock_md5: str | None
    bundle_digest: str
    artifact_location: str  # the bundle's folder inside registry.artifacts_dir (never an absolute path)
    actor: str
    reason: str

    @property
    def rejected(self) -> bool:
        return self.status == STATUS_REJECTED

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class AliasState:
    """What an alias points at now (``version`` is None when it was never set or was cleared)."""

    alias: str
    version: Version | None
    weight: float | None
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version.id if self.version else None,
                "weight": self.weight, "updated_at": _iso(self.updated_at)}


@dataclass(frozen=True)
class HistoryEntry:
    """One append-only history record: a registration or an alias change."""

    id: int
    at: datetime
    actor: str
    action: str
    alias: str | None
    version: str | None
    previous: str | None
    weight: float | None
    reason: str
    numbers: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def resolve_url(config: RegistryConfig | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The registry URL: ``$DISTILL_REGISTRY_URL`` when set, else ``registry.url`` from params."""
    env = os.environ if environ is None else environ
    if env.get(URL_ENV):
        return env[URL_ENV]
    if config is not None:
        return config.url
    from pipeline.config.registry import RegistryConfig

    return RegistryConfig().url


def open_registry(config: RegistryConfig | None = None, environ: Mapping[str, str] | None = None,
                  root: str | Path | None = None) -> Registry:
    """Open the registry a params section (and the environment) points at.

    ``root`` is the project directory: a relative SQLite path or artifacts dir is taken relative to it
    (params.yaml's defaults are relative to the project, not to whatever the working directory is).
    """
    from pipeline.config.registry import RegistryConfig

    config = config or RegistryConfig()
    url, artifacts = resolve_url(config, environ), Path(config.artifacts_dir)
    if root is not None:
        url = rebase_sqlite_url(url, root)
        artifacts = artifacts if artifacts.is_absolute() else Path(root) / artifacts
    return Registry(url, artifacts)


def rebase_sqlite_url(url: str, root: str | Path) -> str:
    """``sqlite:///rel/path.db`` -> ``sqlite:////root/rel/path.db``; other URLs unchanged."""
    parsed = make_url(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:") or Path(db).is_absolute():
        return url
    return parsed.set(database=str((Path(root) / db).resolve())).render_as_string(hide_password=False)


class Registry:
    """Model versions, aliases and history in one database; bundles in a content-addressed store."""

    def __init__(self, url: str, artifacts_dir: str | Path = ".distill/artifacts") -> None:
        self.url = _normalize_url(url)
        self.safe_url = redact_url(self.url)  # what messages show: never the password
        self.artifacts_dir = Path(artifacts_dir)
        try:
            self._engine = _make_engine(self.url)
            self._ensure_schema()
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry database {self.safe_url} cannot be opened: "
                                f"{_db_reason(exc, self.url)}; check registry.url / ${URL_ENV}") from None

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections (the registry can no longer be used)."""
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    # -- writes --------------------------------------------------------------------------------------

    def register(self, bundle_dir: str | Path, gate_report: Mapping[str, Any] | str | Path,
                 metrics: Mapping[str, Any] | None, params: Any, actor: str, reason: str,
                 *, repo_dir: str | Path = ".", set_candidate: bool = True) -> Version:
        """Store a bundle and record it as a new version with its lineage.

        A failed gate still registers the version, as ``rejected`` with the failing checks as reasons,
        so the history shows what was tried and why it did not ship; a rejected version can never take
        an alias. A passing version becomes ``candidate`` in the same transaction when
        ``set_candidate`` is true.
        """
        gate = _load_gate(gate_report)
        passed = gate["passed"]
        reasons = [] if passed else _failed_checks(gate)
        digest = verify_bundle(bundle_dir)  # a bundle the server could not load is refused, not registered
        location = store_bundle(bundle_dir, self.artifacts_dir, digest)
        verify_bundle(location, digest)
        lineage = collect_lineage(repo_dir)
        params_snapshot = _params_dict(params)
        now = _now()
        with self._write() as s:
            row = VersionRow(created_at=now, status=STATUS_REGISTERED if passed else STATUS_REJECTED,
                             reasons=reasons, gate_passed=passed, gate=_jsonable(gate),
                             metrics=_jsonable(dict(metrics or {})), params=params_snapshot,
                             git_commit=lineage.git_commit, git_dirty=lineage.git_dirty,
                             dvc_stages=lineage.dvc_stages, dvc_lock_md5=lineage.dvc_lock_md5,
                             bundle_digest=digest, artifact_location=location.relative_to(self.artifacts_dir).as_posix(),
                             actor=actor, reason=reason)
            s.add(row)
            s.flush()
            numbers = {"gate_passed": passed, "failed_checks": len(reasons)}
            s.add(HistoryRow(at=now, actor=actor, action="register" if passed else "reject", alias=None,
                             version_number=row.number, previous_number=None, weight=None,
                             reason=reason if passed else f"{reason} (gate failed: {'; '.join(reasons)})",
                             numbers=numbers))
            if passed and set_candidate:
                self._change_alias(s, "candidate", row, actor, reason, numbers, None, "set_alias")
            self._bump(s)
            s.flush()
            return _version(row)

    def reinstate(self, version: str | int, actor: str, reason: str) -> Version:
        """Make a version the gate rejected a candidate after all: an operator's override, never automatic.

        The version's status becomes ``registered`` and it takes the candidate alias; the history keeps
        the override with its reason and the checks the gate had failed.
        """
        if not reason or not reason.strip():
            raise RegistryError("reinstating a rejected version needs a reason (it is kept in the history)")
        with self._write() as s:
            row = self._version_row(s, version)
            if row is None or row.status != STATUS_REJECTED:
                raise RegistryError(f"{version} is not a rejected version; nothing to reinstate")
            failed = list(row.reasons or [])
            row.status = STATUS_REGISTERED
            s.add(HistoryRow(at=_now(), actor=actor, action="reinstate", alias=None, version_number=row.number,
                             previous_number=None, weight=None, numbers={"failed_checks": failed},
                             reason=f"{reason} (override of the gate, which had failed: {'; '.join(failed)})"))
            self._change_alias(s, "candidate", row, actor, reason, {"reinstated": True}, None, "set_alias")
            self._bump(s)
            s.flush()
            return _version(row)

    def set_alias(self, alias: str, version: str | int, actor: str, reason: str,
                  numbers: Mapping[str, Any] | None = None, weight: float | None = None) -> AliasState:
        """Point ``alias`` at ``version`` and record the change with its numbers in history.

        ``weight`` (0..1) is the canary's traffic share; other aliases take none. Without a weight the
        canary keeps its current share when the version stays the same, else starts at 0.
        """
        return self._set(alias, version, actor, reason, numbers, weight, "set_alias")

    def promote(self, version: str | int, to_alias: str, actor: str, reason: str,
                numbers: Mapping[str, Any] | None = None, weight: float | None = None) -> AliasState:
        """Move ``version`` up to ``to_alias`` (recorded as a promotion rather than a plain set)."""
        return self._set(to_alias, version, actor, reason, numbers, weight, "promote")

    def clear_alias(self, alias: str, actor: str, reason: str,
                    numbers: Mapping[str, Any] | None = None) -> AliasState:
        """Point ``alias`` at nothing (e.g. end a canary); recorded in history, undone by rollback."""
        _check_alias(alias)
        with self._write() as s:
            row = self._lock_alias(s, alias)
            self._change_alias(s, alias, None, actor, reason, dict(numbers or {}), None, "clear")
            self._bump(s)
            s.flush()
            return self._alias_state(s, row)

    def rollback(self, alias: str, actor: str, reason: str,
                 numbers: Mapping[str, Any] | None = None) -> AliasState:
        """Put ``alias`` back on the version it held before the current one.

        History is replayed as a stack: a change to a new version pushes it, a rollback pops, so two
        rollbacks in a row walk two steps back instead of flipping between the last two versions.
        """
        _check_alias(alias)
        with self._write() as s:
            row = self._lock_alias(s, alias)
            stack = self._alias_stack(s, alias)
            if len(stack) < 2:
                held = f"v{row.version_number}" if row.version_number is not None else "nothing"
                raise NothingToRollBack(
                    f"alias {alias!r} holds {held} and its history has no earlier version to roll back to; "
                    f"use 'distill registry promote VERSION --to {alias}' to choose one explicitly")
            target_number, target_weight = stack[-2]
            target = s.get(VersionRow, target_number) if target_number is not None else None
            self._change_alias(s, alias, target, actor, reason, dict(numbers or {}), target_weight, "rollback")
            self._bump(s)
            s.flush()
            return self._alias_state(s, row)

    # -- reads ---------------------------------------------------------------------------------------

    def get_version(self, version: str | int) -> Version:
        with self._read() as s:
            return _version(self._version_row(s, version))

    def get_alias(self, alias: str) -> AliasState:
        _check_alias(alias)
        with self._read() as s:
            return self._alias_state(s, s.get(AliasRow, alias))

    def aliases(self) -> dict[str, AliasState]:
        with self._read() as s:
            return {name: self._alias_state(s, s.get(AliasRow, name)) for name in ALIASES}

    def list_versions(self) -> list[Version]:
        with self._read() as s:
            return [_version(r) for r in s.scalars(select(VersionRow).order_by(VersionRow.number))]

    def history(self, alias: str | None = None, limit: int | None = None) -> list[HistoryEntry]:
        """History oldest first; ``limit`` keeps the most recent entries."""
        if alias is not None:
            _check_alias(alias)
        with self._read() as s:
            query = select(HistoryRow).order_by(HistoryRow.id.desc())
            if alias is not None:
                query = query.where(HistoryRow.alias == alias)
            if limit is not None:
                query = query.limit(limit)
            return [_entry(r) for r in reversed(list(s.scalars(query)))]

    def artifact_path(self, version: str | int) -> Path:
        """The local copy of a version's bundle; fails with a hint when this host does not have it."""
        return self._artifact_of(self.get_version(version))

    def _verify_row(self, row: "VersionRow") -> None:
        path = self._artifact_of(_version(row))
        try:
            verify_bundle(path, row.bundle_digest)
        except BundleError as exc:
            raise BundleError(f"v{row.number} cannot take an alias: {exc}") from None

    def _artifact_of(self, v: "Version") -> Path:
        path = self.artifacts_dir / v.bundle_digest
        if not (path / "bundle.json").is_file():
            hint = (f"git checkout {v.git_commit} && dvc pull export" if v.git_commit
                    else "copy the bundle from the host that registered it")
            raise ArtifactMissing(
                f"{v.id}: bundle {v.bundle_digest[:12]} is not in the artifact store {self.artifacts_dir}; "
                f"fetch it ({hint}) and register or copy it to {path}")
        return path

    def state_token(self) -> int:
        """A number that changes with every registration and alias change: cheap for a server to poll.

        It is a counter bumped inside each write transaction (not the latest history id, which on
        PostgreSQL can commit out of order), so a poller never misses a change.
        """
        with self._read() as s:
            return int(s.scalar(select(Meta.value).where(Meta.key == "generation")) or 0)

    # -- internals -----------------------------------------------------------------------------------

    def _set(self, alias: str, version: str | int, actor: str, reason: str,
             numbers: Mapping[str, Any] | None, weight: float | None, action: str) -> AliasState:
        _check_alias(alias)
        if not reason or not reason.strip():
            raise RegistryError(f"changing alias {alias!r} needs a reason (it is kept in the history)")
        with self._write() as s:
            row = self._lock_alias(s, alias)
            target = self._version_row(s, version)
            self._change_alias(s, alias, target, actor, reason, dict(numbers or {}), weight, action)
            self._bump(s)
            s.flush()
            return self._alias_state(s, row)

    def _change_alias(self, s: Session, alias: str, target: VersionRow | None, actor: str, reason: str,
                      numbers: Mapping[str, Any], weight: float | None, action: str) -> None:
        row = self._lock_alias(s, alias)
        if target is not None and target.status == STATUS_REJECTED:
            raise RejectedVersion(
                f"v{target.number} was rejected by the gate ({'; '.join(target.reasons) or 'failed'}) and can "
                f"never take an alias such as {alias!r}; fix the model, rerun the pipeline and register a new version")
        if alias != "canary" and weight is not None:
            raise RegistryError(f"only the canary alias carries a traffic weight; drop the weight for {alias!r}")
        if alias == "canary" and target is not None:
            if weight is None:
                weight = row.weight if row.version_number == target.number and row.weight is not None else 0.0
            if not 0.0 <= weight <= 1.0:
                raise RegistryError(f"canary weight must be between 0 and 1 (the traffic share), got {weight}")
        elif target is None:
            weight = None
        if target is not None:  # an alias never points at a bundle the server could not load
            self._verify_row(target)
        now = _now()
        s.add(HistoryRow(at=now, actor=actor, action=action, alias=alias,
                         version_number=target.number if target is not None else None,
                         previous_number=row.version_number, weight=weight, reason=reason,
                         numbers=_jsonable(dict(numbers))))
        row.version_number = target.number if target is not None else None
        row.weight = weight
        row.updated_at = now

    def _alias_stack(self, s: Session, alias: str) -> list[tuple[int | None, float | None]]:
        stack: list[tuple[int | None, float | None]] = []
        rows = s.scalars(select(HistoryRow).where(HistoryRow.alias == alias).order_by(HistoryRow.id))
        for h in rows:
            if h.action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1][0] != h.version_number:
                    stack.append((h.version_number, h.weight))
            elif stack and stack[-1][0] == h.version_number:
                stack[-1] = (h.version_number, h.weight)
            else:
                stack.append((h.version_number, h.weight))
        return stack

    def _lock_alias(self, s: Session, alias: str) -> AliasRow:
        row = s.scalars(select(AliasRow).where(AliasRow.name == alias).with_for_update()).one_or_none()
        if row is None:
            raise SchemaMismatch(f"alias row {alias!r} is missing from {self.safe_url}; the registry schema is damaged")
        return row

    def _version_row(self, s: Session, version: str | int) -> VersionRow:
        number = parse_version_id(version)
        row = s.get(VersionRow, number)
        if row is None:
            last = s.scalar(select(func.max(VersionRow.number)))
            known = f"versions are v1..v{last}" if last else "no version is registered yet"
            raise UnknownVersion(f"unknown version {version!r}: {known}; see 'distill registry list'")
        return row

    def _alias_state(self, s: Session, row: AliasRow | None) -> AliasState:
        assert row is not None
        version = s.get(VersionRow, row.version_number) if row.version_number is not None else None
        return AliasState(alias=row.name, version=_version(version) if version is not None else None,
                          weight=row.weight, updated_at=_utc(row.updated_at))

    def _bump(self, s: Session) -> None:
        s.execute(update(Meta).where(Meta.key == "generation").values(value=Meta.value + 1))

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._session(write=True) as s:
            yield s

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._session(write=False) as s:
            yield s

    @contextmanager
    def _session(self, write: bool) -> Iterator[Session]:
        with self._engine.connect() as conn:
            conn.execution_options(registry_write=write)
            with conn.begin(), Session(bind=conn, expire_on_commit=False, autoflush=True) as s:
                yield s
                s.flush()

    def _ensure_schema(self) -> None:
        """Create the tables, alias rows and meta rows once; refuse a schema of another version."""
        with self._engine.connect() as conn:
            conn.execution_options(registry_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                Base.metadata.create_all(conn)
                with Session(bind=conn) as s:
                    found = s.get(Meta, "schema_version")
                    if found is None:
                        s.add(Meta(key="schema_version", value=SCHEMA_VERSION))
                        s.add(Meta(key="generation", value=0))
                    elif found.value != SCHEMA_VERSION:
                        raise SchemaMismatch(
                            f"{self.safe_url} holds registry schema {found.value}, this code expects {SCHEMA_VERSION}; "
                            "use a matching distill version or a fresh registry.url")
                    for name in ALIASES:
                        if s.get(AliasRow, name) is None:
                            s.add(AliasRow(name=name))
                    s.flush()


def parse_version_id(version: str | int) -> int:
    """``"v3"``, ``"3"`` or ``3`` -> 3."""
    raw = str(version).strip()
    digits = raw[1:] if raw[:1] in ("v", "V") else raw
    if not digits.isdigit() or int(digits) < 1:
        raise UnknownVersion(f"{version!r} is not a version id; ids look like v1, v2, ... (see 'distill registry list')")
    return int(digits)


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise UnknownAlias(f"unknown alias {alias!r}; aliases are {', '.join(ALIASES)}")


def _db_reason(exc: Exception, url: str) -> str:
    """The driver's first line of complaint, with the password taken out should the driver echo it."""
    orig = getattr(exc, "orig", None) or exc
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    password = make_url(url).password
    return reason.replace(str(password), "***") if password else reason


def _normalize_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RegistryError(f"registry URL {url.split('@')[-1]!r} is not a database URL; expected e.g. "
                            "sqlite:///.distill/registry.db or postgresql://user@host/db") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling is off so BEGIN below is the only one issued.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock at BEGIN: two writers queue instead of both reading the old
        # alias and one failing (or losing its update) when it tries to write.
        write = conn.get_execution_options().get("registry_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _load_gate(report: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(report, (str, Path)):
        path = Path(report)
        if not path.is_file():
            raise BundleError(f"{path}: gate report not found; run the evaluate stage first")
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BundleError(f"{path}: gate report is not valid JSON: {exc}") from None
    else:
        data = dict(report)
    if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
        raise BundleError("gate report has no boolean 'passed' verdict; is it the evaluate stage's gate JSON?")
    return data


def _failed_checks(gate: Mapping[str, Any]) -> list[str]:
    reasons = []
    for check in gate.get("checks") or []:
        if isinstance(check, dict) and check.get("passed") is False:
            name = "/".join(str(check[k]) for k in ("suite", "metric") if check.get(k) is not None) or "check"
            reasons.append(f"{name}: {check.get('value')} vs threshold {check.get('threshold')}")
    return reasons or ["gate verdict is failed (no failing check listed)"]


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if hasattr(params, "model_dump"):
        return params.model_dump(mode="json", by_alias=True)
    return _jsonable(dict(params))


def _jsonable(obj: Any) -> Any:
    from pipeline.io import _jsonable as default

    def fallback(value: Any) -> Any:
        if isinstance(value, datetime):
            return _iso(value)
        return default(value)

    return json.loads(json.dumps(obj, default=fallback))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None  # type: ignore[union-attr]


def _version(r: VersionRow) -> Version:
    return Version(id=f"v{r.number}", number=r.number, created_at=_utc(r.created_at) or _now(), status=r.status,
                   reasons=list(r.reasons), gate_passed=r.gate_passed, gate=dict(r.gate), metrics=dict(r.metrics),
                   params=dict(r.params), git_commit=r.git_commit, git_dirty=r.git_dirty,
                   dvc_stages=r.dvc_stages, dvc_lock_md5=r.dvc_lock_md5, bundle_digest=r.bundle_digest,
                   artifact_location=r.artifact_location, actor=r.actor, reason=r.reason)


def _entry(h: HistoryRow) -> HistoryEntry:
    return HistoryEntry(id=h.id, at=_utc(h.at) or _now(), actor=h.actor, action=h.action, alias=h.alias,
                        version=f"v{h.version_number}" if h.version_number is not None else None,
                        previous=f"v{h.previous_number}" if h.previous_number is not None else None,
                        weight=h.weight, reason=h.reason, numbers=dict(h.numbers))
