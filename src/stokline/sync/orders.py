"""The orders sync: SHOPLINE orders into Stokly sale orders, exactly once.

One run gathers candidates from three places — the webhook inbox, a sweep of SHOPLINE orders
updated since the stored cursor minus the look-back window, and the orders whose exceptions are
open or marked for retry — re-reads the inbox's orders by id for their current state, and handles
them in batches of ``syncs.orders.batch_size``:

1. orders already linked are checked for cancellations and edits (``on_cancelled``/``on_edited``);
2. the rest are searched in Stokly by (channel id, SHOPLINE order id), one call per batch — a
   sale order found there is linked, never created again (this is how a run that crashed between
   create and link recovers);
3. the others are translated through the mapping (items validated by one look-up per batch),
   their customers found or created, and their sale orders created concurrently; each create is
   followed at once by its link and an audit row.

An order that cannot be translated becomes one exception and the batch goes on; so does one that
cannot even be read (`stokline.sync.guards`: a malformed record SHOPLINE sent, a "NaN" amount, a
SKU that is not valid Unicode), as a ``poison_message`` replayed until SHOPLINE's copy is usable.
An order held back by a transient failure keeps its webhook events for the next run and holds the
cursor.
Concurrent runs split the work: webhook events are claimed row by row (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), and every order a run handles is leased to it first (`stokline.store.leases`),
so an order another run holds is left to that run — never searched for and created twice.
A dry run reads both APIs and the store and writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from stokline.config import Mapping
from stokline.config.skus import sku_key
from stokline.connectors import (
    ApiError,
    ConnectorError,
    InvalidRecord,
    ShoplineClient,
    StoklyClient,
    is_transient,
)
from stokline.connectors.shopline.models import Order
from stokline.connectors.stokly.models import SaleOrder
from stokline.mapping.orders import (
    OrderUntranslatable,
    SaleOrderDraft,
    StoklyCatalogue,
    is_importable,
    order_fingerprint,
    refunded_before_import,
    translate_order,
)
from stokline.mapping.translate import Untranslatable, render_sale_order_fields
from stokline.store import Store
from stokline.store.exceptions import ACTIVE, REASONS, ExceptionRecord
from stokline.store.inbox import InboxEvent
from stokline.store.records import Link
from stokline.sync.clients import api_calls
from stokline.sync.customers import create_customers, plan_customers
from stokline.sync.guards import BAD_DATA, describe_failure, printable, unusable
from stokline.sync.report import OrdersReport

__all__ = ["ORDER_TOPICS", "OrdersReport", "stokly_location_index", "sync_orders"]

log = logging.getLogger("stokline.sync.orders")

ORDER_TOPICS = (
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "orders/edited",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/delete",
)
"""Webhook topics about one order (a bare order object, or its id): each is a reason to look."""

SYNC = "orders"
LINK = "order"
ACTOR = "stokline.sync.orders"
CLAIM_PAGE = 500
# Exceptions a successful import closes; an order_changed stays until a person closes it.
_SELF_HEALING = frozenset(REASONS) - {"order_changed"}
# Stokly line statuses under which a sale order can still be removed without undoing work.
_UNTOUCHED = frozenset({"unprocessed", "cancelled"})


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not data.get("id") or not isinstance(data["id"], str | int):
        return None
    return data


def _as_dict(order: Order) -> dict[str, Any]:
    return order.model_dump()


def _cancelled(order: dict[str, Any]) -> bool:
    return order.get("status") == "cancelled" or bool(order.get("cancelled_at"))


def _updated(order: dict[str, Any]) -> datetime | None:
    value = order.get("updated_at")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _entity(order: dict[str, Any]) -> str:
    name = order.get("name")
    return f"order {name} ({order['id']})" if name else f"order ({order['id']})"


class _Run:
    """One pass of the orders sync; `sync_orders` is its public face."""

    def __init__(
        self,
        mapping: Mapping,
        shopline: ShoplineClient,
        stokly: StoklyClient,
        store: Store,
        dry_run: bool,
        trigger: str,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.mapping = mapping
        self.settings = mapping.syncs.orders
        self.client = mapping.client.name
        self.channel = mapping.connections.stokly.channel_id
        self.shopline = shopline
        self.stokly = stokly
        self.store = store
        self.dry = dry_run
        self.trigger = trigger
        self.progress = progress
        self.sweep = True  # False: the inbox only (no SHOPLINE sweep, no replay, cursor kept)
        self.report = OrdersReport(client=self.client, trigger=trigger, dry_run=dry_run)
        self.worker = f"orders:{socket.gethostname()[:24]}"
        # Leases on the orders this run handles: concurrent runs leave each other's orders alone.
        self.holder = f"{self.worker}:{uuid.uuid4().hex[:12]}"
        self.busy: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[InboxEvent]] = {}
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

    # -- gathering ------------------------------------------------------------------------------

    def _take_events(self) -> list[InboxEvent]:
        if self.dry:
            return self.store.inbox.pending(self.client, topics=ORDER_TOPICS)
        taken: list[InboxEvent] = []
        while batch := self.store.inbox.claim(
            self.client, self.worker, CLAIM_PAGE, topics=ORDER_TOPICS
        ):
            taken.extend(batch)
            if len(batch) < CLAIM_PAGE:
                break
        return taken

    def _read_events(self) -> dict[str, dict[str, Any]]:
        """Order bodies from the inbox by order id (the newest delivery of each order wins)."""
        bodies: dict[str, dict[str, Any]] = {}
        for event in self._take_events():
            order = _decode(event.body)
            if order is None:
                self._poison(event)
                continue
            order_id = str(order["id"])
            self.events.setdefault(order_id, []).append(event)
            previous = bodies.get(order_id)
            newer = previous is None or (_updated(order) or datetime.min.replace(tzinfo=UTC)) >= (
                _updated(previous) or datetime.min.replace(tzinfo=UTC)
            )
            if newer and order.get("line_items") is not None:
                bodies[order_id] = order
        # Another run may hold one of these orders (it swept it, or claimed another of its events
        # at the same moment): its events go back to the inbox for the next run, untouched.
        for order_id in self._held_elsewhere(list(self.events)):
            for event in self.events.pop(order_id):
                self.store.inbox.release(event.id, "the order was being handled by another run")
            self.busy[order_id] = bodies.pop(order_id, None) or {"id": order_id}
        return bodies

    def _held_elsewhere(self, order_ids: list[str]) -> set[str]:
        """Lease ``order_ids`` to this run; returns those another run holds."""
        if self.dry or not order_ids:
            return set()
        taken = self.store.leases.acquire(self.client, LINK, order_ids, self.holder)
        return set(order_ids) - taken

    def _poison(self, event: InboxEvent) -> None:
        message = f"a signed {event.topic} delivery is not an order object with an id"
        team = self.mapping.operating_model.owner_of("poison_message")
        self.report.add_exception("poison_message", team, f"webhook {event.webhook_id}", message)
        if self.dry:
            return
        self.store.inbox.poison(event.id, message)
        self.store.exceptions.raise_(
            self.client,
            "poison_message",
            "webhook",
            event.webhook_id,
            message,
            team=team,
            payload={"topic": event.topic, "bytes": len(event.body)},
        )
        self.report.exceptions_opened += 1

    def _set_aside(self, record: InvalidRecord) -> None:
        """A malformed order of a page: it becomes an exception; the page goes on."""
        if record.record_id is None:
            self.report.add_error(f"SHOPLINE sent an order without a usable id: {record.error}")
            return
        self.unreadable[record.record_id] = (
            record.raw,
            f"SHOPLINE sent it malformed: {record.error}",
        )

    async def _sweep(self, since: datetime) -> dict[str, dict[str, Any]] | None:
        try:
            return {
                o.id: _as_dict(o)
                async for o in self.shopline.iter_orders(
                    updated_at_min=since, on_invalid=self._set_aside
                )
            }
        except ConnectorError as exc:
            self.report.sweep_ok = False
            self.report.add_error(f"the SHOPLINE sweep failed: {exc}")
            return None

    async def _fetch(self, ids: Iterable[str]) -> dict[str, dict[str, Any]] | None:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        try:
            return {
                o.id: _as_dict(o)
                async for o in self.shopline.iter_orders(ids=wanted, on_invalid=self._set_aside)
            }
        except ConnectorError as exc:
            self.report.add_error(f"re-reading {len(wanted)} orders from SHOPLINE failed: {exc}")
            return None

    async def _candidates(self, since: datetime) -> dict[str, dict[str, Any]]:
        bodies = self._read_events()
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=LINK, status=ACTIVE
        ):
            self.active.setdefault(record.entity_id, []).append(record)
        replay = [i for i, r in self.active.items() if self.sweep and self._replayable(r)]
        swept = await self._sweep(since) if self.sweep else None
        orders = dict(swept or {})
        fetched = await self._fetch(
            i for i in [*bodies, *replay] if i not in orders and i not in self.unreadable
        )
        # SHOPLINE cannot be read: the webhook's own copy of an order is the next best; orders
        # replayed for their exceptions wait for the next run (their exceptions stay open).
        orders.update(fetched or {})
        for order_id, body in bodies.items():
            if order_id not in self.unreadable:
                orders.setdefault(order_id, body)
        for order_id, order in list(orders.items()):
            if (why := unusable(order)) is not None:
                self.unreadable[order_id] = (orders.pop(order_id), why)
        for order_id in self._held_elsewhere([i for i in orders if i not in self.events]):
            self.busy[order_id] = orders.pop(order_id)
        if self.busy:
            log.info("%d order(s) are being handled by another run: left to it", len(self.busy))
        for order_id in self.events:
            if order_id not in orders:
                log.info("order %s of a webhook is not in SHOPLINE (deleted?)", order_id)
        if not self.dry:
            for order_id in replay:
                if order_id in self.busy:
                    continue
                for record in self.active[order_id]:
                    if record.status == "open":
                        self.store.exceptions.mark_retrying(record.id)
        for order_id, (raw, why) in self.unreadable.items():
            self._unreadable(order_id, raw, why)
        return orders

    def _unreadable(self, order_id: str, raw: Any, why: str) -> None:
        """One ``poison_message`` for an order no step can work on; replayed from SHOPLINE."""
        name = raw.get("name") if isinstance(raw, dict) else None
        stub = {"id": printable(order_id), "name": printable(name) if name else None}
        message = printable(f"the order cannot be read, so it was not imported: {why}", 600)
        self._raise(stub, Untranslatable("poison_message", message), {"unreadable": True})

    @staticmethod
    def _replayable(records: list[ExceptionRecord]) -> bool:
        return any(r.code in _SELF_HEALING for r in records)

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
            if code != exc.code and code in _SELF_HEALING:
                self.store.exceptions.resolve(old.id, f"superseded by {exc.code}")
                self.report.exceptions_resolved += 1
        self.active[order_id] = [record]
        self.report.add_exception(exc.code, team, _entity(order), exc.message, record.status)

    def _resolve(self, order_id: str, note: str) -> None:
        records = [r for r in self.active.pop(order_id, []) if r.code in _SELF_HEALING]
        for record in records:
            name = (record.payload or {}).get("order") if isinstance(record.payload, dict) else None
            entity = f"order {name} ({order_id})" if name else f"order ({order_id})"
            self.report.add_exception(record.code, record.team, entity, note, "resolved")
            if not self.dry and self.store.exceptions.resolve(record.id, note):
                self.report.exceptions_resolved += 1

    # -- the batch ------------------------------------------------------------------------------

    async def _catalogue(self, orders: list[dict[str, Any]]) -> StoklyCatalogue:
        """Stokly's items for the SKUs of ``orders`` (one filtered look-up), and its locations."""
        match = self.mapping.skus.match
        overrides = {
            sku_key(o.shopline_sku, match): o.stokly_sku for o in self.mapping.skus.overrides
        }
        skus: set[str] = set()
        for order in orders:
            for line in order.get("line_items") or []:
                sku = str(line.get("sku") or "").strip()
                if not sku or self.never_sync(sku):
                    continue
                target = overrides.get(sku_key(sku, match), sku)
                skus.add(target)
                if match != "exact":
                    skus.update({target.upper(), target.lower()})
        items = await self._items(skus)
        if match != "exact" and self.full_index is None:
            keys = {sku_key(s, match) for s in items}
            if any(sku_key(s, match) not in keys for s in skus):
                # Spellings a filter cannot guess (separators, mixed case): read the whole index.
                self.full_index = await self._items(None)
        if self.full_index is not None:
            items = self.full_index
        if self.locations is None:
            self.locations = await stokly_location_index(self.stokly)
        return StoklyCatalogue.build(self.mapping, items.items(), self.locations.items())

    async def _items(self, skus: set[str] | None) -> dict[str, str]:
        if skus is not None and not skus:
            return {}
        return {
            item.sku: item.itemId
            async for item in self.stokly.iter_items(skus=sorted(skus) if skus else None)
            if item.active and item.format != 2
        }

    async def _batch(self, orders: list[dict[str, Any]]) -> None:
        ids = [str(o["id"]) for o in orders]
        links = {} if not ids else self.store.links.get_many(self.client, LINK, ids)
        search: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for order in orders:
            order_id = str(order["id"])
            if order_id in links:
                changed.append(order)
            elif _cancelled(order):
                # A crashed run may have created it before it was cancelled; never if unpaid.
                if order.get("financial_status") in (None, "unpaid", "voided"):
                    self.report.skipped += 1
                else:
                    search.append(order)
            elif refunded_before_import(order.get("financial_status"), self.settings.import_when):
                # Money all given back before import: nothing to fulfil, so never created; but a
                # crashed run may have created it, and then it is linked (like a cancellation).
                search.append(order)
            elif not is_importable(order.get("financial_status"), self.settings.import_when):
                self.report.skipped += 1
                if self.active.get(order_id):
                    status = order.get("financial_status")
                    self._resolve(order_id, f"no longer to be imported (financial status {status})")
            else:
                search.append(order)
        cancels = [
            o for o in changed if _cancelled(o) and not (links[o["id"]].data or {}).get("cancelled")
        ]
        look_up = [str(o["id"]) for o in search] + [
            str(o["id"]) for o in cancels if self.settings.on_cancelled == "apply"
        ]
        found: dict[str, SaleOrder] = {}
        if look_up:
            try:
                for sale in await self.stokly.find_sale_orders_by_source(self.channel, look_up):
                    if sale.sourceReferenceId:
                        found.setdefault(sale.sourceReferenceId, sale)
            except ConnectorError as exc:
                self.report.add_error(f"searching Stokly for {len(look_up)} orders failed: {exc}")
                for order in search + cancels:
                    self.deferred[str(order["id"])] = order
                search, cancels = [], []
                changed = [o for o in changed if not _cancelled(o)]
        to_create: list[dict[str, Any]] = []
        for order in search:
            order_id = str(order["id"])
            sale = found.get(order_id)
            if sale is not None:
                self._recovered(order, sale)
            elif _cancelled(order):
                self.report.skipped += 1
                if self.active.get(order_id):
                    self._resolve(order_id, "cancelled in SHOPLINE before it was imported")
            elif refunded_before_import(order.get("financial_status"), self.settings.import_when):
                self.report.skipped += 1
                if self.active.get(order_id):
                    self._resolve(order_id, "refunded in full in SHOPLINE before it was imported")
            else:
                to_create.append(order)
        for order in changed:
            await self._check_change(order, links[str(order["id"])], found.get(str(order["id"])))
        if to_create:
            await self._create_all(to_create)

    def _recovered(self, order: dict[str, Any], sale: SaleOrder) -> None:
        """Stokly has it already (a crash between create and link, or another installation)."""
        order_id = str(order["id"])
        self.report.duplicates += 1
        if self.dry:
            return
        data = {"fingerprint": order_fingerprint(order), "recovered": True}
        self.store.links.put(self.client, LINK, order_id, sale.saleOrderId, data)
        self._resolve(order_id, f"already in Stokly as sale order {sale.saleOrderId}")
        if _cancelled(order):
            link = Link(LINK, order_id, sale.saleOrderId, data)
            self._pending_changes.append((order, link, sale))

    async def _create_all(self, orders: list[dict[str, Any]]) -> None:
        try:
            catalogue = await self._catalogue(orders)
        except ConnectorError as exc:
            self.report.add_error(f"reading Stokly items and locations failed: {exc}")
            for order in orders:
                self.deferred[str(order["id"])] = order
            return
        drafts: list[tuple[dict[str, Any], SaleOrderDraft]] = []
        for order in orders:
            try:
                draft = translate_order(self.mapping, order, catalogue)
            except OrderUntranslatable as exc:
                problems = [{"code": p.code, "message": p.message} for p in exc.problems]
                self._raise(order, exc, {"problems": problems})
                continue
            except BAD_DATA as exc:  # data no check foresaw: this order, not the batch, fails
                message = f"the order could not be translated: {describe_failure(exc)}"
                self._raise(order, Untranslatable("poison_message", message))
                continue
            if not draft.importable:
                self.report.skipped += 1
                continue
            drafts.append((order, draft))
        if not drafts:
            return
        try:
            plan = await plan_customers(self.mapping, self.stokly, [o for o, _ in drafts])
        except ConnectorError as exc:
            self.report.add_error(f"looking up Stokly customers failed: {exc}")
            for order, _ in drafts:
                self.deferred[str(order["id"])] = order
            return
        groups = plan.groups()
        if groups and not self.dry:
            await create_customers(self.stokly, groups)
            for group in groups:
                if group.customer_id:
                    self.report.customers_created += 1
                    self.store.audit.record(
                        self.client,
                        ACTOR,
                        "stokly",
                        "create_customer",
                        f"{self.channel}:customer-for:{group.orders[0]}",
                        group.customer_id,
                        {"orders": group.orders, "keys": sorted(k for k, _ in group.keys)},
                    )
        ready: list[tuple[dict[str, Any], SaleOrderDraft, str | None]] = []
        for order, draft in drafts:
            order_id = draft.order_id
            if order_id in plan.problems:
                self._raise(order, plan.problems[order_id])
                continue
            group = plan.new.get(order_id)
            if group is None:
                ready.append((order, draft, plan.existing.get(order_id)))
            elif self.dry:
                ready.append((order, draft, "(new)"))
            elif group.customer_id:
                ready.append((order, draft, group.customer_id))
            elif group.error is not None and is_transient(group.error):
                self.deferred[order_id] = order
            else:
                self._raise(
                    order,
                    Untranslatable(
                        "api_rejected", f"Stokly refused the new customer: {group.error}"
                    ),
                )
        if self.dry:
            for _order, draft, customer in ready:
                row = draft.summary()
                row["customer"] = (
                    "new" if customer == "(new)" else "existing" if customer else "none"
                )
                self.report.would_create.append(row)
            return
        results = await asyncio.gather(
            *(self._create(order, draft, customer) for order, draft, customer in ready),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and self.crash is None:
                self.crash = result

    async def _create(
        self, order: dict[str, Any], draft: SaleOrderDraft, customer: str | None
    ) -> None:
        order_id = draft.order_id
        try:
            created = await self.stokly.create_sale_order(draft.payload_for(customer))
        except ApiError as exc:
            if is_transient(exc):
                self.deferred[order_id] = order
                self.report.add_error(f"creating {draft.name} failed for now: {exc}")
            else:
                self._raise(
                    order,
                    Untranslatable(
                        "api_rejected", f"Stokly refused the sale order: {exc.api_message or exc}"
                    ),
                    {"status": exc.status},
                )
            return
        except ConnectorError as exc:
            # Ambiguous: the order may exist. Never resent now; the next run searches first.
            self.deferred[order_id] = order
            self.report.add_error(f"creating {draft.name} had no clear answer: {exc}")
            return
        data = {
            "fingerprint": draft.fingerprint,
            "name": draft.name,
            "customer": customer,
        }
        self.store.links.put(self.client, LINK, order_id, created.id, data)
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "create_sale_order",
            f"{self.channel}:{order_id}",
            created.id,
            {
                "order": draft.name,
                "trigger": self.trigger,
                "lines": len(draft.lines),
                "total": str(draft.total),
                "excluded": list(draft.excluded),
            },
        )
        self.report.imported += 1
        self._resolve(order_id, f"imported as sale order {created.id}")

    # -- cancellations and edits ----------------------------------------------------------------

    async def _check_change(
        self, order: dict[str, Any], link: Link, sale: SaleOrder | None
    ) -> None:
        data = dict(link.data or {})
        if _cancelled(order):
            if data.get("cancelled"):
                self.report.duplicates += 1
                return
            await self._cancel(order, link, data, sale)
            return
        old = data.get("fingerprint") or {}
        new = order_fingerprint(order)
        parts = [k for k in ("lines", "delivery", "notes") if old.get(k) and old[k] != new[k]]
        if not parts:
            self.report.duplicates += 1
            if not old:  # linked without a fingerprint (recorded by hand): remember it from now
                self._remember(link, {**data, "fingerprint": new})
            return
        await self._edited(order, link, data, new, parts)

    def _remember(self, link: Link, data: dict[str, Any]) -> None:
        if not self.dry:
            self.store.links.put(self.client, LINK, link.shopline_id, link.stokly_id, data)

    def _change_row(self, order: dict[str, Any], link: Link, change: str, outcome: str) -> None:
        self.report.changes.append(
            {
                "order": order.get("name"),
                "shopline_id": str(order["id"]),
                "sale_order": link.stokly_id,
                "change": change,
                "outcome": outcome,
            }
        )

    async def _cancel(
        self, order: dict[str, Any], link: Link, data: dict[str, Any], sale: SaleOrder | None
    ) -> None:
        reason = order.get("cancel_reason") or "no reason given"
        if self.settings.on_cancelled == "exception":
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE ({reason}) after it was imported"
                    f" as Stokly sale order {link.stokly_id}; on_cancelled is 'exception'",
                ),
            )
            self._change_row(order, link, "cancelled", "reported")
            self._remember(link, {**data, "cancelled": "reported"})
            return
        if sale is not None and sale.stage == "removed":
            self._change_row(order, link, "cancelled", "already removed in Stokly")
            self._remember(link, {**data, "cancelled": "applied"})
            return
        started = sorted(set(sale.itemStatuses) - _UNTOUCHED) if sale is not None else []
        if started:
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE ({reason}) but Stokly sale order"
                    f" {link.stokly_id} is already {', '.join(started)}: stop or return the goods",
                ),
            )
            self._change_row(order, link, "cancelled", "reported: fulfilment under way")
            self._remember(link, {**data, "cancelled": "reported"})
            return
        if self.dry:
            self._change_row(order, link, "cancelled", "would remove the sale order")
            return
        try:
            await self.stokly.patch_sale_order(link.stokly_id, {"stage": "removed"})
        except ConnectorError as exc:
            if is_transient(exc):
                self.deferred[str(order["id"])] = order
                self.report.add_error(f"removing the sale order of {order.get('name')}: {exc}")
                return
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE; Stokly refused to remove sale"
                    f" order {link.stokly_id}: {exc}",
                ),
            )
            self._remember(link, {**data, "cancelled": "reported"})
            return
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "remove_sale_order",
            f"{self.channel}:{order['id']}",
            link.stokly_id,
            {"order": order.get("name"), "reason": reason, "trigger": self.trigger},
        )
        self._change_row(order, link, "cancelled", "sale order removed")
        self._remember(link, {**data, "cancelled": "applied"})

    async def _edited(
        self,
        order: dict[str, Any],
        link: Link,
        data: dict[str, Any],
        fingerprint: dict[str, str],
        parts: list[str],
    ) -> None:
        what = " and ".join(
            {"lines": "its lines", "delivery": "its delivery", "notes": "its notes"}[p]
            for p in parts
        )
        applied = False
        if self.settings.on_edited == "apply" and parts == ["notes"]:
            try:
                fields = render_sale_order_fields(self.mapping, order, order.get("customer"))
            except Untranslatable as exc:
                self._raise(order, exc)
                return
            if not self.dry:
                try:
                    await self.stokly.patch_sale_order(link.stokly_id, fields)
                except ConnectorError as exc:
                    if is_transient(exc):
                        self.deferred[str(order["id"])] = order
                        return
                    parts = [*parts, f"refused: {exc}"]
                else:
                    applied = True
                    self.store.audit.record(
                        self.client,
                        ACTOR,
                        "stokly",
                        "update_sale_order",
                        f"{self.channel}:{order['id']}",
                        link.stokly_id,
                        {"order": order.get("name"), "fields": sorted(fields)},
                    )
            else:
                applied = True
        if applied:
            outcome = "would apply" if self.dry else "applied"
            self._change_row(order, link, f"edited ({what})", outcome)
        else:
            hint = (
                "Stokly's API cannot change the lines or the delivery of an existing sale order"
                if self.settings.on_edited == "apply"
                else "on_edited is 'exception'"
            )
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was edited in SHOPLINE ({what}) after it was imported as"
                    f" Stokly sale order {link.stokly_id}; {hint}",
                ),
            )
            self._change_row(order, link, f"edited ({what})", "reported")
        self._remember(link, {**data, "fingerprint": fingerprint})

    # -- the run --------------------------------------------------------------------------------

    async def execute(self) -> OrdersReport:
        started = time.monotonic()
        calls_before = api_calls(self.shopline, self.stokly)
        sweep_started = datetime.now(UTC)
        cursor = self.store.cursors.get(self.client, SYNC)
        since = (
            datetime.fromisoformat(cursor) if cursor else sweep_started
        ) - self.settings.lookback
        try:
            orders = await self._candidates(since)
            self.report.seen = len(orders)
            queue = list(orders.values())
            size = self.settings.batch_size
            for start in range(0, len(queue), size):
                if start and not self.dry:
                    self.store.leases.renew(self.holder)  # a long run keeps its orders
                await self._batch(queue[start : start + size])
                while self._pending_changes:
                    order, link, sale = self._pending_changes.pop()
                    await self._check_change(order, link, sale)
                if self.progress is not None:
                    self.progress(min(start + size, len(queue)), len(queue))
                if self.crash is not None:
                    raise self.crash
        except BaseException:
            self._settle_events(crashed=True)
            raise
        self._settle_events(crashed=False)
        self.report.deferred = len(self.deferred)
        if self.sweep and self.report.sweep_ok and not self.dry:
            # Orders deferred, or left to another run that may yet defer them, hold the cursor.
            busy = [o for o in self.busy.values() if _updated(o) is not None]
            unsettled = [*self.deferred.values(), *busy]
            held = [u for o in unsettled if (u := _updated(o)) is not None]
            value = min([sweep_started, *held])
            if not any(_updated(o) is None for o in unsettled):
                self.store.cursors.set(self.client, SYNC, value.isoformat())
        self.report.api_calls = api_calls(self.shopline, self.stokly) - calls_before
        self.report.seconds = time.monotonic() - started
        return self.report

    def _settle_events(self, *, crashed: bool) -> None:
        """Processed events are done; those of deferred orders (or all, after a crash) go back."""
        if self.dry:
            return
        done: list[int] = []
        for order_id, events in self.events.items():
            for event in events:
                if crashed or order_id in self.deferred:
                    self.store.inbox.release(event.id, "left for the next run")
                else:
                    done.append(event.id)
        self.store.inbox.done(done)
        self.store.leases.release(self.holder)


async def sync_orders(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    progress: Callable[[int, int], None] | None = None,
    locations: dict[str, str] | None = None,
    sweep: bool = True,
) -> OrdersReport:
    """One pass of the orders sync for ``mapping``'s client; returns what it did.

    Exceptions of single orders are recorded in the store and listed in the report, never
    raised. Transient failures hold the affected orders (and their webhook events) for the next
    run and appear in ``report.errors``; ``report.ok`` is False then. Only a crash — an error this
    function does not know — propagates, after handing the claimed events back.

    ``locations`` (Stokly location name → id, from `stokly_location_index`) may be passed in by a
    caller that caches it; otherwise it is read once per run.

    ``sweep=False`` takes the webhook inbox only — the quick pass of the orders inbox watcher
    (flows/orders_events.py): no sweep of SHOPLINE, no replay of open exceptions, and the sweep
    cursor is left where it is, since nothing was swept. The scheduled passes do those.
    """
    run = _Run(mapping, shopline, stokly, store, dry_run, trigger, progress)
    run.sweep = sweep
    if locations is not None:
        run.locations = dict(locations)
    return await run.execute()


async def stokly_location_index(stokly: StoklyClient) -> dict[str, str]:
    """Active Stokly locations, name → id: how mapping files name them, and what Stokly needs."""
    return {
        loc.name: loc.locationId async for loc in stokly.iter_locations() if loc.status in (None, 0)
    }
