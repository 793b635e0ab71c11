"""The prediction log: one row per prediction the model server made.

The server appends rows (through a bounded background writer, so logging never blocks a request); the
monitor reads a time window of them. A real database through SQLAlchemy: a SQLite file by default,
PostgreSQL by URL (``serve.prediction_log_url``, env ``DISTILL_PREDICTION_LOG_URL``).

Privacy: ``text`` holds the request text only when the server runs with ``serve.log_text: true``;
``text_hash`` (sha256) is always there. The monitor's teacher comparison needs the text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

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
}
# Columns added after the first release: connect() adds them to an older table (nullable).
ADDED_COLUMNS = ("source", "student_label")


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
    )


def connect(url: str | None = None):
    """An engine on the prediction log with the table created; SQLite in WAL mode (readers never block the writer)."""
    import sqlalchemy as sa

    url = resolve_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url.removeprefix("sqlite:///")
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    metadata = sa.MetaData()
    tbl = table(metadata)
    metadata.create_all(engine)
    _add_missing_columns(engine, tbl)
    return engine, tbl


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
