"""The fulfilment sync: Stokly shipments back to SHOPLINE as fulfillments with tracking, once each.

**Where shipments come from.** Stokly's change feed ([I] ``GET /v0/events``, types
``shipment.created|updated|cancelled``), read from the cursor stored in the state store. One
call per page brings every new, corrected and cancelled shipment; a sweep of the linked orders
not yet fulfilled would cost one Stokly call per open order every five minutes and would still
miss tracking corrections and cancellations of shipments already pushed. Nothing is lost between
runs because the cursor only moves past what is done: a shipment held back by a transient
failure keeps the cursor before its event, so the next run reads it again; a shipment a person
must look at becomes an exception, and every run replays the shipments of active exceptions by
id, so those need not hold the cursor (once stale, a deferred shipment has an exception too and
stops holding it).

**Exactly once.** A shipment's fulfillment is recorded as a link (kind ``shipment``: SHOPLINE
fulfillment id ↔ Stokly shipment id) right after SHOPLINE accepts it. SHOPLINE keeps no reference
of ours, so before creating, the run reads the order's fulfillments and recognises one that
stands for the shipment — the same tracking numbers, else the same quantities per SKU
(`find_fulfilment`) — and links it instead: a rerun, or a run after a crash between create and
link, never creates a second one. (An order whose lines all still have their whole quantity to
fulfil has no live fulfillment, so that read is skipped for it: a fresh order's first parcel
costs one write.) A create that fails (5xx, no answer) is followed by the same check before it
is tried again, at most `PushRetry.attempts` times per run, then left for the next run. A
request never asks for more than SHOPLINE still has to fulfil. Concurrent runs (a manual pass
beside the scheduled one) lease the SHOPLINE orders they work on (`stokline.store.leases`) and
leave each other's alone.

**Changes.** A linked shipment whose tracking changed in Stokly gets the fulfillment's tracking
list replaced; a cancelled one is handled per ``syncs.fulfilment.on_shipment_cancelled``
(cancel the fulfillment, or an ``order_changed`` exception for operations).

**Stale shipments.** A shipment dispatched longer ago than ``stale_after`` that SHOPLINE does not
show (deferred, or stuck on an exception) becomes a ``stale_fulfilment`` exception and a row of
``report.stale``; the flow turns new ones into a Prefect event. This module emits nothing.

**Malformed records.** A shipment Stokly sends malformed (or with text that is not valid
Unicode), or whose SHOPLINE order arrives so, becomes a ``poison_message`` exception of its own —
replayed by id like every exception — and the rest of the batch goes on (`stokline.sync.guards`);
so does a shipment whose data fails its handling halfway.

A dry run reads the feed, both APIs and the store, and writes nothing anywhere (not even the
cursor); ``report.would_write`` lists what a real run would do.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stokline.config import Mapping
from stokline.connectors import ConnectorError, InvalidRecord, ShoplineClient, StoklyClient
from stokline.connectors.stokly.filters import one_of
from stokline.connectors.stokly.invented import Event
from stokline.mapping.translate import Untranslatable
from stokline.store import Store
from stokline.store.exceptions import ACTIVE, REASONS, ExceptionRecord
from stokline.store.heartbeat import Heartbeat
from stokline.store.records import Link
from stokline.sync.fulfilment.report import FulfilmentReport
from stokline.sync.fulfilment.translate import (
    find_fulfilment,
    refunded_in_shipment,
    translate_shipment,
)
from stokline.sync.fulfilment.writes import (
    LINK,
    Entry,
    FulfilmentWrites,
    PushRetry,
    reduce_fulfillable,
    shipment_source,
)
from stokline.sync.guards import BAD_DATA, describe_failure, printable, unusable
from stokline.sync.orders.translate import is_cancelled
from stokline.sync.run import RunCost

__all__ = ["SHIPMENT_EVENTS", "FulfilmentReport", "PushRetry", "sync_fulfilment"]

log = logging.getLogger("stokline.sync.fulfilment")

SYNC = "fulfilment"
ORDER_LINK = "order"
STALE = "stale_fulfilment"
SHIPMENT_EVENTS = ("shipment.created", "shipment.updated", "shipment.cancelled")
"""[I] Stokly change-feed event types this sync reads."""
ID_BATCH = 100
LEASE = "fulfilment"  # leases on SHOPLINE order ids: one run at a time works on an order
# Exceptions a shipment reaching SHOPLINE closes; an order_changed stays until a person closes it.
_SELF_HEALING = frozenset(REASONS) - {"order_changed"}


def _quiet(shipment: dict[str, Any], link: Link) -> bool:
    """True when a linked shipment has not changed since it was last pushed."""
    data = link.data if isinstance(link.data, dict) else {}
    if shipment.get("status") == "cancelled":
        return bool(data.get("cancelled"))
    return data.get("source") == shipment_source(shipment)


def _shipment_id(event: Event) -> str | None:
    value = event.data.get("shipmentId")
    return str(value) if value else None


@dataclass(eq=False, repr=False)
class _Run(FulfilmentWrites):
    """One pass of the fulfilment sync; `sync_fulfilment` is its public face."""

    retry: PushRetry
    now: datetime | None  # when shipments are judged stale; None: the current time

    def __post_init__(self) -> None:
        mapping = self.mapping
        settings = mapping.syncs.fulfilment
        if settings is None:
            raise ValueError(
                f"the mapping {mapping.source or mapping.client.name} has no syncs.fulfilment"
            )
        self.settings = settings
        self.channel = mapping.connections.stokly.channel_id
        self.now = self.now or datetime.now(UTC)
        self.report = FulfilmentReport(
            client=self.client,
            trigger=self.trigger,
            dry_run=self.dry,
            stale_after_hours=settings.stale_after.total_seconds() / 3600,
        )
        self.handled: set[str] = set()
        self.deferred: set[str] = set()
        self.busy: set[str] = set()
        self.holder = f"fulfilment:{socket.gethostname()[:24]}:{uuid.uuid4().hex[:12]}"
        self.active: dict[str, list[ExceptionRecord]] = {}
        # Stale alerts someone ignored: the alert is no news any more, but the shipment must
        # still reach SHOPLINE, so it is replayed until it does (then the record is closed).
        self.ignored_stale: dict[str, ExceptionRecord] = {}
        self.crash: BaseException | None = None
        # Records that cannot be worked on: shipment id → (what Stokly sent, why); order → why.
        self.unreadable: dict[str, tuple[Any, str]] = {}
        self.unreadable_orders: dict[str, str] = {}
        # Malformed records of the read in progress that do not say whose they are: the ids
        # asked for and not answered may be theirs, so those are held, never taken as deleted.
        self.nameless_shipments = 0
        self.nameless_orders = 0

    # -- exceptions -----------------------------------------------------------------------------

    def _entity(self, entry: Entry, order: dict[str, Any] | None) -> str:
        name = (order or {}).get("name") or entry.order_id
        return f"shipment {entry.id} of order {name}"

    def _raise(
        self,
        entry: Entry,
        order: dict[str, Any] | None,
        code: str,
        message: str,
        payload: dict[str, Any] | None = None,
    ) -> ExceptionRecord | None:
        team = self.mapping.operating_model.owner_of(code)
        entity = self._entity(entry, order)
        before = {r.code: r for r in self.active.get(entry.id, [])}
        if self.dry:
            self.report.add_exception(code, team, entity, message)
            return None
        record = self.store.exceptions.raise_(
            self.client,
            code,
            LINK,
            entry.id,
            message,
            team=team,
            payload={
                "order": (order or {}).get("name"),
                "shopline_order_id": entry.order_id,
                "sale_order_id": entry.shipment.get("saleOrderId"),
                **(payload or {}),
            },
        )
        if code not in before and record.status == "open":
            self.report.exceptions_opened += 1
        # Only active records count: an ignored one is not replayed, so it must not stand in for
        # the feed (a deferred shipment with only an ignored exception still holds the cursor).
        kept = [record] if record.status in ACTIVE else []
        if code == STALE and record.status == "ignored":
            self.ignored_stale[entry.id] = record
        for old_code, old in before.items():
            if old_code == code:
                continue
            if old_code in _SELF_HEALING and STALE not in (code, old_code):
                # What the shipment fails on now supersedes its earlier problem.
                self.store.exceptions.resolve(old.id, f"superseded by {code}")
                self.report.exceptions_resolved += 1
            else:
                kept.append(old)
        self.active[entry.id] = kept
        self.report.add_exception(code, team, entity, message, record.status)
        return record

    def _resolve(self, shipment_id: str, note: str) -> None:
        records = self.active.get(shipment_id, [])
        healed = [r for r in records if r.code in _SELF_HEALING]
        self.active[shipment_id] = [r for r in records if r.code not in _SELF_HEALING]
        for record in healed:
            entity = f"shipment {shipment_id}"
            payload = record.payload if isinstance(record.payload, dict) else {}
            if payload.get("order"):
                entity += f" of order {payload['order']}"
            self.report.add_exception(record.code, record.team, entity, note, "resolved")
            if not self.dry and self.store.exceptions.resolve(record.id, note):
                self.report.exceptions_resolved += 1
        ignored = self.ignored_stale.pop(shipment_id, None)
        if ignored is not None and not self.dry:
            self.store.exceptions.resolve(ignored.id, note)

    def _pending(self, entry: Entry, order: dict[str, Any] | None, why: str) -> None:
        """The shipment is not in SHOPLINE after this run: stale once past ``stale_after``."""
        if entry.shipment.get("status") == "cancelled":
            return
        dispatched = entry.dispatched
        if dispatched is None:
            return
        age = self.now - dispatched
        if age <= self.settings.stale_after:
            return
        was_open = any(r.code == STALE for r in self.active.get(entry.id, []))
        name = (order or {}).get("name") or entry.order_id
        hours = age.total_seconds() / 3600
        message = (
            f"shipped in Stokly {hours:.1f} h ago ({dispatched:%Y-%m-%d %H:%M} UTC) but not"
            f" fulfilled in SHOPLINE order {name}: {why}"
        )
        record = self._raise(
            entry, order, STALE, message, {"dispatched_at": dispatched.isoformat()}
        )
        # New: not open before this run, and not ignored by someone (then it is no news).
        new = not was_open and (record is None or record.status in ACTIVE)
        self.report.stale.append(
            {
                "order": name,
                "shopline_order_id": entry.order_id,
                "sale_order_id": entry.shipment.get("saleOrderId"),
                "shipment": entry.id,
                "dispatched_at": dispatched.isoformat(),
                "age_hours": round(hours, 1),
                "reason": why,
                "new": new,
            }
        )

    def _poisoned(self, entry: Entry, order: dict[str, Any] | None, why: str) -> None:
        """A shipment no step can work on (malformed data): one exception, replayed by id."""
        self._raise(entry, order, "poison_message", printable(why, 600))
        self._pending(entry, order, "its data cannot be read")

    def _bad_shipment(self, record: InvalidRecord) -> None:
        if record.record_id is None:
            self.nameless_shipments += 1
            self.report.add_error(f"Stokly sent a shipment without a usable id: {record.error}")
            return
        self.unreadable[record.record_id] = (
            record.raw,
            f"Stokly sent it malformed: {record.error}",
        )

    def _bad_order(self, record: InvalidRecord) -> None:
        if record.record_id is None:
            self.nameless_orders += 1
            self.report.add_error(f"SHOPLINE sent an order without a usable id: {record.error}")
            return
        self.unreadable_orders[record.record_id] = f"SHOPLINE sent it malformed: {record.error}"

    def _unreadable_shipment(self, shipment_id: str) -> None:
        raw, why = self.unreadable[shipment_id]
        raw = raw if isinstance(raw, dict) else {}
        known = {
            k: raw[k] for k in ("saleOrderId", "sourceReferenceId") if isinstance(raw.get(k), str)
        }
        stub = {"shipmentId": printable(shipment_id), **{k: printable(v) for k, v in known.items()}}
        order_id = stub.get("sourceReferenceId") or "(unknown)"
        message = f"the shipment cannot be read, so it was not sent to SHOPLINE: {why}"
        self._poisoned(Entry(stub, order_id, None), None, message)

    def _defer(self, entry: Entry, order: dict[str, Any] | None, error: str) -> None:
        self.deferred.add(entry.id)
        self.report.add_error(error)
        self._pending(entry, order, f"held back by a transient failure ({error})")

    # -- reading --------------------------------------------------------------------------------

    async def _shipments(self, ids: list[str]) -> dict[str, dict[str, Any]] | None:
        found: dict[str, dict[str, Any]] = {}
        self.nameless_shipments = 0
        try:
            for start in range(0, len(ids), ID_BATCH):
                chunk = ids[start : start + ID_BATCH]
                async for shipment in self.stokly.iter_shipments(
                    one_of("shipmentId", chunk), on_invalid=self._bad_shipment
                ):
                    found[shipment.shipmentId] = shipment.model_dump(mode="json")
            for shipment_id, shipment in list(found.items()):
                if (why := unusable(shipment)) is not None:
                    self.unreadable[shipment_id] = (found.pop(shipment_id), why)
            for shipment in found.values():
                if any(not line.get("itemSku") for line in shipment.get("items") or []):
                    await self._fill_skus(shipment)
        except ConnectorError as exc:
            self.report.add_error(f"reading {len(ids)} Stokly shipment(s) failed: {exc}")
            return None
        return found

    async def _fill_skus(self, shipment: dict[str, Any]) -> None:
        """Shipment lines without a SKU take it from their sale order line ([I] optional field)."""
        lines = await self.stokly.get_sale_order_items(str(shipment["saleOrderId"]))
        skus = {line.lineId: line.itemSku for line in lines}
        for line in shipment.get("items") or []:
            if not line.get("itemSku") and skus.get(line.get("lineId")):
                line["itemSku"] = skus[line["lineId"]]

    def _order_of(self, shipment: dict[str, Any]) -> str | None:
        """The SHOPLINE order of a shipment: by the order link, else by the channel's reference."""
        sale_order = str(shipment.get("saleOrderId") or "")
        link = (
            self.store.links.by_stokly(self.client, ORDER_LINK, sale_order) if sale_order else None
        )
        if link is not None:
            return link.shopline_id
        if shipment.get("sourceId") == self.channel and shipment.get("sourceReferenceId"):
            return str(shipment["sourceReferenceId"])
        return None

    async def _orders(self, ids: list[str]) -> dict[str, dict[str, Any]] | None:
        self.nameless_orders = 0
        try:
            orders = {
                o.id: o.model_dump(mode="json")
                async for o in self.shopline.iter_orders(ids=ids, on_invalid=self._bad_order)
            }
        except ConnectorError as exc:
            self.report.add_error(f"reading {len(ids)} SHOPLINE order(s) failed: {exc}")
            return None
        for order_id, order in list(orders.items()):
            if (why := unusable(order)) is not None:
                self.unreadable_orders[order_id] = why
                del orders[order_id]
        return orders

    async def _existing(
        self, order: dict[str, Any] | None, entries: list[Entry]
    ) -> list[dict[str, Any]] | None:
        """The order's fulfillments, read only when there can be any.

        An order whose every line still has its whole quantity to fulfil has no live fulfillment
        (each one takes at least a unit of some line), so a fresh order's first shipment costs no
        read; linked shipments need their fulfillment's state whatever the order shows.
        """
        if order is None:
            return []
        untouched = all(
            li.get("fulfillable_quantity") is not None
            and int(li["fulfillable_quantity"]) == int(li.get("quantity") or 0)
            for li in order.get("line_items") or []
        )
        if (
            untouched
            and not order.get("fulfillment_status")
            and all(e.link is None for e in entries)
        ):
            return []
        return await self._fulfillments(str(order["id"]))

    async def _fulfillments(self, order_id: str) -> list[dict[str, Any]] | None:
        try:
            found = await self.shopline.list_fulfillments(order_id)
        except ConnectorError as exc:
            log.info("reading the fulfillments of SHOPLINE order %s failed: %s", order_id, exc)
            return None
        return [f.model_dump(mode="json") for f in found]

    # -- the batch ------------------------------------------------------------------------------

    async def _batch(self, ids: list[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i not in self.handled]
        if not ids:
            return
        shipments = await self._shipments(ids)
        if shipments is None:
            self.deferred.update(ids)
            return
        self.handled.update(ids)
        groups: dict[str, list[Entry]] = {}
        for shipment_id in ids:
            shipment = shipments.get(shipment_id)
            if shipment_id in self.unreadable:
                self._unreadable_shipment(shipment_id)
                continue
            if shipment is None and self.nameless_shipments:
                # Perhaps the record Stokly sent without its id: held for the next run.
                self.handled.discard(shipment_id)
                self.deferred.add(shipment_id)
                continue
            if shipment is None:
                log.info("shipment %s of the feed is not in Stokly (deleted?)", shipment_id)
                continue
            self.report.shipments_seen += 1
            order_id = self._order_of(shipment)
            if order_id is None:
                self.report.not_ours += 1
                continue
            link = self.store.links.by_stokly(self.client, LINK, shipment_id)
            if link is not None and _quiet(shipment, link):
                self.report.unchanged += 1
                self._resolve(shipment_id, f"in SHOPLINE as fulfillment {link.shopline_id}")
                continue
            groups.setdefault(order_id, []).append(Entry(shipment, order_id, link))
        if not groups:
            return
        if not self.dry:
            # Another run (a manual pass beside the scheduled one) may be on some of these orders:
            # it finishes them; the feed brings them back here if it does not.
            taken = self.store.leases.acquire(self.client, LEASE, list(groups), self.holder)
            for order_id in [i for i in groups if i not in taken]:
                self.busy.update(entry.id for entry in groups.pop(order_id))
            if not groups:
                return
        orders = await self._orders(list(groups))
        if orders is None:
            for entries in groups.values():
                for entry in entries:
                    self.deferred.add(entry.id)
                    self._pending(entry, None, "SHOPLINE could not be read")
            return
        if self.nameless_orders:
            # Orders not answered may be the ones SHOPLINE sent without an id: held, never taken
            # for deleted (that would raise an exception saying so).
            for order_id in [i for i in groups if i not in orders]:
                for entry in groups.pop(order_id):
                    self.deferred.add(entry.id)
                    self._pending(entry, None, "SHOPLINE sent its order malformed")
            if not groups:
                return
        fulfillments = await asyncio.gather(
            *(self._existing(orders.get(i), entries) for i, entries in groups.items())
        )
        results = await asyncio.gather(
            *(
                self._order(order_id, orders.get(order_id), found, entries)
                for (order_id, entries), found in zip(groups.items(), fulfillments, strict=True)
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and self.crash is None:
                self.crash = result

    async def _order(
        self,
        order_id: str,
        order: dict[str, Any] | None,
        fulfillments: list[dict[str, Any]] | None,
        entries: list[Entry],
    ) -> None:
        entries.sort(key=lambda e: (e.dispatched or datetime.max.replace(tzinfo=UTC), e.id))
        if order is None and order_id in self.unreadable_orders:
            why = self.unreadable_orders[order_id]
            for entry in entries:
                self._poisoned(entry, None, f"its SHOPLINE order {order_id} cannot be read: {why}")
            return
        if order is None:
            for entry in entries:
                if entry.link is None and entry.shipment.get("status") != "cancelled":
                    message = (
                        f"SHOPLINE has no order {order_id} (deleted?) for shipment {entry.id};"
                        " fulfil it by hand if the order still exists under another id"
                    )
                    self._raise(entry, None, "api_rejected", message)
                    self._pending(entry, None, "its SHOPLINE order is missing")
            return
        if fulfillments is None:
            for entry in entries:
                self._defer(entry, order, f"reading the fulfillments of {order.get('name')} failed")
            return
        by_id = {str(f["id"]): f for f in fulfillments}
        linked = self.store.links.get_many(self.client, LINK, list(by_id))
        taken = set(linked)
        failed: set[str] = set()  # shipments whose data failed their handling: one poison each
        # Fulfillments that already stand for unlinked shipments: by tracking for all first,
        # then by quantities (never for a cancelled shipment: those only undo what is surely ours).
        for by in ("tracking", "lines"):
            for entry in entries:
                if entry.link is not None or entry.found is not None or entry.id in failed:
                    continue
                if by == "lines" and entry.shipment.get("status") == "cancelled":
                    continue
                try:
                    found = find_fulfilment(
                        self.mapping, entry.shipment, order, fulfillments, taken, by=by
                    )
                except BAD_DATA as exc:
                    failed.add(entry.id)
                    self._poisoned(entry, order, f"matching it failed: {describe_failure(exc)}")
                    continue
                if found is not None:
                    entry.found = dict(found)
                    taken.add(str(found["id"]))
        for entry in entries:
            if entry.id in failed:
                continue
            try:
                await self._entry(order, by_id, taken, entry)
            except BAD_DATA as exc:  # data no check foresaw: this shipment fails, not the batch
                self._poisoned(entry, order, f"handling it failed: {describe_failure(exc)}")

    async def _entry(
        self, order: dict[str, Any], by_id: dict[str, dict[str, Any]], taken: set[str], e: Entry
    ) -> None:
        if e.link is None and e.found is not None:
            self._recovered(order, e, e.found, "found in SHOPLINE")
        if e.shipment.get("status") == "cancelled":
            if e.link is None:
                self.report.skipped += 1
                self._resolve(e.id, "the shipment was cancelled before it reached SHOPLINE")
                return
            await self._cancelled(order, by_id, e)
            return
        if e.link is not None:
            await self._tracking(order, by_id, e)
            return
        if is_cancelled(order):
            message = (
                f"{order.get('name')} was cancelled in SHOPLINE"
                f" ({order.get('cancel_reason') or 'no reason given'}) but Stokly shipped it"
                f" (shipment {e.id}): stop the parcel or arrange its return"
            )
            self._raise(e, order, "order_changed", message)
            self._pending(e, order, "the SHOPLINE order is cancelled")
            return
        try:
            request = translate_shipment(self.mapping, e.shipment, order)
        except Untranslatable as exc:
            self._raise(e, order, exc.code, exc.message)
            self._pending(e, order, exc.message)
            return
        if (
            request.empty
            and (refunded := refunded_in_shipment(self.mapping, e.shipment, order)) != {}
        ):
            units = ", ".join(f"{sku} x{n}" for sku, n in sorted((refunded or {}).items()))
            what = f"refunded {units} as not shipped" if units else "was refunded"
            self._raise(
                e,
                order,
                "order_changed",
                f"Stokly shipped {order.get('name')} (shipment {e.id}) but SHOPLINE {what} and"
                " has nothing of it left to fulfil: the buyer has both the goods and the refund;"
                " stop the parcel or arrange its return (or charge the buyer), then resolve",
                {"refunded": refunded} if refunded else None,
            )
            return
        if request.empty:
            self.report.already_fulfilled += 1
            self._change(request.summary(), "already fulfilled in SHOPLINE: nothing sent")
            self._resolve(e.id, "SHOPLINE shows every shipped unit fulfilled")
            return
        if self.dry:
            self.report.would_write.append({"action": "create fulfillment", **request.summary()})
            reduce_fulfillable(order, request)
            return
        await self._create(order, by_id, taken, e, request)

    # -- the run --------------------------------------------------------------------------------

    def _holding(self) -> set[str]:
        """Shipments only the feed brings back: deferred ones the next run does not replay for an
        exception, and those another run was working on."""
        replayed = {i for i in self.deferred if self.active.get(i) or i in self.ignored_stale}
        return (self.deferred - replayed) | self.busy

    def _check_crash(self) -> None:
        if self.crash is not None:
            raise self.crash

    async def execute(self) -> FulfilmentReport:
        if self.dry:
            return await self._execute()
        # While the run is alive its leases are renewed, whatever a batch is waiting on.
        try:
            with Heartbeat(lambda: self.store.leases.renew(self.holder), name=self.holder):
                return await self._execute()
        finally:
            self.store.leases.release(self.holder)

    async def _execute(self) -> FulfilmentReport:
        cost = RunCost(self.shopline, self.stokly)
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=LINK, status=ACTIVE
        ):
            self.active.setdefault(record.entity_id, []).append(record)
        for record in self.store.exceptions.list(
            client=self.client, code=STALE, entity_kind=LINK, status="ignored"
        ):
            if self.store.links.by_stokly(self.client, LINK, record.entity_id) is None:
                self.ignored_stale[record.entity_id] = record
        replay = list(dict.fromkeys([*self.active, *self.ignored_stale]))
        if replay and not self.dry:
            for records in self.active.values():
                for record in records:
                    if record.status == "open":
                        self.store.exceptions.mark_retrying(record.id)
        await self._batch(replay)
        self._check_crash()

        stored = self.store.cursors.get(self.client, SYNC)
        position = stored or "0"
        hold: str | None = None
        size = self.settings.batch_size
        while True:
            try:
                page = await self.stokly.get_events(position, size=size, types=SHIPMENT_EVENTS)
            except ConnectorError as exc:
                self.report.feed_ok = False
                self.report.add_error(f"reading the Stokly change feed failed: {exc}")
                break
            self.report.events += len(page.events)
            await self._batch([i for e in page.events if (i := _shipment_id(e))])
            self._check_crash()
            if hold is None:
                holding = self._holding()
                before = position
                for event in page.events:
                    if _shipment_id(event) in holding:
                        hold = before
                        break
                    before = event.cursor
            target = hold if hold is not None else page.cursor
            if not self.dry and target != (stored or "0"):
                self.store.cursors.set(self.client, SYNC, target)
                stored = target
            position = page.cursor
            if self.progress is not None:
                self.progress(
                    self.report.events, self.report.events + (size if page.has_more else 0)
                )
            if not page.has_more or not page.events:
                break
        self.report.cursor = stored
        self.report.deferred = len(self.deferred)
        self.report.busy = len(self.busy)
        return cost.charge(self.report)


async def sync_fulfilment(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    progress: Callable[[int, int], None] | None = None,
    retry: PushRetry | None = None,
    now: datetime | None = None,
) -> FulfilmentReport:
    """One pass of the fulfilment sync for ``mapping``'s client; returns what it did.

    Problems of single shipments are exceptions in the store and rows of the report, never
    raised. Transient failures leave the affected shipments for the next run (the feed's cursor
    waits before them) and appear in ``report.errors``; ``report.ok`` is False then. Only a
    crash — an error this function does not know — propagates; everything written before it is
    linked, so the rerun carries on without duplicates.

    ``retry`` bounds the tries of one SHOPLINE write within the run (`PushRetry`); ``now`` is the
    moment shipments are judged stale at (default: the current time).
    """
    run = _Run(
        mapping,
        shopline,
        stokly,
        store,
        dry=dry_run,
        trigger=trigger,
        progress=progress,
        retry=retry or PushRetry(),
        now=now,
    )
    return await run.execute()
