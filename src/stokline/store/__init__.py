"""The integration's own state: links, webhook inbox, exceptions, cursors, pushed stock levels,
ledger batches and the audit log (SQLAlchemy; SQLite by default, PostgreSQL by URL).

    store = Store()                       # STOKLINE_DATABASE_URL or .stokline/state.db
    store.inbox.add(client, webhook_id, topic, body)
    store.links.get(client, "order", shopline_order_id)

A store that cannot be opened as configured raises a `StoreError` (`StoreConfigError` for a URL
stokline cannot use, `StoreUnavailable` for a database it cannot reach, read or write) whose text
is one line naming the setting and the problem, never the password.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from stokline.store.db import default_url, make_engine, setting_for
from stokline.store.errors import StoreConfigError, StoreError, StoreUnavailable
from stokline.store.exceptions import REASONS, ExceptionRecord, Exceptions
from stokline.store.inbox import Inbox, InboxEvent
from stokline.store.leases import Leases
from stokline.store.opening import open_database
from stokline.store.records import Audit, Cursors, LedgerBatches, Link, Links, PushedLevels

__all__ = [
    "REASONS",
    "ExceptionRecord",
    "InboxEvent",
    "Link",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
]


_shared: dict[tuple[str, bool], Engine] | None = None
_shared_lock = threading.Lock()


def share_engines(on: bool = True) -> None:
    """From now on, every `Store` of one URL in this process uses one engine, opened once.

    For a process that runs many flow runs at once (`stokline worker`): a store per run, each
    with its own connection pool, would hold a database connection per idle watcher, and a
    hundred clients' watchers would exceed PostgreSQL's default of 100 connections. A shared
    engine's pool is bounded (see `stokline.store.db.make_engine`), and ``close`` leaves it open.
    ``share_engines(False)`` closes the shared engines and goes back to one per store.
    """
    global _shared
    with _shared_lock:
        if on and _shared is None:
            _shared = {}
        elif not on and _shared is not None:
            for engine in _shared.values():
                engine.dispose()
            _shared = None


def _engine_for(url: str, setting: str, read_only: bool) -> tuple[Engine, bool]:
    """The engine for ``url`` (opened) and whether it is shared."""
    if _shared is None:
        engine = make_engine(url, setting)
        open_database(engine, setting, read_only=read_only)
        return engine, False
    with _shared_lock:
        engine = _shared.get((url, read_only))
        if engine is None:
            engine = make_engine(url, setting, shared=True)
            open_database(engine, setting, read_only=read_only)
            _shared[(url, read_only)] = engine
    return engine, True


class Store:
    """One database of integration state, shared by every client and sync."""

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, read_only: bool = False
    ):
        """Open (and create, when new) the store at ``url``, else ``STOKLINE_DATABASE_URL``, else
        .stokline/state.db. Unless ``read_only``, a SQLite file is checked to be writable."""
        setting = setting_for(url)
        self.url = url or default_url()
        self._shared = False
        if engine is not None:
            self.engine = engine
            open_database(self.engine, setting, read_only=read_only)
        else:
            self.engine, self._shared = _engine_for(self.url, setting, read_only)
        self.inbox = Inbox(self.engine)
        self.exceptions = Exceptions(self.engine)
        self.links = Links(self.engine)
        self.cursors = Cursors(self.engine)
        self.levels = PushedLevels(self.engine)
        self.batches = LedgerBatches(self.engine)
        self.audit = Audit(self.engine)
        self.leases = Leases(self.engine)

    def close(self) -> None:
        if not self._shared:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
