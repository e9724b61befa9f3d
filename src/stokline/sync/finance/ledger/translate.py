"""SHOPLINE money of a period → balanced ledger journals, one per group (no I/O, Decimal only).

Every movement of money is one of:

* a **sale**: a successful ``sale``/``capture`` transaction. Debit the gateway's
  ``ledger_account`` with the amount received; credit what the order says was sold: sales net of
  tax, tax per Stokly tax class, shipping net of tax, and (debit) discounts. Prices that include
  tax (``taxes_included``, SHOPLINE's UK default) have their tax taken out; prices that do not
  have it added. Discounts — line allocations, a shipping line's discounted price, and what
  ``total_discounts`` has beyond them — are debited to ``accounts.discounts`` at SHOPLINE's
  amount (tax-inclusive where prices are); without that account they reduce sales and shipping.
  **Captured over several days** (an authorisation captured in parts, as ``capture``
  transactions or as several ``sale`` transactions): each capture recognises, on its own day,
  its share of what the order has not yet recognised, in proportion to its amount over what
  is still to be captured (`recognise`). So every day balances, a day posted never changes when a later
  capture arrives, and the captures of a fully paid order add up to its breakdown to the penny.
  The last capture takes all that is left unless SHOPLINE says more is still to be captured
  (``financial_status`` authorized/partially_paid/pending or ``total_outstanding`` above zero):
  a paid order whose captures fall short is an imbalance, not a capture to come.
* a **refund**: a refund with its successful transactions. Credit the gateway's account with the
  amount paid back; debit the refunds account with the refund net of tax and the tax accounts
  with the tax refunded (from the refund's lines and order adjustments, e.g. shipping). **VAT on
  refunds by amount**: a refunded line with SHOPLINE's ``total_tax`` reverses that tax; without
  it, a line refunded by amount (``subtotal``, e.g. 60.00 of a 120.00 line) reverses the line's
  VAT in proportion to that amount over what the line sold for, and by quantity alone, in
  proportion to the quantity. A refund of an amount with no lines or adjustments (goodwill), and
  refund money SHOPLINE shows under no refund, reverse VAT pro rata to the order's own VAT mix
  (each tax class its share of what the order sold). So VAT posted is VAT charged less VAT
  refunded.
* a **fee**, where SHOPLINE tells one ([I]: a ``fee`` on the transaction or its ``receipt``;
  SHOPLINE documents none): debit the gateway's ``fee_account`` (else ``accounts.fees``), credit
  the gateway's account.

Movements are grouped by (day in the client's timezone, gateway, currency) — ``syncs.finance.
group_by`` may leave out the gateway; the day is always a key, and so is the currency, since one
journal has one currency. **One order never holds back another**: an order whose money of a
group does not add up to its breakdown by as little as one minor unit (``ledger_imbalance``), or
cannot be translated (an unmapped gateway or tax line), is set aside (`JournalDraft.set_aside`)
and the group's other orders make its journal, which therefore always balances. The orders not
in Stokly yet (``unimported``) are held out of the journals, or posted to a suspense account
against the gateway (`JournalDraft.unimported`).

**Rounding rule** (`stokline.mapping.money`). SHOPLINE's amounts are used as the
decimal strings they are, so sums are exact; only splitting one amount into parts rounds (an
order paid by several transactions, a refunded line's tax over several classes or part of its
quantity): each part is rounded down to the currency's minor unit and the units left over go to
the largest remainders, so the parts always add up to the whole exactly.

The lines on a gateway's account say what they are in their description — ``receipts
<gateway>``, ``refunds <gateway>``, ``fees <gateway>`` (`gateway_line`) — which is how the payout
reconciliation tells money in from money out in a posted journal (`parse_gateway_line`). Changing
these words changes every journal's content hash: posted batches would then be "corrected".

A journal is identified by its **batch key** — ``client:day:gateway:currency`` (``all`` when the
gateway is not a grouping key), also its Stokly ``reference`` — and its **content hash**
(SHA-256 of its key, date, currency and lines), which says whether two journals are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stokline.config.models import Mapping as ClientMapping
from stokline.mapping.money import ZERO, allocate, minor_unit, money, split_shares
from stokline.mapping.translate import Untranslatable, resolve_gateway, resolve_tax_class

__all__ = [
    "FEES",
    "GATEWAY_LINES",
    "RECEIPTS",
    "REFUNDS",
    "UNIMPORTED",
    "GroupKey",
    "JournalDraft",
    "JournalLine",
    "OrderMoney",
    "Problem",
    "SetAside",
    "Unimported",
    "allocate",
    "awaiting_capture",
    "batch_key",
    "build_journals",
    "difference",
    "gateway_line",
    "lines_from_json",
    "lines_to_json",
    "minor_unit",
    "parse_gateway_line",
    "recognise",
    "split_shares",
]

SALE_KINDS = ("sale", "capture")
SUCCESS = ("success",)
ALL_GATEWAYS = "all"

RECEIPTS = "receipts"
"""A gateway line of money received through the gateway (debit of its account)."""
REFUNDS = "refunds"
"""A gateway line of money paid back through the gateway (credit of its account)."""
FEES = "fees"
"""A gateway line of the gateway's fee (credit of its account, debit of the fee account)."""
GATEWAY_LINES = (RECEIPTS, REFUNDS, FEES)


def gateway_line(kind: str, gateway: str | None) -> str:
    """The description of a ``kind`` line (`GATEWAY_LINES`) of ``gateway``: ``receipts paypal``."""
    if kind not in GATEWAY_LINES:
        raise ValueError(f"{kind!r} is not a gateway line; one of {', '.join(GATEWAY_LINES)}")
    return f"{kind} {gateway}"


def parse_gateway_line(description: str) -> tuple[str, str] | None:
    """``(kind, gateway)`` of a `gateway_line` description; None for any other line (``sales``,
    ``tax standard``, a bare ``refunds`` on the refunds account, a line written by hand)."""
    kind, _, gateway = description.partition(" ")
    gateway = gateway.strip()
    return (kind, gateway) if kind in GATEWAY_LINES and gateway else None


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderMoney:
    """One order with its transactions and refunds, as SHOPLINE returned them (plain dicts)."""

    order: Mapping[str, Any]
    transactions: Sequence[Mapping[str, Any]] = ()
    refunds: Sequence[Mapping[str, Any]] = ()

    @property
    def label(self) -> str:
        name = self.order.get("name")
        return f"{name} ({self.order['id']})" if name else f"order {self.order['id']}"


@dataclass(frozen=True, order=True)
class GroupKey:
    """What one journal groups: a day in the client's timezone, a gateway (or all), a currency."""

    day: date
    gateway: str | None
    currency: str


def batch_key(client: str, key: GroupKey) -> str:
    """``client:day:gateway:currency``: the batch's identity, and its Stokly reference."""
    return f"{client}:{key.day.isoformat()}:{key.gateway or ALL_GATEWAYS}:{key.currency}"


@dataclass(frozen=True)
class JournalLine:
    """One ledger line: exactly one of ``debit`` and ``credit`` above zero."""

    account: str
    description: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.debit - self.credit


@dataclass(frozen=True)
class Problem:
    """Why a journal is refused: an exception code and a sentence."""

    code: str
    message: str


@dataclass(frozen=True)
class SetAside:
    """One order's money of a group kept out of its journal, and why (an exception code and a
    sentence): it does not match its breakdown, or cannot be translated. ``amount`` is what it
    moved through the gateway (payments in positive, refunds out negative)."""

    order_id: str
    label: str
    code: str
    message: str
    amount: Decimal


@dataclass(frozen=True)
class Unimported:
    """One order's money of a group whose order is not in Stokly yet: held out of the journal
    (``suspense`` None) or posted to the suspense account ``suspense``. ``amount`` as in
    `SetAside`."""

    order_id: str
    name: str
    gateway: str
    day: date
    amount: Decimal
    suspense: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "order": self.name,
            "shopline_id": self.order_id,
            "gateway": self.gateway,
            "day": self.day.isoformat(),
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class JournalDraft:
    """The journal of one group, balanced or refused (``problems``).

    ``set_aside``: orders whose money of the group was kept out of the journal (each one an
    exception for its owner; the other orders are posted). ``unimported``: orders not in Stokly
    yet, held out of the journal or posted to the suspense account.
    """

    client: str
    key: GroupKey
    batch_key: str
    lines: tuple[JournalLine, ...]
    orders: tuple[str, ...] = ()
    sales: int = 0
    refunds: int = 0
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    set_aside: tuple[SetAside, ...] = ()
    unimported: tuple[Unimported, ...] = ()

    @property
    def base_key(self) -> str:
        """The batch key of the group (an adjustment's key adds ``:adjN`` to it)."""
        return batch_key(self.client, self.key)

    @property
    def debits(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    @property
    def balanced(self) -> bool:
        return self.debits == self.credits

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def description(self) -> str:
        gateway = self.key.gateway or "all gateways"
        return f"SHOPLINE {gateway} {self.key.currency} {self.key.day.isoformat()}"

    @property
    def content_hash(self) -> str:
        """SHA-256 of the key, date, currency and lines: equal hashes, equal journals."""
        body = {
            "reference": self.batch_key,
            "date": self.key.day.isoformat(),
            "currency": self.key.currency,
            "lines": lines_to_json(self.lines),
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def payload(self) -> dict[str, Any]:
        """The body of Stokly's ``POST /v0/journals`` [I]; ``reference`` is the batch key."""
        return {
            "reference": self.batch_key,
            "date": self.key.day.isoformat(),
            "currency": self.key.currency,
            "description": self.description,
            "lines": [
                {
                    "account": line.account,
                    "debit": line.debit,
                    "credit": line.credit,
                    "description": line.description,
                }
                for line in self.lines
            ],
        }

    def rows(self) -> list[dict[str, Any]]:
        """The lines as table rows (amounts as text, so a table shows them to the penny)."""
        return [
            {
                "batch": self.batch_key,
                "account": line.account,
                "description": line.description,
                "debit": str(line.debit) if line.debit else "",
                "credit": str(line.credit) if line.credit else "",
            }
            for line in self.lines
        ]


def lines_to_json(lines: Iterable[JournalLine]) -> list[dict[str, str]]:
    """Lines as JSON-safe dicts, amounts as decimal strings (how the store keeps them)."""
    return [
        {
            "account": line.account,
            "description": line.description,
            "debit": str(line.debit),
            "credit": str(line.credit),
        }
        for line in lines
    ]


def lines_from_json(rows: Iterable[Mapping[str, Any]]) -> list[JournalLine]:
    """The inverse of `lines_to_json`; also reads Stokly's journal lines."""
    return [
        JournalLine(
            account=str(row["account"]),
            description=str(row.get("description") or ""),
            debit=money(row.get("debit")),
            credit=money(row.get("credit")),
        )
        for row in rows
    ]


def _lines(nets: Mapping[tuple[str, str], Decimal]) -> tuple[JournalLine, ...]:
    """Net amounts per (account, description) → lines, debits first, in a stable order."""
    lines = [
        JournalLine(
            account, description, debit=net if net > 0 else ZERO, credit=-net if net < 0 else ZERO
        )
        for (account, description), net in nets.items()
        if net != 0
    ]
    return tuple(sorted(lines, key=lambda line: (line.credit > 0, line.account, line.description)))


def difference(
    draft: JournalDraft, posted: Iterable[JournalLine], batch: str | None = None
) -> JournalDraft:
    """What ``draft`` adds to the lines ``posted`` before (an adjustment), under key ``batch``.

    The difference of two balanced journals is balanced; amounts that shrank come out on the
    opposite side, so a posted journal is corrected without being rewritten.
    """
    nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for line in draft.lines:
        nets[(line.account, line.description)] += line.net
    for line in posted:
        nets[(line.account, line.description)] -= line.net
    return replace(draft, lines=_lines(nets), batch_key=batch or draft.batch_key)


# -- building ---------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
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


def _first_time(*records: Mapping[str, Any] | None) -> datetime | None:
    for record in records:
        if not record:
            continue
        for name in ("processed_at", "created_at"):
            moment = _time(record.get(name))
            if moment is not None:
                return moment
    return None


def _fee_of(transaction: Mapping[str, Any]) -> Decimal:
    """[I] A gateway fee, where SHOPLINE tells one (it documents no such field)."""
    receipt = transaction.get("receipt")
    for source in (transaction, receipt if isinstance(receipt, Mapping) else {}):
        if source.get("fee") not in (None, ""):
            return money(source["fee"])
    return ZERO


@dataclass
class _Movement:
    """One movement's contribution to its group: net amounts per (account, description)."""

    key: GroupKey
    kind: str  # sale | refund
    label: str
    order_id: str = ""
    name: str = ""
    amount: Decimal = ZERO  # through the gateway: payments in positive, refunds out negative
    gateway: str = ""
    nets: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def imbalance(self) -> Decimal:
        return sum(self.nets.values(), ZERO)


# A breakdown part: (account, description, amount), credit positive for a sale, debit positive
# for a refund.
_Part = tuple[str, str, Decimal]

AWAITING_CAPTURE = frozenset({"authorized", "partially_paid", "pending", "unpaid"})
"""Financial statuses of an order whose authorised money is not all captured yet."""


def _order_id(order: Mapping[str, Any]) -> str:
    return str(order.get("id") or "")


def _order_name(order: Mapping[str, Any]) -> str:
    return str(order.get("name") or order.get("id") or "")


def awaiting_capture(order: Mapping[str, Any]) -> bool:
    """Whether SHOPLINE says more of the order's money is still to be captured."""
    status = str(order.get("financial_status") or "").lower()
    return status in AWAITING_CAPTURE or money(order.get("total_outstanding")) > 0


def recognise(
    parts: Sequence[Decimal], amounts: Sequence[Decimal], unit: Decimal, *, more: bool
) -> list[list[Decimal]]:
    """What each capture (``amounts``, in the order they were taken) recognises of an order's
    breakdown ``parts``: its share of what is still to be recognised, in proportion to its
    amount over what is still to be captured (the rest of the breakdown). So a capture's share
    depends only on the captures before it, never on those after it: a day posted stays right
    when the next capture arrives. The last capture takes all that is left, unless ``more``
    (SHOPLINE says more is still to be captured); a capture of more than what is left takes
    all of it too (and its journal shows the difference). Every row adds up to its amount
    exactly where the breakdown allows (`split_shares`), and the rows of a fully captured
    order add up to its breakdown exactly.
    """
    left = list(parts)
    rows: list[list[Decimal]] = []
    for index, amount in enumerate(amounts):
        rest = sum(left, ZERO) - amount
        if (index == len(amounts) - 1 and not more) or rest <= 0 or not left:
            row = list(left)
        else:
            row = split_shares(left, [amount, rest], unit)[0]
        rows.append(row)
        left = [whole - taken for whole, taken in zip(left, row, strict=True)]
    return rows


class _Builder:
    def __init__(self, mapping: ClientMapping) -> None:
        self.mapping = mapping
        settings = mapping.syncs.finance
        if settings is None:
            raise ValueError(f"{mapping.client.name}: the mapping has no syncs.finance section")
        self.accounts = settings.accounts
        self.by_gateway = "gateway" in settings.group_by
        self.tz = ZoneInfo(mapping.client.timezone)
        self.client = mapping.client.name

    # -- keys and accounts ----------------------------------------------------------------------

    def _key(self, moment: datetime | None, gateway: str | None, currency: str) -> GroupKey | None:
        if moment is None:
            return None
        day = moment.astimezone(self.tz).date()
        return GroupKey(day, (gateway or "(none)") if self.by_gateway else None, currency)

    def _tax_account(self, title: Any, rate: Any) -> tuple[str, str]:
        tax_class = resolve_tax_class(self.mapping, title, rate)
        account = self.accounts.tax.get(tax_class)
        if account is None:
            raise Untranslatable(
                "tax_mismatch", f"tax class {tax_class} has no account under accounts.tax"
            )
        return account, tax_class

    def _taxes(self, tax_lines: Iterable[Mapping[str, Any]], what: str) -> list[_Part]:
        parts = []
        for tax in tax_lines:
            try:
                account, tax_class = self._tax_account(tax.get("title"), tax.get("rate"))
            except Untranslatable as exc:
                raise Untranslatable(exc.code, f"{what}: {exc.message}") from None
            parts.append((account, f"tax {tax_class}", money(tax.get("price"))))
        return parts

    # -- what an order sold (credit positive) --------------------------------------------------

    def sale_parts(self, order: Mapping[str, Any]) -> list[_Part]:
        accounts = self.accounts
        included = order.get("taxes_included") is not False
        discounts_account = accounts.discounts
        parts: list[_Part] = []
        line_discounts = ZERO
        taxed = False
        for line in order.get("line_items") or []:
            label = f"line {line.get('sku') or line.get('id')}"
            gross = money(line.get("price")) * int(line.get("quantity") or 0)
            taxes = self._taxes(line.get("tax_lines") or [], label)
            taxed = taxed or bool(taxes)
            tax = sum((amount for _, _, amount in taxes), ZERO)
            discount = sum(
                (money(d.get("amount")) for d in line.get("discount_allocations") or []), ZERO
            )
            line_discounts += discount
            net = gross - (tax if included else ZERO)
            if discounts_account:
                parts.append((discounts_account, "discounts", -discount))
            else:
                net -= discount
            parts.append((accounts.sales, "sales", net))
            parts.extend(taxes)
        shipping_discounts = ZERO
        for ship in order.get("shipping_lines") or []:
            label = f"shipping {ship.get('title') or ship.get('code') or ''}".strip()
            price = money(ship.get("price"))
            paid = ship.get("discounted_price")
            discount = price - money(paid) if paid not in (None, "") else ZERO
            shipping_discounts += discount
            taxes = self._taxes(ship.get("tax_lines") or [], label)
            taxed = taxed or bool(taxes)
            tax = sum((amount for _, _, amount in taxes), ZERO)
            net = price - (tax if included else ZERO)
            if discounts_account:
                parts.append((discounts_account, "discounts", -discount))
            else:
                net -= discount
            parts.append((accounts.shipping, "shipping", net))
            parts.extend(taxes)
        if not taxed and order.get("tax_lines"):
            # Only order-level tax lines (no per-line ones): the tax comes out of sales.
            taxes = self._taxes(order["tax_lines"], "order")
            parts.extend(taxes)
            if included:
                parts.append((accounts.sales, "sales", -sum((a for _, _, a in taxes), ZERO)))
        unallocated = money(order.get("total_discounts")) - line_discounts - shipping_discounts
        if unallocated > 0:  # an order-level discount no line carries
            parts.append(
                (
                    discounts_account or accounts.sales,
                    "discounts" if discounts_account else "sales",
                    -unallocated,
                )
            )
        return parts

    # -- what a refund gave back (debit positive) ----------------------------------------------

    def refund_parts(
        self, order: Mapping[str, Any], refund: Mapping[str, Any], amount: Decimal, unit: Decimal
    ) -> list[_Part]:
        accounts = self.accounts
        included = order.get("taxes_included") is not False
        lines = {str(li.get("id")): li for li in order.get("line_items") or []}
        parts: list[_Part] = []
        for item in refund.get("refund_line_items") or []:
            line = lines.get(str(item.get("line_item_id")))
            if line is None:
                raise Untranslatable(
                    "ledger_imbalance",
                    f"refund {refund.get('id')} names line {item.get('line_item_id')}, "
                    "which the order does not have",
                )
            quantity = int(item.get("quantity") or 0)
            ordered = int(line.get("quantity") or 0) or 1
            given = item.get("subtotal") not in (None, "")
            subtotal = money(item["subtotal"]) if given else money(line.get("price")) * quantity
            taxes = self._taxes(
                line.get("tax_lines") or [], f"line {line.get('sku') or line.get('id')}"
            )
            if item.get("total_tax") not in (None, ""):
                tax = money(item["total_tax"])  # SHOPLINE's own figure
            elif given:
                # An amount of the line (60.00 of a 120.00 line): its VAT in the same proportion
                # to what the line was sold for (after its discounts).
                line_tax = sum((a for _, _, a in taxes), ZERO)
                sold = money(line.get("price")) * ordered - sum(
                    (money(d.get("amount")) for d in line.get("discount_allocations") or []), ZERO
                )
                tax = allocate(line_tax, [subtotal, max(sold - subtotal, ZERO)], unit)[0]
            else:
                line_tax = sum((a for _, _, a in taxes), ZERO)
                tax = allocate(line_tax, [Decimal(quantity), Decimal(ordered - quantity)], unit)[0]
            parts.append((accounts.refunds, "refunds", subtotal - (tax if included else ZERO)))
            parts.extend(self._share_tax(tax, taxes, unit, "refunded"))
        shipping_taxes: list[_Part] | None = None
        for adjustment in refund.get("order_adjustments") or []:
            back = -money(adjustment.get("amount"))
            tax = -money(adjustment.get("tax_amount"))
            parts.append((accounts.refunds, "refunds", back - (tax if included else ZERO)))
            if tax:
                if shipping_taxes is None:
                    shipping_taxes = [
                        p
                        for ship in order.get("shipping_lines") or []
                        for p in self._taxes(ship.get("tax_lines") or [], "shipping")
                    ]
                if not shipping_taxes:
                    raise Untranslatable(
                        "tax_mismatch",
                        f"refund {refund.get('id')}: an adjustment refunds tax {tax} but the "
                        "order's shipping has no tax line to tell its tax class",
                    )
                parts.extend(self._share_tax(tax, shipping_taxes, unit, "refunded"))
        if not parts:
            # A refund of an amount only (goodwill), with no lines or adjustments.
            parts = self.pro_rata_parts(order, amount, unit)
        return parts

    def pro_rata_parts(
        self, order: Mapping[str, Any], amount: Decimal, unit: Decimal
    ) -> list[_Part]:
        """A refund of ``amount`` with no lines: VAT reversed in the order's own VAT mix (each
        tax class its share of what the order sold), the rest to the refunds account."""
        nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        rest = ZERO
        for account, description, part in self.sale_parts(order):
            if description.startswith("tax "):
                nets[(account, description)] += part
            else:
                rest += part
        taxes = [(k, v) for k, v in nets.items() if v]
        weights = [rest, *(v for _, v in taxes)]
        if rest < 0 or any(v < 0 for _, v in taxes) or sum(weights, ZERO) <= 0:
            return [(self.accounts.refunds, "refunds", amount)]
        shares = allocate(amount, weights, unit)
        return [
            (self.accounts.refunds, "refunds", shares[0]),
            *(
                (account, f"{description} refunded", share)
                for ((account, description), _), share in zip(taxes, shares[1:], strict=True)
            ),
        ]

    @staticmethod
    def _share_tax(tax: Decimal, taxes: list[_Part], unit: Decimal, suffix: str) -> list[_Part]:
        if not tax:
            return []
        if not taxes:
            raise Untranslatable("tax_mismatch", f"tax {tax} refunded on a line with no tax line")
        shares = allocate(
            tax,
            [a for _, _, a in taxes] if any(a for _, _, a in taxes) else [Decimal(1)] * len(taxes),
            unit,
        )
        return [
            (account, f"{description} {suffix}", share)
            for (account, description, _), share in zip(taxes, shares, strict=True)
        ]

    # -- movements ------------------------------------------------------------------------------

    def _gateway(self, name: str | None) -> tuple[str, str | None]:
        entry = resolve_gateway(self.mapping, name)
        return entry.ledger_account, entry.fee_account or self.accounts.fees

    def sales(self, om: OrderMoney) -> list[_Movement]:
        order = om.order
        currency = str(order.get("currency") or self.mapping.client.currency)
        txs = [
            t for t in om.transactions if t.get("kind") in SALE_KINDS and t.get("status") in SUCCESS
        ]
        if not txs:
            return []
        names = order.get("payment_gateway_names") or [None]
        movements: list[_Movement] = []
        keyed: list[tuple[Mapping[str, Any], _Movement]] = []
        for tx in txs:
            tx_currency = str(tx.get("currency") or currency)
            gateway = tx.get("gateway") or names[0]
            key = self._key(_first_time(tx, order), gateway, tx_currency)
            if key is None:
                continue
            movement = _Movement(
                key, "sale", om.label, _order_id(order), _order_name(order), money(tx.get("amount"))
            )
            movement.gateway = str(gateway or "")
            if tx_currency != currency:
                movement.problems.append(
                    Problem(
                        "ledger_imbalance",
                        f"{om.label}: paid in {tx_currency}, but the order's amounts are in "
                        f"{currency}",
                    )
                )
            keyed.append((tx, movement))
            movements.append(movement)
        if not keyed:
            return []
        unit = minor_unit(currency)
        try:
            breakdown = self.sale_parts(order)
        except Untranslatable as exc:
            for _, movement in keyed:
                movement.problems.append(Problem(exc.code, f"{om.label}: {exc.message}"))
            breakdown = []
        # Captures in the order they were taken (SHOPLINE's order on a tie).
        keyed.sort(key=lambda pair: _first_time(pair[0], order) or datetime.max.replace(tzinfo=UTC))
        amounts = [money(tx.get("amount")) for tx, _ in keyed]
        shares = recognise(
            [a for _, _, a in breakdown], amounts, unit, more=awaiting_capture(order)
        )
        for (tx, movement), amount, share in zip(keyed, amounts, shares, strict=True):
            gateway = tx.get("gateway") or names[0]
            try:
                clearing, fee_account = self._gateway(gateway)
            except Untranslatable as exc:
                movement.problems.append(Problem(exc.code, f"{om.label}: {exc.message}"))
                continue
            movement.nets[(clearing, gateway_line(RECEIPTS, gateway))] += amount
            for (account, description, _), part in zip(breakdown, share, strict=True):
                movement.nets[(account, description)] -= part
            fee = _fee_of(tx)
            if fee:
                if fee_account:
                    movement.nets[(fee_account, gateway_line(FEES, gateway))] += fee
                    movement.nets[(clearing, gateway_line(FEES, gateway))] -= fee
                else:
                    movement.notes.append(
                        f"{om.label}: a {gateway} fee of {fee} is left out: neither the gateway's "
                        "fee_account nor accounts.fees is set"
                    )
        return movements

    def refunds(self, om: OrderMoney) -> list[_Movement]:
        order = om.order
        currency = str(order.get("currency") or self.mapping.client.currency)
        unit = minor_unit(currency)
        names = order.get("payment_gateway_names") or [None]
        movements: list[_Movement] = []
        seen: set[str] = set()
        for refund in om.refunds:
            txs = [
                t
                for t in refund.get("transactions") or []
                if t.get("kind", "refund") == "refund" and t.get("status", "success") in SUCCESS
            ]
            seen.update(str(t.get("id")) for t in refund.get("transactions") or [])
            if not txs:
                continue
            amounts = [money(t.get("amount")) for t in txs]
            try:
                breakdown = self.refund_parts(order, refund, sum(amounts, ZERO), unit)
                problem = None
            except Untranslatable as exc:
                breakdown, problem = [], Problem(exc.code, f"{om.label}: {exc.message}")
            shares = split_shares([a for _, _, a in breakdown], amounts, unit)
            for tx, amount, share in zip(txs, amounts, shares, strict=True):
                movement = self._refund_movement(
                    om, tx, refund, amount, currency, names[0], breakdown, share
                )
                if movement is not None:
                    if problem:
                        movement.problems.append(problem)
                    movements.append(movement)
        # Refund transactions no refund record carries: money back, with no breakdown.
        for tx in om.transactions:
            if (
                tx.get("kind") == "refund"
                and tx.get("status") in SUCCESS
                and str(tx.get("id")) not in seen
            ):
                amount = money(tx.get("amount"))
                try:
                    breakdown = self.pro_rata_parts(order, amount, unit)
                    problem = None
                except Untranslatable as exc:
                    breakdown, problem = [], Problem(exc.code, f"{om.label}: {exc.message}")
                movement = self._refund_movement(
                    om,
                    tx,
                    None,
                    amount,
                    currency,
                    names[0],
                    breakdown,
                    [a for _, _, a in breakdown],
                )
                if movement is not None:
                    if problem:
                        movement.problems.append(problem)
                    movements.append(movement)
        return movements

    def _refund_movement(
        self,
        om: OrderMoney,
        tx: Mapping[str, Any],
        refund: Mapping[str, Any] | None,
        amount: Decimal,
        currency: str,
        default_gateway: str | None,
        breakdown: list[_Part],
        share: list[Decimal],
    ) -> _Movement | None:
        tx_currency = str(tx.get("currency") or currency)
        gateway = tx.get("gateway") or default_gateway
        key = self._key(_first_time(tx, refund, om.order), gateway, tx_currency)
        if key is None:
            return None
        movement = _Movement(
            key, "refund", om.label, _order_id(om.order), _order_name(om.order), -amount
        )
        movement.gateway = str(gateway or "")
        if tx_currency != currency:
            movement.problems.append(
                Problem(
                    "ledger_imbalance",
                    f"{om.label}: refunded in {tx_currency}, but the order's amounts are in "
                    f"{currency}",
                )
            )
        try:
            clearing, _ = self._gateway(gateway)
        except Untranslatable as exc:
            movement.problems.append(Problem(exc.code, f"{om.label}: {exc.message}"))
            return movement
        movement.nets[(clearing, gateway_line(REFUNDS, gateway))] -= amount
        for (account, description, _), part in zip(breakdown, share, strict=True):
            movement.nets[(account, description)] += part
        return movement


UNIMPORTED = "unimported orders"
"""The description of a suspense line: money of orders not in Stokly yet."""


def _to_suspense(movement: _Movement, account: str) -> _Movement:
    """``movement`` with its breakdown replaced by one line on the suspense ``account``: only
    the gateway's side (money and fees) stays, since the order's own records are not in Stokly
    to say what was sold. Problems of the breakdown go with it."""
    nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for (acct, description), net in movement.nets.items():
        if parse_gateway_line(description) is not None:
            nets[(acct, description)] += net
    nets[(account, UNIMPORTED)] -= sum(nets.values(), ZERO)
    kept = [p for p in movement.problems if p.code in ("unmapped_gateway",)]
    return replace(movement, nets=nets, problems=kept)


def _why(movements: list[_Movement]) -> tuple[str, str]:
    """The exception code and sentence of an order's movements that are set aside."""
    problems = [p for m in movements for p in m.problems]
    if problems:
        first = problems[0]
        return first.code, "; ".join(
            dict.fromkeys(p.message for p in problems if p.code == first.code)
        )
    return "ledger_imbalance", "; ".join(
        f"{m.label} {m.kind}: money {'exceeds' if m.imbalance > 0 else 'falls short of'}"
        f" its breakdown by {abs(m.imbalance)}"
        for m in movements
        if m.imbalance
    )


def _natural(name: str | None, order_id: str) -> tuple[int, str, str]:
    """A sort key putting #999 before #1000."""
    text = name or ""
    return (len(text), text, order_id)


def build_journals(
    mapping: ClientMapping,
    orders: Iterable[OrderMoney],
    start: date,
    end: date,
    *,
    unimported: Collection[str] = (),
    suspense: str | None = None,
) -> list[JournalDraft]:
    """One journal per group of the money that moved on the days ``start``..``end`` (inclusive).

    Journals come sorted by group key. Each order's money in a group stands on its own: an
    order whose money does not add up to its breakdown to the minor unit, or cannot be
    translated, is set aside (`JournalDraft.set_aside`, with its exception code) and the other
    orders of the group are posted. The orders named in ``unimported`` (not in Stokly yet) are
    held out of the journals (`JournalDraft.unimported`), or, with a ``suspense`` account,
    posted there against the gateway instead of to sales and tax.
    """
    if start > end:
        raise ValueError(f"the period starts ({start}) after it ends ({end})")
    builder = _Builder(mapping)
    waiting = set(unimported)
    groups: dict[GroupKey, list[_Movement]] = defaultdict(list)
    for om in orders:
        outside = _order_id(om.order) in waiting
        for movement in [*builder.sales(om), *builder.refunds(om)]:
            if start <= movement.key.day <= end:
                if outside and suspense:
                    movement = _to_suspense(movement, suspense)
                groups[movement.key].append(movement)
    drafts = []
    for key in sorted(groups, key=lambda k: (k.day, k.gateway or "", k.currency)):
        by_order: dict[str, list[_Movement]] = defaultdict(list)
        for movement in groups[key]:
            by_order[movement.order_id or movement.label].append(movement)
        kept: list[_Movement] = []
        aside: list[SetAside] = []
        held: list[Unimported] = []
        for order_id, movements in by_order.items():
            amount = sum((m.amount for m in movements), ZERO)
            if order_id in waiting:
                held.append(
                    Unimported(
                        order_id,
                        movements[0].name,
                        key.gateway or ", ".join(sorted({m.gateway for m in movements})),
                        key.day,
                        amount,
                        suspense,
                    )
                )
                if not suspense:
                    continue
            if any(m.problems or m.imbalance for m in movements):
                code, why = _why(movements)
                aside.append(SetAside(order_id, movements[0].label, code, why, amount))
                continue
            kept.extend(movements)
        nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        notes: list[str] = []
        for movement in kept:
            for part, amount in movement.nets.items():
                nets[part] += amount
            notes.extend(movement.notes)
        drafts.append(
            JournalDraft(
                client=builder.client,
                key=key,
                batch_key=batch_key(builder.client, key),
                lines=_lines(nets),
                orders=tuple(sorted({m.label for m in kept})),
                sales=sum(1 for m in kept if m.kind == "sale"),
                refunds=sum(1 for m in kept if m.kind == "refund"),
                notes=tuple(dict.fromkeys(notes)),
                # In the orders' own order (by name, then id), whatever order they were read in:
                # the approval text, artifacts and exceptions read the same run after run.
                set_aside=tuple(sorted(aside, key=lambda a: _natural(a.label, a.order_id))),
                unimported=tuple(sorted(held, key=lambda u: _natural(u.name, u.order_id))),
            )
        )
    return drafts
