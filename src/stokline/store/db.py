"""The database behind the store: where it is, how to connect, and portable upserts.

SQLite by default (``.stokline/state.db``), else the SQLite or PostgreSQL URL in
``STOKLINE_DATABASE_URL``; a URL stokline cannot use is a `StoreConfigError` before anything is
touched on disk or over the network.
Only SQL that PostgreSQL and SQLite both run: the two dialect-specific pieces (``ON CONFLICT``
upserts and row claims) are chosen here by the engine's dialect.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from stokline.store.errors import StoreConfigError

DEFAULT_PATH = Path(".stokline") / "state.db"
URL_VARIABLE = "STOKLINE_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")
SUPPORTED = "use sqlite:/// or postgresql+psycopg://"
PG_CONNECT_TIMEOUT = 10  # seconds, unless the URL says connect_timeout=...
SHARED_POOL_SIZE = 8
SHARED_POOL_OVERFLOW = 16
"""A shared engine keeps up to 8 PostgreSQL connections open and opens 16 more under load; a
flow run that finds all 24 busy waits for one (each is held for one short statement or
transaction), so one worker process never holds more than 24."""


def default_url() -> str:
    return os.environ.get(URL_VARIABLE) or f"sqlite:///{DEFAULT_PATH}"


def setting_for(url: str | None) -> str:
    """How an error names where the state store's URL came from."""
    configured = os.environ.get(URL_VARIABLE)
    if url is None or url == configured:
        return URL_VARIABLE if configured else f"{URL_VARIABLE} (not set: {DEFAULT_PATH})"
    return "state store URL"


def parse_url(url: str, setting: str = URL_VARIABLE) -> URL:
    """The URL, if it names a database stokline supports; nothing is touched on disk."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # the text is not echoed: it may hold a password
        raise StoreConfigError(
            setting,
            "not a database URL: use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB",
        ) from None
    if parsed.get_backend_name() not in BACKENDS:
        raise StoreConfigError(
            setting, f"unknown database scheme '{parsed.drivername}': {SUPPORTED}"
        )
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database.startswith("file:") and parsed.query.get("uri") != "true":
            raise StoreConfigError(
                setting,
                f"the SQLite path '{database}' is a URI but the URL lacks ?uri=true: add it, or"
                " give the path alone (sqlite:///relative/path.db, sqlite:////absolute/path.db)",
            )
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL opens (None for a database in memory), as SQLite will read it."""
    database = url.database or ""
    if url.query.get("uri") == "true":
        if url.query.get("mode") == "memory":
            return None
        location = urlsplit(database).path
        return Path(unquote(location)) if location else None
    if database in ("", ":memory:"):
        return None
    return Path(database)


def make_engine(url: str, setting: str = URL_VARIABLE, *, shared: bool = False) -> Engine:
    """An engine for ``url``, not yet connected: nothing is created on disk or over the network.
    ``shared``: the one engine of a process running many flow runs (a larger, bounded pool).

    Raises `StoreConfigError` when the URL is not one stokline can use.
    """
    parsed = parse_url(url, setting)
    try:
        dialect = parsed.get_dialect()
    except ArgumentError:  # sqlite+nonsense://, postgresql+nonsense://
        raise StoreConfigError(
            setting, f"unknown database driver '{parsed.drivername}': {SUPPORTED}"
        ) from None
    if getattr(dialect, "is_async", False):
        raise StoreConfigError(
            setting, f"'{parsed.drivername}' is an asynchronous driver: {SUPPORTED}"
        )
    if parsed.get_backend_name() == "sqlite":
        memory = sqlite_file(parsed) is None
        engine = create_engine(
            parsed,
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
    connect_args = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT
    # A process's shared engine serves all its flow runs: a few more connections, still bounded.
    pool = {"pool_size": SHARED_POOL_SIZE, "max_overflow": SHARED_POOL_OVERFLOW} if shared else {}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **pool)


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
