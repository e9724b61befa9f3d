"""The database behind the store: where it is, how to connect, and portable upserts.

SQLite by default (``.stokline/state.db``), any SQLAlchemy URL through ``STOKLINE_DATABASE_URL``.
Only SQL that PostgreSQL and SQLite both run: the two dialect-specific pieces (``ON CONFLICT``
upserts and row claims) are chosen here by the engine's dialect.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

DEFAULT_PATH = Path(".stokline") / "state.db"
URL_VARIABLE = "STOKLINE_DATABASE_URL"


def default_url() -> str:
    return os.environ.get(URL_VARIABLE) or f"sqlite:///{DEFAULT_PATH}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            path = url.split("///", 1)[-1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def insert_for(engine: Engine, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``.

    Whether a row went in is read from ``RETURNING``, not ``rowcount``: with psycopg on
    PostgreSQL, an ``ON CONFLICT DO NOTHING`` that skipped the row still reported a rowcount of 1.
    """
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"the state store supports SQLite and PostgreSQL, not {engine.dialect.name}")
