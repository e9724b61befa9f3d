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


class Store:
    """One database of integration state, shared by every client and sync."""

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, read_only: bool = False
    ):
        """Open (and create, when new) the store at ``url``, else ``STOKLINE_DATABASE_URL``, else
        .stokline/state.db. Unless ``read_only``, a SQLite file is checked to be writable."""
        setting = setting_for(url)
        self.url = url or default_url()
        self.engine = engine or make_engine(self.url, setting)
        open_database(self.engine, setting, read_only=read_only)
        self.inbox = Inbox(self.engine)
        self.exceptions = Exceptions(self.engine)
        self.links = Links(self.engine)
        self.cursors = Cursors(self.engine)
        self.levels = PushedLevels(self.engine)
        self.batches = LedgerBatches(self.engine)
        self.audit = Audit(self.engine)
        self.leases = Leases(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
