"""Payments and refunds: SHOPLINE's money on each imported order, recorded in Stokly exactly once.

For a period of days in the client's timezone, one run reads the SHOPLINE orders updated since
the period began and their transactions, keeps the successful ones that moved money on those days
— ``sale``/``capture`` in, ``refund`` out — and, on the Stokly sale order each order was imported
as (the orders sync's ``order`` link), records

* each payment as a Stokly payment [I]: gateway, ``pay_channel_deal_id`` as the gateway
  transaction id (the captures of one authorisation sharing one deal id are told apart by their
  SHOPLINE transaction id: `stokline.sync.finance.payments.translate.movements_of`), ``pay_seq``
  as its reference, amount, currency and when it was paid;
* each refund as a Stokly refund, the credit note [I]: the SHOPLINE refund id, its reason (the
  merchant's note and the adjustment reasons), its lines mapped to the sale order's lines, the
  shipping refunded, the amounts; then its money as a Stokly payment of kind ``refund`` carrying
  the gateway's refund id. The credit note is the document, the refund payment the money that
  left through the gateway: reconciliation reads the second (`stokline.sync.finance.payouts.reconcile`).

Exactly once: a record linked in the store is never written again; before writing, what Stokly
holds for a batch of orders is read in a few list calls (payments by gateway transaction id,
refunds by sale order) and a record found there — same kind and transaction id on the same sale
order, or same SHOPLINE refund id — is linked instead. So a rerun, a lost state store, or a
timeout whose request did land writes nothing twice; Stokly also refuses a duplicate with a 409,
after which the sale order is read again and the record found there linked. A refund's money is
recorded only after its credit note, so a link on the money means both are done.

Money that cannot be recorded yet is kept in a pending list in the store (cursor ``payments``/
``pending``) and looked at again by every later run, whatever its period: orders not yet imported
(while the orders sync may still import them) and writes held back by a transient failure. An
unmapped gateway, or a record Stokly refuses, becomes an exception on the payment or refund,
owned per the operating model, and is replayed by every run until it is recorded. A dry run reads
both systems and the store and writes nothing anywhere. Amounts are ``Decimal`` throughout.

This module is the use case: exactly once, the pending list, the exceptions. SHOPLINE's money is
read by `stokline.sync.finance.read` (shared with the ledger and the payout reconciliation; the finance
flow reads it once and passes it in as ``money``), translated into Stokly's records by
`stokline.sync.finance.payments.translate`, and counted in `stokline.sync.finance.payments.report`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from stokline.config import Mapping
from stokline.config.models import Gateway
from stokline.connectors import (
    ApiError,
    ConnectorError,
    ResponseFormatError,
    ShoplineClient,
    StoklyClient,
    is_transient,
)
from stokline.connectors.shopline.models import Order, Refund
from stokline.connectors.stokly.filters import one_of
from stokline.connectors.stokly.invented import Payment
from stokline.connectors.stokly.invented import Refund as StoklyRefund
from stokline.connectors.stokly.models import SaleOrderItem
from stokline.mapping.translate import Untranslatable, resolve_gateway
from stokline.store import Store
from stokline.store.exceptions import ACTIVE, ExceptionRecord
from stokline.sync.finance.payments.report import PaymentsReport
from stokline.sync.finance.payments.translate import (
    Movement,
    Period,
    cents,
    group_by_refund,
    payment_payload,
    refund_payload,
    refund_reason,
)
from stokline.sync.finance.read import (
    ORDER_LINK,
    ShoplineMoney,
    limited,
    order_refunds,
    read_shopline_money,
    widen,
)
from stokline.sync.guards import BAD_DATA, describe_failure, printable
from stokline.sync.orders.translate import is_importable
from stokline.sync.report import mask
from stokline.sync.run import RunCost, SyncRun

__all__ = ["PaymentsReport", "sync_payments"]

log = logging.getLogger("stokline.sync.payments")

SYNC = "payments"
PAYMENT_LINK = "payment"  # SHOPLINE transaction id → Stokly paymentId (payments and refund money)
REFUND_LINK = "refund"  # SHOPLINE refund id → Stokly refundId (the credit note)
MONEY = "order_money"  # exceptions on a SHOPLINE order whose money SHOPLINE sent malformed
RAW_KEPT = 4000  # characters of a malformed record kept in its exception, for replay by hand
ACTOR = "stokline.sync.payments"
ID_BATCH = 100  # orders per batch, and ids per Stokly look-up


# -- the run --------------------------------------------------------------------------------------


class _Deferred(Exception):
    """A write that must wait for the next run (transient failure or unclear outcome)."""


@dataclass
class _OrderContext:
    """One linked order while its money is recorded, with what Stokly holds for it."""

    order: Order
    sale_order_id: str
    payments: dict[tuple[str, str], Payment] | None = None
    refunds: dict[str, StoklyRefund] | None = None
    lines: list[SaleOrderItem] | None = None


class _MalformedRefunds(Exception):
    """SHOPLINE answered an order's refunds in a shape no model accepts (not retried)."""


@dataclass(eq=False, repr=False)
class _Run(SyncRun):
    """One pass of the payments sync; `sync_payments` is its public face."""

    period: Period
    shared: ShoplineMoney | None = None

    def __post_init__(self) -> None:
        self.money: ShoplineMoney | None = None
        self.report = PaymentsReport(
            client=self.client,
            trigger=self.trigger,
            dry_run=self.dry,
            start=self.period.start,
            end=self.period.end,
        )
        self.active: dict[tuple[str, str], list[ExceptionRecord]] = {}
        self.pending: dict[str, str] = {}
        self.keep: dict[str, str] = {}
        self.deferred: set[str] = set()
        # What Stokly holds, by sale order: read in bulk per batch (`_prefetch`).
        self.known_payments: dict[str, dict[tuple[str, str], Payment]] = {}
        self.known_refunds: dict[str, dict[str, StoklyRefund]] = {}

    # -- state --------------------------------------------------------------------------------

    def _load_pending(self) -> None:
        raw = self.store.cursors.get(self.client, SYNC, name="pending")
        try:
            loaded = json.loads(raw) if raw else {}
        except ValueError:
            log.warning("the pending list of the payments sync is not JSON; starting afresh")
            loaded = {}
        self.pending = (
            {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        )

    def _save_pending(self) -> None:
        if not self.dry:
            self.store.cursors.set(
                self.client, SYNC, json.dumps(dict(sorted(self.keep.items()))), name="pending"
            )

    def _hold(self, order_id: str) -> None:
        self.keep[order_id] = self.pending.get(order_id) or datetime.now(UTC).date().isoformat()

    def _load_exceptions(self) -> set[str]:
        """Orders whose payments or refunds have open exceptions: replayed whatever their day."""
        orders: set[str] = set()
        for kind in (PAYMENT_LINK, REFUND_LINK, MONEY):
            for record in self.store.exceptions.list(
                client=self.client, entity_kind=kind, status=ACTIVE
            ):
                self.active.setdefault((kind, record.entity_id), []).append(record)
                payload = record.payload if isinstance(record.payload, dict) else {}
                if payload.get("order_id"):
                    orders.add(str(payload["order_id"]))
                if kind == MONEY:
                    orders.add(record.entity_id)
                if not self.dry and record.status == "open":
                    self.store.exceptions.mark_retrying(record.id)
        return orders

    # -- exceptions ---------------------------------------------------------------------------

    def _raise(self, order: Order, kind: str, entity_id: str, exc: Untranslatable) -> None:
        team = self.mapping.operating_model.owner_of(exc.code)
        entity = f"{kind} {entity_id} of order {order.name or order.id}"
        key = (kind, entity_id)
        if self.dry:
            self.report.add_exception(exc.code, team, entity, exc.message)
            return
        before = {r.code for r in self.active.get(key, [])}
        record = self.store.exceptions.raise_(
            self.client,
            exc.code,
            kind,
            entity_id,
            exc.message,
            team=team,
            payload={"order": order.name, "order_id": order.id},
        )
        if exc.code not in before and record.status == "open":
            self.report.exceptions_opened += 1
        self.active[key] = [record]
        self.report.add_exception(exc.code, team, entity, exc.message, record.status)

    def _malformed(self, order_id: str, raw: Any, why: str, part: str = "order") -> None:
        """One ``poison_message`` for an order whose money SHOPLINE sent malformed; what it
        sent is kept (cut to `RAW_KEPT` characters) and the order is read again next run.
        ``part``: what was malformed — the order or its transactions (closed once they read), or
        its refunds (closed once the order's money is recorded)."""
        team = self.mapping.operating_model.owner_of("poison_message")
        name = raw.get("name") if isinstance(raw, dict) else None
        entity = f"order {printable(name)} ({printable(order_id)})" if name else f"order {order_id}"
        message = printable(f"its payments and refunds were not recorded: {why}", 600)
        if self.dry:
            self.report.add_exception("poison_message", team, entity, message)
            return
        before = {r.code for r in self.active.get((MONEY, order_id), [])}
        sent = printable(json.dumps(raw, default=str), RAW_KEPT) if raw is not None else None
        record = self.store.exceptions.raise_(
            self.client,
            "poison_message",
            MONEY,
            order_id,
            message,
            team=team,
            payload={"order": name, "order_id": order_id, "sent": sent, "part": part},
        )
        if "poison_message" not in before and record.status == "open":
            self.report.exceptions_opened += 1
        self.active[(MONEY, order_id)] = [record]
        self.report.add_exception("poison_message", team, entity, message, record.status)

    def _malformed_part(self, order_id: str) -> str:
        records = self.active.get((MONEY, order_id), [])
        payload = records[0].payload if records and isinstance(records[0].payload, dict) else {}
        return str(payload.get("part") or "order")

    def _resolve(self, kind: str, entity_id: str, note: str) -> None:
        for record in self.active.pop((kind, entity_id), []):
            self.report.add_exception(
                record.code, record.team, f"{kind} {entity_id}", note, "resolved"
            )
            if not self.dry and self.store.exceptions.resolve(record.id, note):
                self.report.exceptions_resolved += 1

    def _gateway(
        self, order: Order, kind: str, entity_id: str, movement: Movement
    ) -> Gateway | None:
        try:
            return resolve_gateway(self.mapping, movement.gateway)
        except Untranslatable as exc:
            self._raise(order, kind, entity_id, exc)
            return None

    # -- Stokly reads ------------------------------------------------------------------------

    async def _prefetch(self, batch: list[tuple[Order, list[Movement], str]]) -> dict[str, Any]:
        """What Stokly already holds for a batch of orders, in a few list calls, not one per order.

        Payments are looked up by the gateway transaction ids not yet linked, refunds by the
        sale orders with refund money not yet linked. Returns the store's payment links.
        """
        linked = self.store.links.get_many(
            self.client, PAYMENT_LINK, [m.transaction_id for _, moves, _ in batch for m in moves]
        )
        todo = [
            (m, sale) for _, moves, sale in batch for m in moves if m.transaction_id not in linked
        ]
        ids = sorted({m.gateway_transaction_id for m, _ in todo})
        for first in range(0, len(ids), ID_BATCH):
            wanted = one_of("transactionId", ids[first : first + ID_BATCH])
            async for payment in self.stokly.iter_payments(filter=wanted):
                known = self.known_payments.setdefault(payment.saleOrderId, {})
                known[(payment.kind, payment.transactionId)] = payment
        sales = sorted({sale for m, sale in todo if m.kind == "refund"})
        for first in range(0, len(sales), ID_BATCH):
            wanted = one_of("saleOrderId", sales[first : first + ID_BATCH])
            async for refund in self.stokly.iter_refunds(filter=wanted):
                if refund.sourceReferenceId:
                    known_refunds = self.known_refunds.setdefault(refund.saleOrderId, {})
                    known_refunds[refund.sourceReferenceId] = refund
        return linked

    async def _stokly_payments(self, ctx: _OrderContext, fresh: bool = False) -> dict:
        """The sale order's payment records by (kind, transaction id); ``fresh`` reads again."""
        if fresh:
            ctx.payments = {
                (p.kind, p.transactionId): p
                async for p in self.stokly.iter_sale_order_payments(ctx.sale_order_id)
            }
        elif ctx.payments is None:
            ctx.payments = dict(self.known_payments.get(ctx.sale_order_id, {}))
        return ctx.payments

    async def _stokly_refunds(self, ctx: _OrderContext, fresh: bool = False) -> dict:
        """The sale order's refunds by SHOPLINE refund id; ``fresh`` reads again."""
        if fresh:
            ctx.refunds = {
                r.sourceReferenceId: r
                async for r in self.stokly.iter_sale_order_refunds(ctx.sale_order_id)
                if r.sourceReferenceId
            }
        elif ctx.refunds is None:
            ctx.refunds = dict(self.known_refunds.get(ctx.sale_order_id, {}))
        return ctx.refunds

    async def _stokly_lines(self, ctx: _OrderContext) -> list[SaleOrderItem]:
        if ctx.lines is None:
            ctx.lines = await self.stokly.get_sale_order_items(ctx.sale_order_id)
        return ctx.lines

    # -- writes -------------------------------------------------------------------------------

    async def _create(
        self,
        order: Order,
        kind: str,
        entity_id: str,
        what: str,
        create: Callable[[], Awaitable[Any]],
        find: Callable[[], Awaitable[str | None]],
    ) -> str | None:
        """Write one record; its Stokly id, or None (an exception was raised). `_Deferred` when
        the outcome must wait for the next run — which reads Stokly before writing again."""
        try:
            created = await create()
        except ApiError as exc:
            if exc.status == 409:  # Stokly has it: the duplicate check is Stokly's own
                found = await find()
                if found:
                    return found
            if is_transient(exc):
                self.report.add_error(f"recording {what} failed for now: {exc}")
                raise _Deferred from exc
            self._raise(
                order,
                kind,
                entity_id,
                Untranslatable("api_rejected", f"Stokly refused {what}: {exc.api_message or exc}"),
            )
            return None
        except ConnectorError as exc:
            self.report.add_error(f"recording {what} had no clear answer: {exc}")
            raise _Deferred from exc
        return str(created.id)

    def _remember(
        self, kind: str, shopline_id: str, stokly_id: str, data: dict[str, Any], action: str | None
    ) -> None:
        self.store.links.put(self.client, kind, shopline_id, stokly_id, data)
        if action:
            self.store.audit.record(
                self.client, ACTOR, "stokly", action, f"{kind}:{shopline_id}", stokly_id, data
            )

    async def _record_payment(
        self, ctx: _OrderContext, movement: Movement, gateway: Gateway, refund_id: str | None = None
    ) -> bool:
        """Record one movement as a Stokly payment record; True once Stokly has it."""
        order = ctx.order
        key = (movement.kind, movement.gateway_transaction_id)
        data = {
            "order_id": order.id,
            "order": order.name,
            "sale_order": ctx.sale_order_id,
            "kind": movement.kind,
            "gateway": movement.gateway,
            "transaction_id": movement.gateway_transaction_id,
            "amount": str(cents(movement.amount)),
            "currency": movement.currency,
            "day": movement.day.isoformat() if movement.day else None,
            **({"refund_id": refund_id} if refund_id else {}),
        }
        existing = (await self._stokly_payments(ctx)).get(key)
        if existing is not None:
            self.report.already_recorded += 1
            if not self.dry:
                self._remember(
                    PAYMENT_LINK, movement.transaction_id, existing.paymentId, data, None
                )
            self._resolve(PAYMENT_LINK, movement.transaction_id, "found in Stokly")
            return True
        record = "payment" if movement.kind == "payment" else "refund payment"
        self.report.add_record(
            order.name or order.id,
            record,
            movement.gateway,
            movement.gateway_transaction_id,
            movement.amount,
            movement.currency,
            movement.day,
        )
        if self.dry:
            return True

        async def find() -> str | None:
            found = (await self._stokly_payments(ctx, fresh=True)).get(key)
            return found.paymentId if found else None

        payment_id = await self._create(
            order,
            PAYMENT_LINK,
            movement.transaction_id,
            f"the {record} {movement.gateway_transaction_id} of {order.name or order.id}",
            lambda: self.stokly.create_payment(
                ctx.sale_order_id, payment_payload(movement, gateway, refund_id=refund_id)
            ),
            find,
        )
        if payment_id is None:
            return False
        self._remember(
            PAYMENT_LINK,
            movement.transaction_id,
            payment_id,
            data,
            f"record_{record.replace(' ', '_')}",
        )
        if movement.kind == "payment":
            self.report.payments_recorded += 1
        else:
            self.report.refund_payments_recorded += 1
        self._resolve(
            PAYMENT_LINK, movement.transaction_id, f"recorded as Stokly payment {payment_id}"
        )
        return True

    async def _record_refund(
        self,
        ctx: _OrderContext,
        refund: Refund,
        movements: list[Movement],
        every: Sequence[Refund] = (),
    ) -> None:
        """The credit note of one SHOPLINE refund, then its money (never the money alone)."""
        order = ctx.order
        money: list[tuple[Movement, Gateway]] = []
        for movement in movements:
            gateway = self._gateway(order, REFUND_LINK, refund.id, movement)
            if gateway is None:
                return
            money.append((movement, gateway))
        if self.store.links.get(self.client, REFUND_LINK, refund.id) is None:
            existing = (await self._stokly_refunds(ctx)).get(refund.id)
            data = {
                "order_id": order.id,
                "order": order.name,
                "sale_order": ctx.sale_order_id,
                "amount": str(cents(sum((m.amount for m in movements), Decimal(0)))),
                "reason": mask(refund_reason(refund) or ""),
            }
            if existing is not None:
                self.report.already_recorded += 1
                if not self.dry:
                    self._remember(REFUND_LINK, refund.id, existing.refundId, data, None)
            else:
                payload = refund_payload(
                    self.mapping, order, refund, await self._stokly_lines(ctx), money, every
                )
                self.report.add_record(
                    order.name or order.id,
                    "credit note",
                    ", ".join(sorted({m.gateway for m in movements})),
                    refund.id,
                    payload["amount"],
                    payload["currency"],
                    movements[0].day,
                )
                if not self.dry:

                    async def find() -> str | None:
                        found = (await self._stokly_refunds(ctx, fresh=True)).get(refund.id)
                        return found.refundId if found else None

                    refund_id = await self._create(
                        order,
                        REFUND_LINK,
                        refund.id,
                        f"the refund {refund.id} of {order.name or order.id}",
                        lambda: self.stokly.create_refund(ctx.sale_order_id, payload),
                        find,
                    )
                    if refund_id is None:
                        return
                    self._remember(REFUND_LINK, refund.id, refund_id, data, "record_credit_note")
                    self.report.refunds_recorded += 1
            self._resolve(REFUND_LINK, refund.id, "credit note recorded in Stokly")
        for movement, gateway in money:
            await self._record_payment(ctx, movement, gateway, refund_id=refund.id)

    async def _order(
        self, order: Order, movements: list[Movement], sale_order_id: str, linked: dict
    ) -> None:
        ctx = _OrderContext(order, sale_order_id)
        todo = [m for m in movements if m.transaction_id not in linked]
        self.report.already_recorded += len(movements) - len(todo)
        try:
            for movement in (m for m in todo if m.kind == "payment"):
                gateway = self._gateway(order, PAYMENT_LINK, movement.transaction_id, movement)
                if gateway is not None:
                    await self._record_payment(ctx, movement, gateway)
            refund_moves = [m for m in todo if m.kind == "refund"]
            if refund_moves:
                await self._refunds(ctx, refund_moves)
        except _Deferred:
            self._defer(order.id)
        except _MalformedRefunds as exc:  # SHOPLINE's refunds in a shape no model accepts
            self._malformed(order.id, None, f"its refunds are malformed: {exc}", "refunds")
        except ConnectorError as exc:  # a read of Stokly or SHOPLINE failed: all of it waits
            self.report.add_error(f"reading the records of {order.name or order.id} failed: {exc}")
            self._defer(order.id)
        except BAD_DATA as exc:  # one order's data no check foresaw: it waits, the run goes on
            why = describe_failure(exc)
            self.report.add_error(f"the records of {order.name or order.id} failed: {why}")
            self._defer(order.id)
        else:
            if self._malformed_part(order.id) == "refunds" and (MONEY, order.id) in self.active:
                self._resolve(MONEY, order.id, "its refunds read and its money is recorded")

    async def _refunds(self, ctx: _OrderContext, moves: list[Movement]) -> None:
        try:
            every = await order_refunds(self.shopline, ctx.order.id, self.money)
            grouped, loose = group_by_refund(every, moves)
        except ResponseFormatError as exc:
            if is_transient(exc):  # not SHOPLINE's answer (an HTML page, cut-off JSON): it waits
                raise
            raise _MalformedRefunds(str(exc)) from None
        for movement in loose:  # refund money SHOPLINE shows under no refund: record the money
            gateway = self._gateway(ctx.order, PAYMENT_LINK, movement.transaction_id, movement)
            if gateway is not None:
                await self._record_payment(ctx, movement, gateway)
        for refund, refund_moves in grouped:
            await self._record_refund(ctx, refund, refund_moves, every)

    def _defer(self, order_id: str) -> None:
        if order_id not in self.deferred:
            self.deferred.add(order_id)
            self.report.deferred += 1
        self._hold(order_id)

    def _importable(self, order: Order) -> bool:
        """Whether the orders sync may still import ``order`` (so its money should wait)."""
        cancelled = order.status == "cancelled" or order.cancelled_at is not None
        return not cancelled and is_importable(
            order.financial_status, self.mapping.syncs.orders.import_when
        )

    async def execute(self) -> PaymentsReport:
        cost = RunCost(self.shopline, self.stokly)
        self._load_pending()
        replay = self._load_exceptions()
        also = [*self.pending, *replay]
        try:
            if self.shared is None:
                money = await read_shopline_money(self.shopline, self.period, also=also)
            else:  # the period's money read once for the finance run; the pending orders on top
                money = await widen(self.shopline, self.shared, also)
        except ConnectorError as exc:
            self.report.add_error(f"reading SHOPLINE's orders failed: {exc}")
            return cost.charge(self.report)  # the pending list stays as it was
        self.money = money
        for order_id, (raw, why) in money.malformed.items():
            self._malformed(order_id, raw, why)
        for why in money.unidentified:
            self.report.add_error(why)
        for _, order_id in [k for k in self.active if k[0] == MONEY]:
            if self._malformed_part(order_id) == "refunds":
                continue  # closed once the order's refunds read and its money is recorded
            if order_id in money.transactions and order_id not in money.malformed:
                self._resolve(MONEY, order_id, "SHOPLINE's record of it reads now")
        for order_id, why in money.unread.items():
            order = money.orders[order_id]
            self.report.add_error(
                f"reading the transactions of {order.name or order_id} failed: {why}"
            )
            self._defer(order_id)
        ids = list(money.movements)
        self.report.orders_seen = len(ids)
        links = self.store.links.get_many(self.client, ORDER_LINK, ids)
        ready: list[tuple[Order, list[Movement], str]] = []
        for order_id in ids:
            order = money.orders[order_id]
            link = links.get(order_id)
            if link is not None:
                ready.append((order, money.movements[order_id], link.stokly_id))
            elif self._importable(order):
                self.report.waiting_for_import += 1
                self._hold(order_id)
            else:
                self.report.not_in_stokly += 1
        for first in range(0, len(ready), ID_BATCH):
            chunk = ready[first : first + ID_BATCH]
            try:
                linked = await self._prefetch(chunk)
            except ConnectorError as exc:
                self.report.add_error(f"reading what Stokly already holds failed: {exc}")
                for order, _, _ in chunk:
                    self._defer(order.id)
            else:
                await limited(self._order(o, m, s, linked) for o, m, s in chunk)
            if self.progress is not None:
                self.progress(first + len(chunk), len(ready))
        self._save_pending()
        return cost.charge(self.report)


async def sync_payments(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    start: date,
    end: date,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    money: ShoplineMoney | None = None,
) -> PaymentsReport:
    """Record the SHOPLINE payments and refunds of ``start``..``end`` (client days) in Stokly.

    ``money`` is SHOPLINE's money of the same period already read (`read_shopline_money`, as the
    finance flow shares one read between its steps); without it, it is read here. Either way the
    pending orders and those with open exceptions are read on top, whatever their day, and the
    refunds ``money`` lacks are read when needed. ``money`` itself is never changed.

    Exceptions (an unmapped gateway, a record Stokly refuses) are recorded in the store and
    listed in the report, never raised. Transient failures keep the affected orders pending for
    the next run and appear in ``report.errors``; ``report.ok`` is False then. Raises
    ``ValueError`` for a period that ends before it starts, or that ``money`` was not read for.
    """
    period = Period.of(mapping, start, end)
    if money is not None:
        money.check(period)
    run = _Run(mapping, shopline, stokly, store, dry_run, "finance", progress, period, money)
    return await run.execute()
