"""The integration's own state: links, webhook inbox, exceptions, cursors, pushed stock levels,
ledger batches and the audit log (SQLAlchemy; SQLite by default, PostgreSQL by URL).

    store = Store()                       # STOKLINE_DATABASE_URL or .stokline/state.db
    store.inbox.add(client, webhook_id, topic, body)
    store.links.get(client, "order", shopline_order_id)
"""

from __future__ import annotations

from sqlalchemy import Engine

from stokline.store.db import default_url, make_engine
from stokline.store.exceptions import REASONS, ExceptionRecord, Exceptions
from stokline.store.inbox import Inbox, InboxEvent
from stokline.store.leases import Leases
from stokline.store.records import Audit, Cursors, LedgerBatches, Link, Links, PushedLevels
from stokline.store.tables import metadata

__all__ = [
    "REASONS",
    "ExceptionRecord",
    "InboxEvent",
    "Link",
    "Store",
]


class Store:
    """One database of integration state, shared by every client and sync."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.url = url or default_url()
        self.engine = engine or make_engine(self.url)
        metadata.create_all(self.engine)
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
