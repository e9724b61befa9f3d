"""The work of one orders run, read in: webhook events, the sweep, replays; and handed back.

Candidates come from four places: the webhook inbox (events claimed row by row, ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so concurrent runs split them), a sweep of the SHOPLINE orders
updated since the stored cursor minus the look-back window, the orders whose exceptions are
open or marked for retry, and the orders a run that died had leased (their leases expired and
nobody took them: every pass takes them over, the inbox-only pass of the watcher included). The
inbox's orders are re-read from SHOPLINE by id for their current state; the webhook's own copy
stands in only when SHOPLINE cannot be read, never for an order SHOPLINE answers without (that
delivery becomes an ``api_rejected`` exception, "SHOPLINE has no order ...", and is settled). Every order is leased to the run before it is worked on
(`stokline.store.leases`); one another run holds is left to it, with its events. A delivery
is validated into the order model like a record of an API page: a malformed delivery or order
becomes a ``poison_message``. At the end, the events of settled
orders are done and the others go back to the inbox, and the sweep cursor moves only as far as
the oldest order still unsettled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from stokline.connectors import ConnectorError, InvalidRecord
from stokline.connectors.shopline.models import Order
from stokline.mapping.translate import Untranslatable
from stokline.store.exceptions import ACTIVE, ExceptionRecord
from stokline.store.inbox import InboxEvent
from stokline.sync.guards import printable, unusable
from stokline.sync.orders.run import LINK, SELF_HEALING, SYNC, OrdersRun

__all__ = ["CLAIM_PAGE", "ORDER_TOPICS", "OrderIntake"]

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

CLAIM_PAGE = 500


def _decode(body: bytes) -> tuple[Order | None, bool, str]:
    """A delivery's body read into the SHOPLINE order model: (order, carries lines, why not).

    A signed delivery comes from SHOPLINE but may still be malformed; like a record of an API
    page, it is validated into `Order` here, before any step of the run sees it. A bare id (a
    topic such as ``orders/delete`` may send only that) is an order with no lines to stand in.
    """
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None, False, "it is not JSON"
    if not isinstance(data, dict) or not data.get("id") or not isinstance(data["id"], str | int):
        return None, False, "it is not an order object with an id"
    if isinstance(data["id"], int) and not isinstance(data["id"], bool):
        data["id"] = str(data["id"])  # an id sent as a JSON number is the same order
    try:
        order = Order.model_validate(data)
    except ValidationError as exc:
        return None, False, f"it does not fit a SHOPLINE order: {_first_error(exc)}"
    return order, "line_items" in data, ""


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ())) or "the body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return printable(f"{where}: {first.get('msg', 'invalid')}{more}", 200)


def _as_dict(order: Order) -> dict[str, Any]:
    return order.model_dump()


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


class OrderIntake(OrdersRun):
    """The reading side of an orders run: what to work on, and what goes back afterwards."""

    # -- gathering ------------------------------------------------------------------------------

    def _since(self, sweep_started: datetime) -> datetime:
        """Where the sweep starts: the stored cursor (else now) minus the look-back window."""
        cursor = self.store.cursors.get(self.client, SYNC)
        return (
            datetime.fromisoformat(cursor) if cursor else sweep_started
        ) - self.settings.lookback

    def _take_events(self) -> list[InboxEvent]:
        if self.dry:
            return self.store.inbox.pending(self.client, topics=ORDER_TOPICS)
        taken: list[InboxEvent] = []
        while batch := self.store.inbox.claim(
            self.client, self.worker, CLAIM_PAGE, topics=ORDER_TOPICS
        ):
            taken.extend(batch)
            self.claims.update(e.claimed_by for e in batch if e.claimed_by)
            if len(batch) < CLAIM_PAGE:
                break
        return taken

    def _read_events(self) -> dict[str, dict[str, Any]]:
        """Order bodies from the inbox by order id (the newest delivery of each order wins)."""
        bodies: dict[str, dict[str, Any]] = {}
        for event in self._take_events():
            model, with_lines, why = _decode(event.body)
            if model is None:
                self._poison(event, why)
                continue
            order = _as_dict(model)
            order_id = model.id
            self.events.setdefault(order_id, []).append(event)
            previous = bodies.get(order_id)
            newer = previous is None or (_updated(order) or datetime.min.replace(tzinfo=UTC)) >= (
                _updated(previous) or datetime.min.replace(tzinfo=UTC)
            )
            if newer and with_lines:
                bodies[order_id] = order
        # Another run may hold one of these orders (it swept it, or claimed another of its events
        # at the same moment): its events go back to the inbox for the next run, untouched.
        for order_id in self._held_elsewhere(list(self.events)):
            for event in self.events.pop(order_id):
                self.store.inbox.release(event.id, "the order was being handled by another run")
            self.busy[order_id] = bodies.pop(order_id, None) or {"id": order_id}
        return bodies

    def _renew(self) -> None:
        """A beat of the run's heartbeat: what it holds stays its own (another thread)."""
        self.store.leases.renew(self.holder)
        self.store.inbox.renew(sorted(self.claims))

    def _held_elsewhere(self, order_ids: list[str]) -> set[str]:
        """Lease ``order_ids`` to this run; returns those another run holds."""
        if self.dry or not order_ids:
            return set()
        taken = self.store.leases.acquire(self.client, LINK, order_ids, self.holder)
        return set(order_ids) - taken

    def _poison(self, event: InboxEvent, why: str) -> None:
        """A delivery no step can work on: one exception; its raw body stays in the inbox."""
        message = f"a signed {event.topic} delivery was set aside: {why}"
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
            payload={"topic": event.topic, "bytes": len(event.body), "inbox_id": event.id},
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

    def _orphans(self) -> list[str]:
        """Orders a run that died had leased: taken now, so that they wait no longer than their
        lease's expiry (about a minute), not for the next sweep; released when this run ends."""
        if self.dry:
            return []
        orphaned = self.store.leases.orphaned(self.client, LINK)
        if not orphaned:
            return []
        taken = self.store.leases.acquire(self.client, LINK, orphaned, self.holder)
        log.info("%d order(s) of a run that died are taken over", len(taken))
        return sorted(taken)

    async def _candidates(self, since: datetime) -> dict[str, dict[str, Any]]:
        bodies = self._read_events()
        orphans = self._orphans()
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=LINK, status=ACTIVE
        ):
            self.active.setdefault(record.entity_id, []).append(record)
        replay = [i for i, r in self.active.items() if self.sweep and self._replayable(r)]
        swept = await self._sweep(since) if self.sweep else None
        orders = dict(swept or {})
        fetched = await self._fetch(
            i for i in [*bodies, *replay, *orphans] if i not in orders and i not in self.unreadable
        )
        # SHOPLINE cannot be read: the webhook's own copy of an order is the next best; orders
        # replayed for their exceptions wait for the next run (their exceptions stay open).
        # SHOPLINE read and answering without an order: it does not have it (deleted, or a
        # delivery naming an order it never had) — the delivery's copy never stands in for it.
        orders.update(fetched or {})
        missing = {
            i
            for i in replay
            if fetched is not None and i not in orders and i not in self.unreadable
        }
        denied: list[str] = []
        for order_id, body in bodies.items():
            if order_id in self.unreadable or order_id in orders:
                continue
            if fetched is None:
                orders[order_id] = body
            else:
                denied.append(order_id)
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
                if order_id in self.busy or order_id in missing:
                    continue
                for record in self.active[order_id]:
                    if record.status == "open":
                        self.store.exceptions.mark_retrying(record.id)
        for order_id, (raw, why) in self.unreadable.items():
            self._unreadable(order_id, raw, why)
        for order_id in denied:
            self._denied(order_id, bodies[order_id].get("name"))
        for order_id in sorted(missing - set(denied) - set(self.busy)):
            records = self.active.get(order_id, [])
            name = next((r.order for r in records if r.order), None)
            self._denied(order_id, name)
        return orders

    def _denied(self, order_id: str, name: Any) -> None:
        """An order SHOPLINE answers without while it is up (a delivery named it, or its open
        exception was replayed): one ``api_rejected`` exception, refreshed by every run that
        finds it missing; its events are settled (done) with the run. A deletion's own
        delivery is only logged."""
        topics = sorted({e.topic for e in self.events.get(order_id, [])})
        if topics == ["orders/delete"]:
            return
        if topics:
            said = f"a signed {', '.join(topics)} delivery named it, but SHOPLINE answers without"
            said += " it, so it was not imported from the delivery's own copy"
        else:
            said = "SHOPLINE answers without it, so it cannot be imported"
        message = printable(
            f"SHOPLINE has no order {order_id} (deleted?): {said}; check the order in the"
            " SHOPLINE admin (the next sweep imports it if it appears)",
            600,
        )
        stub = {"id": printable(order_id), "name": printable(str(name)) if name else None}
        self._raise(stub, Untranslatable("api_rejected", message), {"topics": topics})

    def _unreadable(self, order_id: str, raw: Any, why: str) -> None:
        """One ``poison_message`` for an order no step can work on; replayed from SHOPLINE."""
        name = raw.get("name") if isinstance(raw, dict) else None
        stub = {"id": printable(order_id), "name": printable(name) if name else None}
        message = printable(f"the order cannot be read, so it was not imported: {why}", 600)
        self._raise(stub, Untranslatable("poison_message", message), {"unreadable": True})

    @staticmethod
    def _replayable(records: list[ExceptionRecord]) -> bool:
        return any(r.code in SELF_HEALING for r in records)

    # -- handing back ---------------------------------------------------------------------------

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

    def _advance_cursor(self, sweep_started: datetime) -> None:
        """After a sweep: the cursor moves to its start, or to the oldest order still unsettled."""
        if self.sweep and self.report.sweep_ok and not self.dry:
            # Orders deferred, or left to another run that may yet defer them, hold the cursor.
            busy = [o for o in self.busy.values() if _updated(o) is not None]
            unsettled = [*self.deferred.values(), *busy]
            held = [u for o in unsettled if (u := _updated(o)) is not None]
            value = min([sweep_started, *held])
            if not any(_updated(o) is None for o in unsettled):
                self.store.cursors.set(self.client, SYNC, value.isoformat())
