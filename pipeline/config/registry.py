"""params.yaml `registry` section: where model versions, aliases and their history are kept.

The environment variable ``DISTILL_REGISTRY_URL`` overrides ``url`` (see
:func:`pipeline.registry.open_registry`), so a serving host or CI can point at a shared PostgreSQL
database without editing params.yaml.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline.config.base import Section


class RegistryConfig(Section):
    # SQLAlchemy URL: a SQLite file by default, or postgresql://user@host/db (driver psycopg 3).
    url: str = Field(default="sqlite:///.distill/registry.db", min_length=1)
    # Content-addressed copies of registered bundles: <artifacts_dir>/<sha256 digest>/.
    artifacts_dir: str = Field(default=".distill/artifacts", min_length=1)

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        return database_url(url)


def database_url(url: str) -> str:
    """``url`` when SQLAlchemy can parse it as a database URL, else ValueError (password never shown)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        shown = url.split("@")[-1]
        raise ValueError(f"got {shown!r}, which is not a database URL; expected e.g. sqlite:///.distill/registry.db or "
                         "postgresql://user@host/db") from None
    return url


def redact_url(url: str) -> str:
    """The URL with its password shown as ``***`` (what every message prints)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"

