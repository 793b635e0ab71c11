"""The prediction log: one row per prediction the model server made.

The server appends rows (through a bounded background writer, so logging never blocks a request); the
monitor reads a time window of them. A real database through SQLAlchemy: a SQLite file by default,
PostgreSQL by URL (``serve.prediction_log_url``, env ``DISTILL_PREDICTION_LOG_URL``).

Privacy: ``text`` holds the request text only when the server runs with ``serve.log_text: true``;
``text_hash`` (sha256) is always there. The monitor's teacher comparison needs the text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.errors import DistillError

DEFAULT_URL = "sqlite:///.distill/predictions.db"
ENV_URL = "DISTILL_PREDICTION_LOG_URL"

# Column name -> meaning (kept next to the table so the two cannot drift apart).
COLUMNS = {
    "id": "row number (autoincrement)",
    "request_id": "id of the HTTP request (one request may carry a batch of texts)",
    "ts": "UTC time of the prediction, seconds since the epoch",
    "text_hash": "sha256 of the text (hex)",
    "text": "the text itself, or null when text logging is off",
    "model_version": "registry version that answered",
    "route": "stable or canary",
    "label": "predicted label",
    "confidence": "probability of the predicted label",
    "probs": "JSON list of probabilities, in the model's label order",
    "stable_label": "for canary-routed texts: what the stable model answered (null otherwise)",
    "latency_ms": "server-side latency of the request that carried this text",
    "source": "who answered: student, or teacher (deferred by the cascade, serve.cascade)",
    "student_label": "the student's own answer (differs from label where the teacher answered)",
    "run_id": "id of the server run that acknowledged the prediction",
    "seq": "1, 2, 3, ... per server run, in the order predictions were acknowledged (a gap is a lost row)",
}
# What a writer fills for each prediction (every column but the row number), in COLUMNS order.
WRITTEN_COLUMNS = tuple(name for name in COLUMNS if name != "id")
# Columns added after the first release: connect() adds them to an older table (nullable).
ADDED_COLUMNS = ("source", "student_label", "run_id", "seq")

# ``predlog_gaps``: one row per server run found, at the next start, to have lost acknowledged rows.
GAP_COLUMNS = {
    "run_id": "the server run that lost rows",
    "detected_at": "UTC time the next start found the gap, seconds since the epoch",
    "acknowledged": "rows that run acknowledged (answered 200 for)",
    "written": "rows of that run in the log",
    "lost": "acknowledged - written",
}


def resolve_url(url: str | None = None) -> str:
    return os.environ.get(ENV_URL) or url or DEFAULT_URL


def table(metadata=None):
    """The ``predictions`` table (SQLAlchemy Core)."""
    import sqlalchemy as sa

    metadata = metadata if metadata is not None else sa.MetaData()
    return sa.Table(
        "predictions", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False, index=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False, index=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("probs", sa.Text, nullable=False),
        sa.Column("stable_label", sa.String(200), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("student_label", sa.String(200), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True, index=True),
        sa.Column("seq", sa.Integer, nullable=True),
    )


def gaps_table(metadata):
    """The ``predlog_gaps`` table (:data:`GAP_COLUMNS`)."""
    import sqlalchemy as sa

    return sa.Table(
        "predlog_gaps", metadata,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("detected_at", sa.Float, nullable=False),
        sa.Column("acknowledged", sa.Integer, nullable=False),
        sa.Column("written", sa.Integer, nullable=False),
        sa.Column("lost", sa.Integer, nullable=False),
    )


def connect(url: str | None = None):
    """An engine on the prediction log with the table created; SQLite in WAL mode (readers never block the writer)."""
    import sqlalchemy as sa

    url = resolve_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url.removeprefix("sqlite:///")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise PredictionLogError(f"prediction log {_safe(url)}: not a usable database URL: {exc}") from None
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    metadata = sa.MetaData()
    tbl = table(metadata)
    gaps_table(metadata)
    try:
        metadata.create_all(engine)
        _add_missing_columns(engine, tbl)
    except sa.exc.SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]
        raise PredictionLogError(f"prediction log {_safe(url)} cannot be opened: {reason}; check "
                                 f"serve.prediction_log_url / ${ENV_URL} (a SQLite path must be a database file)") from None
    return engine, tbl


class PredictionLogError(DistillError):
    """The prediction log database cannot be opened or is not a prediction log."""


def _safe(url: str) -> str:
    from pipeline.config.registry import redact_url

    return redact_url(url)


def record_gap(engine, run_id: str, acknowledged: int) -> dict[str, Any] | None:
    """Compare what run ``run_id`` acknowledged with its rows in the log; store and return a gap, if any."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    tbl, gaps = table(metadata), gaps_table(metadata)
    with engine.begin() as conn:
        written = int(conn.execute(sa.select(sa.func.count()).select_from(tbl).where(tbl.c.run_id == run_id)).scalar())
        gap = {"run_id": run_id, "detected_at": time.time(), "acknowledged": int(acknowledged), "written": written,
               "lost": max(0, int(acknowledged) - written)}
        if gap["lost"] and conn.execute(sa.select(gaps.c.run_id).where(gaps.c.run_id == run_id)).first() is None:
            conn.execute(gaps.insert(), [gap])
    return gap


def read_gaps(engine, since: float | None = None) -> list[dict[str, Any]]:
    """Gaps found since ``since`` (every gap when None), oldest first."""
    import sqlalchemy as sa

    gaps = gaps_table(sa.MetaData())
    query = sa.select(gaps).order_by(gaps.c.detected_at)
    if since is not None:
        query = query.where(gaps.c.detected_at >= since)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("predlog_gaps"):
            return []
        return [dict(row._mapping) for row in conn.execute(query)]


def _add_missing_columns(engine, tbl) -> None:
    """Bring a log written by an older server up to today's columns (ALTER TABLE ... ADD COLUMN)."""
    import sqlalchemy as sa

    have = {c["name"] for c in sa.inspect(engine).get_columns(tbl.name)}
    missing = [name for name in ADDED_COLUMNS if name not in have]
    if missing:
        with engine.begin() as conn:
            for name in missing:
                column = tbl.c[name]
                conn.execute(sa.text(f"ALTER TABLE {tbl.name} ADD COLUMN {name} "
                                     f"{column.type.compile(dialect=engine.dialect)}"))


def insert_rows(engine, tbl, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append rows (dicts with the COLUMNS keys, ``id`` excluded) in one transaction."""
    rows = list(rows)
    if rows:
        with engine.begin() as conn:
            conn.execute(tbl.insert(), rows)
    return len(rows)


def insert_values(engine, tbl, columns: Sequence[str], values: list[tuple]) -> int:
    """Append rows given as tuples in ``columns`` order, in one transaction (the log writer's path).

    The values must be plain ``str``, ``float``, ``int`` or ``None``. On SQLite the statement goes
    straight to the driver's ``executemany``, without SQLAlchemy's handling of each row's parameters
    (a quarter of the writer's CPU per row; benchmarks/predlog_write.py). Other databases take
    :func:`insert_rows`, which SQLAlchemy batches into multi-row INSERTs for them.
    """
    if not values:
        return 0
    if engine.dialect.name != "sqlite":
        return insert_rows(engine, tbl, [dict(zip(columns, v)) for v in values])
    statement = (f"INSERT INTO {tbl.name} ({', '.join(tbl.c[name].name for name in columns)}) "
                 f"VALUES ({', '.join('?' * len(columns))})")  # tbl.c[...]: an unknown column raises here
    with engine.begin() as conn:
        conn.exec_driver_sql(statement, values)
    return len(values)


def read_window(engine, tbl, since: float | None = None, until: float | None = None, limit: int | None = None):
    """Rows with ``since <= ts < until`` as a pandas DataFrame, oldest first."""
    import pandas as pd
    import sqlalchemy as sa

    query = sa.select(tbl).order_by(tbl.c.ts, tbl.c.id)
    if since is not None:
        query = query.where(tbl.c.ts >= since)
    if until is not None:
        query = query.where(tbl.c.ts < until)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return pd.read_sql(query, conn)
