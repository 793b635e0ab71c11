"""Registry tables (SQLAlchemy 2.x ORM) and the triggers that keep history append-only.

Tables are prefixed ``registry_`` so the registry can share a database with other parts of the
project (the serve prediction log, Prefect's own database on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, DDL, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, event)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1
ALIASES: tuple[str, ...] = ("candidate", "canary", "production")
STATUS_REGISTERED = "registered"
STATUS_REJECTED = "rejected"


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value rows: ``schema_version``, and ``generation`` (bumped by every change, see state_token)."""

    __tablename__ = "registry_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False)


class VersionRow(Base):
    __tablename__ = "registry_versions"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    gate_passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    dvc_stages: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dvc_lock_md5: Mapped[str | None] = mapped_column(String(32))
    bundle_digest: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    artifact_location: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)


class AliasRow(Base):
    """One row per alias, created with the schema, so a change can lock it (SELECT ... FOR UPDATE)."""

    __tablename__ = "registry_aliases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_number: Mapped[int | None] = mapped_column(ForeignKey("registry_versions.number"))
    weight: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HistoryRow(Base):
    """Append-only log of every registration and alias change (database triggers refuse the rest)."""

    __tablename__ = "registry_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    alias: Mapped[str | None] = mapped_column(String(32), index=True)
    version_number: Mapped[int | None] = mapped_column(ForeignKey("registry_versions.number"))
    previous_number: Mapped[int | None] = mapped_column(ForeignKey("registry_versions.number"))
    weight: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


_HISTORY = HistoryRow.__table__.name

for _op in ("UPDATE", "DELETE"):
    event.listen(HistoryRow.__table__, "after_create", DDL(
        f"CREATE TRIGGER {_HISTORY}_no_{_op.lower()} BEFORE {_op} ON {_HISTORY} "
        f"BEGIN SELECT RAISE(ABORT, 'registry history is append-only: {_op} refused'); END"
    ).execute_if(dialect="sqlite"))

event.listen(HistoryRow.__table__, "after_create", DDL(
    f"CREATE OR REPLACE FUNCTION {_HISTORY}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    # DDL() applies %-formatting, so the PL/pgSQL placeholder is written %%.
    "BEGIN RAISE EXCEPTION 'registry history is append-only: %% refused', TG_OP; END $$"
).execute_if(dialect="postgresql"))
event.listen(HistoryRow.__table__, "after_create", DDL(
    f"CREATE TRIGGER {_HISTORY}_append_only BEFORE UPDATE OR DELETE ON {_HISTORY} "
    f"FOR EACH ROW EXECUTE FUNCTION {_HISTORY}_append_only()"
).execute_if(dialect="postgresql"))
event.listen(HistoryRow.__table__, "after_create", DDL(
    f"CREATE TRIGGER {_HISTORY}_no_truncate BEFORE TRUNCATE ON {_HISTORY} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {_HISTORY}_append_only()"
).execute_if(dialect="postgresql"))
