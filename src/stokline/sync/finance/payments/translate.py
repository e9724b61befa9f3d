"""SHOPLINE money → Stokly payment records and credit notes (no I/O, Decimal only).

A `Period` is whole days in the client's timezone: a transaction belongs to the day its moment
falls on there, not in UTC. `movement_of` keeps what a SHOPLINE transaction did to the gateway's
balance — a successful ``sale``/``capture`` in, a ``refund`` out — as a `Movement`, named by the
payment provider's own id so that a Stokly record can be matched to it.

`payment_payload` is the Stokly payment record [I] of one movement; `refund_payload` the Stokly
refund [I], the credit note, of one SHOPLINE refund: its lines are found among the sale order's
lines by SKU (through the mapping's overrides and match rule), and their amounts are shared out
so that the note always adds up to the money that left (`apportion`).

Records come in as the connector models the sync read; nothing here imports the connectors, so
the models appear in type hints only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from stokline.config.models import Gateway, Mapping
from stokline.config.skus import sku_key

if TYPE_CHECKING:
    from stokline.connectors.shopline.models import Order, Refund, Transaction
    from stokline.connectors.stokly.models import SaleOrderItem

__all__ = [
    "IN_KINDS",
    "OUT_KINDS",
    "Movement",
    "Period",
    "apportion",
    "cents",
    "group_by_refund",
    "movement_of",
    "movements_of",
    "payment_payload",
    "refund_payload",
    "refund_reason",
]

CENT = Decimal("0.01")
IN_KINDS = frozenset({"sale", "capture"})
OUT_KINDS = frozenset({"refund"})


# -- the period -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days ``start``..``end`` (both included) in the client's timezone."""

    start: date
    end: date
    tz: ZoneInfo

    @classmethod
    def of(cls, mapping: Mapping, start: date, end: date) -> Period:
        if start > end:
            raise ValueError(f"the period starts ({start}) after it ends ({end})")
        return cls(start, end, mapping.client.tz)

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants, ``[first, after)``."""
        first = datetime.combine(self.start, clock.min, self.tz).astimezone(UTC)
        after = datetime.combine(self.end + timedelta(days=1), clock.min, self.tz).astimezone(UTC)
        return first, after

    def day_of(self, moment: datetime) -> date:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.tz).date()

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def label(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"


# -- SHOPLINE's money -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """One successful SHOPLINE transaction that moved money: a payment in or a refund out.

    ``gateway_transaction_id`` is the payment provider's id — ``pay_channel_deal_id`` for a
    payment, ``channel_refund_id`` for a refund — or ``shopline:<transaction id>`` when SHOPLINE
    gives none; it is how a Stokly payment record is matched to its SHOPLINE transaction. Where
    several transactions of an order share one, all but the first add ``:<transaction id>``
    (`movements_of`).
    """

    order_id: str
    order_name: str
    transaction_id: str
    kind: str  # "payment" | "refund"
    gateway: str
    gateway_transaction_id: str
    pay_seq: str | None
    amount: Decimal
    currency: str
    at: datetime | None
    day: date | None

    @property
    def signed(self) -> Decimal:
        """The amount as it moves the gateway's balance: payments in, refunds out."""
        return self.amount if self.kind == "payment" else -self.amount


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def movement_of(order: Order, tx: Transaction, period: Period) -> Movement | None:
    """The money ``tx`` moved, or None (failed, pending, an authorisation, a void, no amount)."""
    if (tx.status or "").lower() != "success" or tx.amount is None or tx.amount <= 0:
        return None
    kind = (tx.kind or "").lower()
    if kind not in IN_KINDS | OUT_KINDS:
        return None
    extra = tx.model_extra or {}
    details = tx.payment_details
    at = (
        _moment(extra.get("processed_at"))
        or _moment(extra.get("created_at"))
        or _moment((details.model_extra or {}).get("create_time") if details else None)
    )
    if kind in IN_KINDS:
        psp = details.pay_channel_deal_id if details else None
        pay_seq = details.pay_seq if details else None
    else:  # a refund's payment_details are the original payment's: its own id is channel_refund_id
        psp, pay_seq = extra.get("channel_refund_id"), None
    return Movement(
        order_id=order.id,
        order_name=order.name or order.id,
        transaction_id=tx.id,
        kind="payment" if kind in IN_KINDS else "refund",
        gateway=(
            tx.gateway
            or (details.gateway if details else None)
            or next(iter(order.payment_gateway_names), None)
            or ""
        ).strip(),
        gateway_transaction_id=str(psp) if psp else f"shopline:{tx.id}",
        pay_seq=str(pay_seq) if pay_seq else None,
        amount=tx.amount,
        currency=tx.currency or order.currency or "",
        at=at,
        day=period.day_of(at) if at else None,
    )


def movements_of(order: Order, txs: Iterable[Transaction], period: Period) -> list[Movement]:
    """The money the order's transactions moved (`movement_of`), each with a gateway
    transaction id of its own.

    A gateway may give every capture of one authorisation the same deal id (SHOPLINE does not
    say; both are handled): of the movements of one kind sharing a gateway id, the first taken
    (by its moment, then SHOPLINE's transaction id) keeps it — as recorded before, so records
    already in Stokly are still found — and each later one becomes ``<gateway id>:<SHOPLINE
    transaction id>``. So two captures are two records, and a re-read of one capture gives the
    same id again whatever the order of SHOPLINE's list.
    """
    found = [m for tx in txs if (m := movement_of(order, tx, period))]
    shared: dict[tuple[str, str], list[Movement]] = {}
    for movement in found:
        shared.setdefault((movement.kind, movement.gateway_transaction_id), []).append(movement)
    renamed: dict[str, Movement] = {}
    for (_, gateway_id), movements in shared.items():
        if len(movements) < 2:
            continue
        movements.sort(key=lambda m: (m.at or datetime.max.replace(tzinfo=UTC), m.transaction_id))
        for movement in movements[1:]:
            renamed[movement.transaction_id] = replace(
                movement, gateway_transaction_id=f"{gateway_id}:{movement.transaction_id}"
            )
    return [renamed.get(m.transaction_id, m) for m in found]


def group_by_refund(
    refunds: Iterable[Refund], moves: Iterable[Movement]
) -> tuple[list[tuple[Refund, list[Movement]]], list[Movement]]:
    """Refund movements under the SHOPLINE refund whose transactions hold them, first seen first;
    and those SHOPLINE shows under no refund (their money is still recorded, with no credit note).
    """
    owner = {tx.id: r for r in refunds for tx in r.transactions}
    grouped: dict[str, tuple[Refund, list[Movement]]] = {}
    loose: list[Movement] = []
    for movement in moves:
        refund = owner.get(movement.transaction_id)
        if refund is None:
            loose.append(movement)
        else:
            grouped.setdefault(refund.id, (refund, []))[1].append(movement)
    return list(grouped.values()), loose


# -- Stokly's records -----------------------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    """``value`` to the penny, half up: how Stokly records money."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):  # never from our decoders; a hand-built dict would be a bug
        raise TypeError("money must not be a binary float")
    return Decimal(str(value))


def payment_payload(
    movement: Movement, gateway: Gateway, *, refund_id: str | None = None
) -> dict[str, Any]:
    """A Stokly payment record [I] for one movement (a payment, or the money of a refund)."""
    body: dict[str, Any] = {
        "kind": movement.kind,
        "method": gateway.stokly_method,
        "gateway": movement.gateway or gateway.gateway,
        "transactionId": movement.gateway_transaction_id,
        "amount": cents(movement.amount),
        "currency": movement.currency,
    }
    if movement.at is not None:
        body["paidAt"] = movement.at.astimezone(UTC).isoformat()
    reference = movement.pay_seq if movement.kind == "payment" else refund_id
    if reference:
        body["reference"] = reference
    return body


def refund_reason(refund: Refund) -> str | None:
    """The merchant's note and the adjustment reasons, each once, in order."""
    parts = [refund.note, *(a.get("reason") for a in refund.order_adjustments)]
    unique = dict.fromkeys(str(p).strip() for p in parts if p and str(p).strip())
    return "; ".join(unique) or None


def _refund_order(refund: Refund) -> tuple[str, str]:
    moment = refund.created_at or refund.processed_at
    return (moment.isoformat() if moment else "", refund.id)


def _never_imported(
    order: Order,
    refund: Refund,
    earlier: Sequence[Refund],
    stokly_lines: list[SaleOrderItem],
    key: Callable[[str], str],
) -> dict[str, int]:
    """Units of ``refund`` that were never on the sale order, by SKU key.

    The orders sync imports the units paid and not refunded: a SKU of which SHOPLINE sold more
    than the sale order holds lost the difference to refunds made before the import. Those
    units are taken, refund by refund in the order they were made, by the first refunds of that
    SKU; ``earlier`` are the order's other refunds (any made after this one are ignored).
    """
    sold: dict[str, int] = {}
    for li in order.line_items:
        if li.quantity > 0:
            sold[key(li.sku or "")] = sold.get(key(li.sku or ""), 0) + li.quantity
    held: dict[str, int] = {}
    for line in stokly_lines:
        if not line.parentId:
            held[key(line.itemSku or "")] = held.get(key(line.itemSku or ""), 0) + int(
                line.quantity
            )
    # SKUs the sale order holds none of are not "lost to refunds": a never-synced gift card or
    # a line the mapping excluded; they stay unmatched as before.
    pool = {k: n - held[k] for k, n in sold.items() if held.get(k) and n > held[k]}
    if not pool:
        return {}
    skus = {li.id: key(li.sku or "") for li in order.line_items}
    mine = _refund_order(refund)
    for other in sorted(earlier, key=_refund_order):
        if other.id == refund.id or _refund_order(other) > mine:
            continue
        for item in other.refund_line_items:
            k = skus.get(item.line_item_id)
            if k in pool:
                pool[k] = max(pool[k] - item.quantity, 0)
    out: dict[str, int] = {}
    for item in refund.refund_line_items:
        k = skus.get(item.line_item_id)
        if k is not None and pool.get(k):
            take = min(pool[k], item.quantity)
            pool[k] -= take
            out[k] = out.get(k, 0) + take
    return out


def _refund_lines(
    mapping: Mapping,
    order: Order,
    refund: Refund,
    stokly_lines: list[SaleOrderItem],
    earlier: Sequence[Refund] = (),
) -> tuple[list[dict[str, Any]], list[str], Decimal]:
    """Refunded quantities and amounts on the sale order's lines, SKUs with no Stokly line, and
    the amount of units that were never on the sale order (refunded before its import).

    A SHOPLINE line is found among the Stokly lines by SKU (through the mapping's overrides and
    match rule); a quantity larger than one Stokly line holds continues on the next of that SKU.
    """
    match = mapping.skus.match
    overrides = {sku_key(o.shopline_sku, match): o.stokly_sku for o in mapping.skus.overrides}

    def key(sku: str) -> str:
        return sku_key(overrides.get(sku_key(sku, match), sku), match)

    room: dict[str, list[list[Any]]] = {}
    for line in stokly_lines:
        if line.parentId:  # a composite's component: refunds go on the parent
            continue
        room.setdefault(sku_key(line.itemSku or "", match), []).append(
            [line.lineId, int(line.quantity)]
        )
    never = _never_imported(order, refund, earlier, stokly_lines, key)
    shopline_lines = {li.id: li for li in order.line_items}
    taxes_included = order.taxes_included is not False
    items: list[dict[str, Any]] = []
    unmatched: list[str] = []
    before_import = Decimal(0)
    for refunded in refund.refund_line_items:
        source = shopline_lines.get(refunded.line_item_id)
        sku = (source.sku if source else None) or ""
        amount = refunded.subtotal
        if amount is None:
            amount = (source.price or Decimal(0)) * refunded.quantity if source else Decimal(0)
        if not taxes_included:
            amount += refunded.total_tax or Decimal(0)
        left, candidates = refunded.quantity, room.get(key(sku), [])
        skipped = min(never.get(key(sku), 0), left)
        if skipped:
            never[key(sku)] -= skipped
            left -= skipped
            before_import += amount * skipped / refunded.quantity
        for slot in candidates:
            if left <= 0:
                break
            take = min(left, slot[1])
            if take <= 0:
                continue
            slot[1] -= take
            share = amount * take / refunded.quantity if refunded.quantity else Decimal(0)
            items.append({"lineId": slot[0], "quantity": take, "amount": share})
            left -= take
        if left > 0:
            unmatched.append(f"{sku or refunded.line_item_id} x{left}")
    return items, unmatched, before_import


def apportion(items: list[dict[str, Any]], target: Decimal) -> list[dict[str, Any]]:
    """Line amounts in cents that add up to ``target`` exactly, in proportion to their own.

    They differ when SHOPLINE refunded another amount than its lines (a refund discrepancy) or a
    refunded line has no Stokly line (a never-synced gift card): the credit note still adds up.
    """
    if not items:
        return []
    amounts = [cents(i["amount"]) for i in items]
    base = sum(amounts, Decimal(0))
    if base != target:
        if base > 0:
            amounts = [cents(a * target / base) for a in amounts]
        else:
            amounts = [Decimal(0)] * len(items)
        largest = max(range(len(amounts)), key=lambda i: amounts[i])
        amounts[largest] += target - sum(amounts, Decimal(0))
    return [{**item, "amount": amount} for item, amount in zip(items, amounts, strict=True)]


def refund_payload(
    mapping: Mapping,
    order: Order,
    refund: Refund,
    stokly_lines: list[SaleOrderItem],
    money: list[tuple[Movement, Gateway]],
    earlier: Sequence[Refund] = (),
) -> dict[str, Any]:
    """A Stokly refund [I] (credit note) for a SHOPLINE refund and the money it returned.

    Units refunded before the order's import were never on the sale order (the orders sync
    imports what is paid and not refunded): their credit note carries the money and no line,
    so no kept unit is marked refunded. ``earlier`` are the order's refunds, for telling which
    refunds came first."""
    amount = cents(sum((m.amount for m, _ in money), Decimal(0)))
    taxes_included = order.taxes_included is not False
    shipping = Decimal(0)
    for adjustment in refund.order_adjustments:
        if adjustment.get("kind") == "shipping_refund":
            shipping -= _money(adjustment.get("amount"))
            if not taxes_included:
                shipping -= _money(adjustment.get("tax_amount"))
    shipping = min(max(cents(shipping), Decimal(0)), amount)
    items, unmatched, before_import = _refund_lines(mapping, order, refund, stokly_lines, earlier)
    reason = refund_reason(refund)
    notes = []
    if before_import and not items:
        notes.append("refunded before the order was imported: not on the Stokly sale order")
    if unmatched:
        notes.append(f"refunded lines not on the Stokly sale order: {', '.join(unmatched)}")
    for note in notes:
        reason = f"{reason}; {note}" if reason else note
    body: dict[str, Any] = {
        "sourceReferenceId": refund.id,
        "currency": money[0][0].currency if money else order.currency,
        "amount": amount,
        "shippingAmount": shipping,
        "items": apportion(items, amount - shipping),
        "payments": [
            {
                "method": gateway.stokly_method,
                "gateway": movement.gateway or gateway.gateway,
                "amount": cents(movement.amount),
                "transactionId": movement.gateway_transaction_id,
                **({"paidAt": movement.at.astimezone(UTC).isoformat()} if movement.at else {}),
            }
            for movement, gateway in money
        ],
    }
    if reason:
        body["reason"] = reason
    return body
