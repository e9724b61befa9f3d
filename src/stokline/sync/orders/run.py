"""The state one orders run keeps, and the exceptions it raises and resolves on orders.

The steps of a run — reading the work in (`stokline.sync.orders.intake`), importing a batch
(`stokline.sync.orders.importer`) and following up imported orders
(`stokline.sync.orders.changes`) — are subclasses of `OrdersRun`, put together in
`stokline.sync.orders.sync`. They share what is here: which orders were deferred, left to another run
or cannot be read, each order's active exceptions, and the one way an order's exception is
raised (superseding its other translation problems) or resolved.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from stokline.connectors.stokly.models import SaleOrder
from stokline.mapping.translate import Untranslatable
from stokline.store.exceptions import REASONS, ExceptionRecord
from stokline.store.inbox import InboxEvent
from stokline.store.records import Link
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.translate import StoklyCatalogue
from stokline.sync.run import SyncRun

__all__ = ["ACTOR", "LINK", "SELF_HEALING", "SYNC", "OrdersRun"]

SYNC = "orders"
LINK = "order"
ACTOR = "stokline.sync.orders"
SELF_HEALING = frozenset(REASONS) - {"order_changed"}
"""Exceptions a successful import closes; an order_changed stays until a person closes it."""


def _entity(order: dict[str, Any]) -> str:
    name = order.get("name")
    return f"order {name} ({order['id']})" if name else f"order ({order['id']})"


class OrdersRun(SyncRun):
    """One pass of the orders sync: its state, and its exceptions on orders."""

    def __post_init__(self) -> None:
        mapping = self.mapping
        self.settings = mapping.syncs.orders
        self.channel = mapping.connections.stokly.channel_id
        self.sweep = True  # False: the inbox only (no SHOPLINE sweep, no replay, cursor kept)
        self.report = OrdersReport(client=self.client, trigger=self.trigger, dry_run=self.dry)
        self.worker = f"orders:{socket.gethostname()[:24]}"
        # Leases on the orders this run handles: concurrent runs leave each other's orders alone.
        self.holder = f"{self.worker}:{uuid.uuid4().hex[:12]}"
        self.busy: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[InboxEvent]] = {}
        self.claims: set[str] = set()  # the tokens of this run's inbox claims, for renewal
        self.deferred: dict[str, dict[str, Any]] = {}
        self.active: dict[str, list[ExceptionRecord]] = {}
        self.locations: dict[str, str] | None = None
        self.full_index: dict[str, str] | None = None
        self.crash: BaseException | None = None
        # Orders that cannot be worked on, by id: (what SHOPLINE sent, why) — one poison each.
        self.unreadable: dict[str, tuple[Any, str]] = {}
        self.never_sync = StoklyCatalogue.build(mapping, (), ()).matcher.excluded
        # Orders found in Stokly that were cancelled meanwhile: checked once linked.
        self._pending_changes: list[tuple[dict[str, Any], Link, SaleOrder]] = []

    # -- exceptions -----------------------------------------------------------------------------

    def _raise(self, order: dict[str, Any], exc: Untranslatable, payload: Any = None) -> None:
        order_id = str(order["id"])
        team = self.mapping.operating_model.owner_of(exc.code)
        before = {r.code: r for r in self.active.get(order_id, [])}
        if self.dry:
            self.report.add_exception(exc.code, team, _entity(order), exc.message)
            return
        record = self.store.exceptions.raise_(
            self.client,
            exc.code,
            LINK,
            order_id,
            exc.message,
            team=team,
            payload={"order": order.get("name"), **(payload or {})},
        )
        if exc.code not in before and record.status == "open":
            self.report.exceptions_opened += 1
        # The order's other translation problems are gone (this is what it fails on now).
        for code, old in before.items():
            if code != exc.code and code in SELF_HEALING:
                self.store.exceptions.resolve(old.id, f"superseded by {exc.code}")
                self.report.exceptions_resolved += 1
        self.active[order_id] = [record]
        self.report.add_exception(exc.code, team, _entity(order), exc.message, record.status)

    def _resolve(self, order_id: str, note: str) -> None:
        records = [r for r in self.active.pop(order_id, []) if r.code in SELF_HEALING]
        for record in records:
            name = (record.payload or {}).get("order") if isinstance(record.payload, dict) else None
            entity = f"order {name} ({order_id})" if name else f"order ({order_id})"
            self.report.add_exception(record.code, record.team, entity, note, "resolved")
            if not self.dry and self.store.exceptions.resolve(record.id, note):
                self.report.exceptions_resolved += 1
