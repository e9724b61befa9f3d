"""SHOPLINE's money for a period, read once the same way for every use case that needs it.

The payments sync records it in Stokly, the ledger pass turns it into journals and the payout
reconciliation sets it beside Stokly's records: all three must see exactly the same movements, so
all three read them here — and the finance flow reads them once per run and hands the one
`ShoplineMoney` to each (``money=``), instead of each reading SHOPLINE again. SHOPLINE has no
payout or settlement endpoint; the money is in the orders' transactions, and a refund's document
(lines, reason, shipping, tax) in the order's refunds. What a transaction means is
`stokline.sync.finance.payments.translate`'s and `stokline.sync.finance.ledger.translate`'s business; this module only reads,
as few calls as it can:

* one ``orders.json`` page per 100 orders updated since the period began (the orders carry their
  lines, tax lines, shipping lines and discounts: the journals need no other order read);
* one ``transactions.json`` per order that has taken money;
* with ``refunds=True`` (the ledger's need), one ``refunds.json`` per order with refund money on
  the period's days — not for every refunded order.

A use case given a `ShoplineMoney` reads only what it needs beyond it (`widen` for orders outside
the period, `with_refunds` for refunds not read), into a copy: the shared read is never changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from stokline.connectors import (
    ConnectorError,
    InvalidRecord,
    ResponseFormatError,
    ShoplineClient,
    is_transient,
)
from stokline.connectors.shopline.models import Order, Refund, Transaction
from stokline.sync.clients import api_calls
from stokline.sync.finance.payments.translate import (
    Movement,
    Period,
    movements_of,
)

__all__ = [
    "CONCURRENCY",
    "NO_MONEY_STATUSES",
    "ORDER_LINK",
    "Period",
    "ShoplineMoney",
    "limited",
    "order_refunds",
    "read_shopline_money",
    "takes_money",
    "widen",
    "with_refunds",
]

ORDER_LINK = "order"  # written by the orders sync: SHOPLINE order id → Stokly sale order id
CONCURRENCY = 8

NO_MONEY_STATUSES = frozenset({"unpaid", "pending", "authorized", "voided"})
"""Financial statuses of an order that has moved no money (no transaction worth reading)."""

T = TypeVar("T")


def takes_money(order: Order) -> bool:
    """Whether the order may have moved money (an unknown status is read, to be safe)."""
    return (order.financial_status or "").lower() not in NO_MONEY_STATUSES


@dataclass
class ShoplineMoney:
    """SHOPLINE orders of a period and the money they moved, as read from SHOPLINE.

    ``orders``: every order read (updated since the period began, plus those ``also`` names).
    ``transactions``: every transaction of the orders that took money, whatever their day.
    ``movements``: the money those moved on the period's days (on every day for ``also``).
    ``refunds``: the refunds of the orders with refund money on the period's days, where they
    were read (``refunds=True``). ``unread`` / ``refunds_unread``: order id → why its
    transactions / refunds could not be read (this time: they are read again next time).
    ``malformed``: order id → (what SHOPLINE sent, why) for an order, or the transactions of an
    order, that SHOPLINE sent in a shape no model accepts — set aside at the boundary so that the
    other orders go on; ``unidentified``: why, for malformed orders without a usable id.
    ``calls``: the SHOPLINE requests the read took.
    """

    period: Period
    orders: dict[str, Order] = field(default_factory=dict)
    transactions: dict[str, list[Transaction]] = field(default_factory=dict)
    movements: dict[str, list[Movement]] = field(default_factory=dict)
    refunds: dict[str, list[Refund]] = field(default_factory=dict)
    unread: dict[str, str] = field(default_factory=dict)
    refunds_unread: dict[str, str] = field(default_factory=dict)
    malformed: dict[str, tuple[Any, str]] = field(default_factory=dict)
    unidentified: list[str] = field(default_factory=list)
    also: frozenset[str] = frozenset()
    calls: int = 0

    def all(self) -> list[Movement]:
        return [m for moves in self.movements.values() for m in moves]

    def check(self, period: Period) -> None:
        """Raise ``ValueError`` unless this money was read for ``period``."""
        if period != self.period:
            raise ValueError(
                f"SHOPLINE's money was read for {self.period.label}, not for {period.label}"
            )

    def needs_refunds(self, order_id: str) -> bool:
        """Whether the order's refunds are needed to book its money: it has successful refund
        transactions on the period's days (or of no known day, or any day for ``also``)."""
        for tx in self.transactions.get(order_id, []):
            if (tx.kind or "").lower() != "refund" or (tx.status or "").lower() != "success":
                continue
            moment = _moment_of(tx)
            if order_id in self.also or moment is None or self.period.day_of(moment) in self.period:
                return True
        return False

    def set_aside(self, record: InvalidRecord) -> None:
        """An order of a page that does not fit the model: kept aside, the pages go on."""
        why = f"SHOPLINE sent the order malformed: {record.error}"
        if record.record_id is None:
            self.unidentified.append(why)
        else:
            self.malformed[record.record_id] = (record.raw, why)

    def incomplete(self) -> dict[str, str]:
        """Order (id or description) → why some of its money is not known: what a journal of
        the period would lack."""
        found = {o: f"transactions: {why}" for o, why in self.unread.items()}
        found.update({o: f"refunds: {why}" for o, why in self.refunds_unread.items()})
        found.update({o: why for o, (_, why) in self.malformed.items()})
        found.update({f"an order without id ({i + 1})": w for i, w in enumerate(self.unidentified)})
        return found

    def copy(self) -> ShoplineMoney:
        """A copy whose dicts can grow without changing this one."""
        return replace(
            self,
            orders=dict(self.orders),
            transactions=dict(self.transactions),
            movements=dict(self.movements),
            refunds=dict(self.refunds),
            unread=dict(self.unread),
            refunds_unread=dict(self.refunds_unread),
            malformed=dict(self.malformed),
            unidentified=list(self.unidentified),
        )


def _moment_of(tx: Transaction) -> datetime | None:
    """When a transaction happened as the journals date it (``processed_at``, ``created_at``)."""
    extra: dict[str, Any] = tx.model_extra or {}
    for name in ("processed_at", "created_at"):
        value = extra.get(name)
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and value.strip():
            try:
                return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


async def limited(tasks: Iterable[Awaitable[T]], limit: int = CONCURRENCY) -> list[T]:
    """Await ``tasks`` with at most ``limit`` in flight; their results in order.

    Each is taken from ``tasks`` only when a slot is free, so a generator of coroutines makes each
    just before it is awaited: a run cancelled half-way leaves no coroutine never awaited."""
    source = enumerate(tasks)
    results: dict[int, T] = {}

    async def slot() -> None:
        for index, task in source:
            results[index] = await task

    await asyncio.gather(*(slot() for _ in range(limit)))
    return [results[index] for index in range(len(results))]


async def read_shopline_money(
    shopline: ShoplineClient,
    period: Period,
    *,
    also: Iterable[str] = (),
    refunds: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ShoplineMoney:
    """The successful money movements of SHOPLINE orders on the period's days.

    Any transaction on those days changed its order's ``updated_at``, so the orders updated since
    the period began (and created before it ended) hold all of them. The orders ``also`` names
    are read by id and all their movements kept, whatever the day. Orders that have taken no
    money cost no transaction read. With ``refunds``, the refunds of orders with refund money on
    the period's days are read too. Reading the order list may raise `ConnectorError`; one
    order's transactions or refunds that cannot be read end in ``unread`` / ``refunds_unread``.
    """
    calls_before = api_calls(shopline)
    first, after = period.bounds()
    money = ShoplineMoney(period)
    async for order in shopline.iter_orders(
        updated_at_min=first, created_at_max=after, on_invalid=money.set_aside
    ):
        money.orders[order.id] = order
    await _complete(shopline, money, set(also), refunds, progress)
    money.calls = api_calls(shopline) - calls_before
    return money


async def widen(
    shopline: ShoplineClient,
    money: ShoplineMoney,
    also: Iterable[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ShoplineMoney:
    """``money`` with the orders ``also`` names and all their movements, whatever the day.

    Reads only what ``money`` lacks: the orders it did not list, the transactions of those it did
    not read (or could not: those are tried again). Returns a copy (``money`` itself when nothing
    is missing); may raise `ConnectorError` reading the orders.
    """
    extra = set(also) - money.also
    if not extra:
        return money
    calls_before = api_calls(shopline)
    wider = money.copy()
    await _complete(shopline, wider, extra, False, progress)
    wider.calls += api_calls(shopline) - calls_before
    return wider


async def with_refunds(
    shopline: ShoplineClient,
    money: ShoplineMoney,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ShoplineMoney:
    """``money`` with the refunds of every order that needs them (`ShoplineMoney.needs_refunds`).

    Reads only those not read yet (those that could not be read are tried again); returns a copy
    (``money`` itself when none is missing).
    """
    missing = [o for o in money.transactions if o not in money.refunds and money.needs_refunds(o)]
    if not missing:
        return money
    calls_before = api_calls(shopline)
    fuller = money.copy()
    for order_id in missing:
        fuller.refunds_unread.pop(order_id, None)
    done = 0

    async def one(order_id: str) -> None:
        nonlocal done
        await _read_refunds(shopline, fuller, order_id)
        done += 1
        if progress is not None:
            progress(done, len(missing))

    await limited(one(o) for o in missing)
    fuller.calls += api_calls(shopline) - calls_before
    return fuller


async def _read_refunds(shopline: ShoplineClient, money: ShoplineMoney, order_id: str) -> None:
    try:
        money.refunds[order_id] = await shopline.list_refunds(order_id)
    except ConnectorError as exc:
        money.refunds_unread[order_id] = str(exc)


def _movements(money: ShoplineMoney, order: Order) -> list[Movement]:
    period = money.period
    found = movements_of(order, money.transactions.get(order.id, []), period)
    if order.id in money.also:
        return found
    return [m for m in found if m.day in period]


async def _complete(
    shopline: ShoplineClient,
    money: ShoplineMoney,
    extra: set[str],
    refunds: bool,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Read what ``money`` lacks for its orders and those in ``extra`` (all days for those)."""
    missing = sorted(extra - set(money.orders))
    for order_id in missing:  # asked for by name: read again, as it may be well formed now
        money.malformed.pop(order_id, None)
    if missing:
        async for order in shopline.iter_orders(ids=missing, on_invalid=money.set_aside):
            money.orders[order.id] = order
    money.also = money.also | extra
    for order_id in extra:  # a failed read of an order asked for by name is tried again
        money.unread.pop(order_id, None)
    for order_id in sorted(extra & set(money.transactions)):  # read before: every day now
        moves = _movements(money, money.orders[order_id])
        if moves:
            money.movements[order_id] = moves
    todo = [
        o
        for o in money.orders.values()
        if o.id not in money.transactions
        and o.id not in money.unread
        and (takes_money(o) or o.id in extra)
    ]
    done = 0

    async def one(order: Order) -> None:
        nonlocal done
        try:
            money.transactions[order.id] = await shopline.list_transactions(order.id)
        except ResponseFormatError as exc:
            if is_transient(exc):  # not SHOPLINE's answer (an HTML page, cut-off JSON)
                money.unread[order.id] = str(exc)
            else:  # SHOPLINE's answer, in a shape no model accepts: set aside, not retried
                money.malformed[order.id] = (None, f"its transactions are malformed: {exc}")
        except ConnectorError as exc:
            money.unread[order.id] = str(exc)
        else:
            moves = _movements(money, order)
            if moves:
                money.movements[order.id] = moves
            if refunds and money.needs_refunds(order.id):
                await _read_refunds(shopline, money, order.id)
        done += 1
        if progress is not None:
            progress(done, len(todo))

    await limited(one(o) for o in todo)


async def order_refunds(
    shopline: ShoplineClient, order_id: str, money: ShoplineMoney | None = None
) -> list[Refund]:
    """Every SHOPLINE refund of an order: from ``money`` where it read them, else one call,
    which may raise `ConnectorError`."""
    known = money.refunds.get(order_id) if money is not None else None
    if known is None:
        known = await shopline.list_refunds(order_id)
    return list(known)
