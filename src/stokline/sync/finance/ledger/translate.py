"""SHOPLINE money of a period → balanced ledger journals, one per group (no I/O, Decimal only).

Every movement of money is one of:

* a **sale**: a successful ``sale``/``capture`` transaction. Debit the gateway's
  ``ledger_account`` with the amount received; credit what the order says was sold: sales net of
  tax, tax per Stokly tax class, shipping net of tax, and (debit) discounts. Prices that include
  tax (``taxes_included``, SHOPLINE's UK default) have their tax taken out; prices that do not
  have it added. Discounts — line allocations, a shipping line's discounted price, and what
  ``total_discounts`` has beyond them — are debited to ``accounts.discounts`` at SHOPLINE's
  amount (tax-inclusive where prices are); without that account they reduce sales and shipping.
* a **refund**: a refund with its successful transactions. Credit the gateway's account with the
  amount paid back; debit the refunds account with the refund net of tax and the tax accounts
  with the tax refunded (from the refund's lines and order adjustments, e.g. shipping).
* a **fee**, where SHOPLINE tells one ([I]: a ``fee`` on the transaction or its ``receipt``;
  SHOPLINE documents none): debit the gateway's ``fee_account`` (else ``accounts.fees``), credit
  the gateway's account.

Movements are grouped by (day in the client's timezone, gateway, currency) — ``syncs.finance.
group_by`` may leave out the gateway; the day is always a key, and so is the currency, since one
journal has one currency. A group's journal is refused, and nothing of it is posted, when its
debits and credits differ by as little as one minor unit (``ledger_imbalance``, naming the orders
whose breakdown does not add up to the money moved) or when one of its movements cannot be
translated (an unmapped gateway or tax line).

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
from collections.abc import Iterable, Mapping, Sequence
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
    "GroupKey",
    "JournalDraft",
    "JournalLine",
    "OrderMoney",
    "Problem",
    "allocate",
    "batch_key",
    "build_journals",
    "difference",
    "gateway_line",
    "lines_from_json",
    "lines_to_json",
    "minor_unit",
    "parse_gateway_line",
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
class JournalDraft:
    """The journal of one group, balanced or refused (``problems``)."""

    client: str
    key: GroupKey
    batch_key: str
    lines: tuple[JournalLine, ...]
    orders: tuple[str, ...] = ()
    sales: int = 0
    refunds: int = 0
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()

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
    nets: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def imbalance(self) -> Decimal:
        return sum(self.nets.values(), ZERO)


# A breakdown part: (account, description, amount), credit positive for a sale, debit positive
# for a refund.
_Part = tuple[str, str, Decimal]


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
            subtotal = (
                money(item["subtotal"])
                if item.get("subtotal") not in (None, "")
                else money(line.get("price")) * quantity
            )
            taxes = self._taxes(
                line.get("tax_lines") or [], f"line {line.get('sku') or line.get('id')}"
            )
            if item.get("total_tax") not in (None, ""):
                tax = money(item["total_tax"])
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
            # A refund of an amount only, with no lines or adjustments: all of it is refunds.
            parts.append((accounts.refunds, "refunds", amount))
        return parts

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
            movement = _Movement(key, "sale", om.label)
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
        amounts = [money(tx.get("amount")) for tx, _ in keyed]
        shares = split_shares([a for _, _, a in breakdown], amounts, unit)
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
                breakdown = [(self.accounts.refunds, "refunds", amount)]
                movement = self._refund_movement(
                    om, tx, None, amount, currency, names[0], breakdown, [amount]
                )
                if movement is not None:
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
        movement = _Movement(key, "refund", om.label)
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


def build_journals(
    mapping: ClientMapping, orders: Iterable[OrderMoney], start: date, end: date
) -> list[JournalDraft]:
    """One journal per group of the money that moved on the days ``start``..``end`` (inclusive).

    Journals come sorted by group key. A refused journal (``problems``) keeps its lines, so the
    people fixing it see what it would have been; the caller posts only the others.
    """
    if start > end:
        raise ValueError(f"the period starts ({start}) after it ends ({end})")
    builder = _Builder(mapping)
    groups: dict[GroupKey, list[_Movement]] = defaultdict(list)
    for om in orders:
        for movement in [*builder.sales(om), *builder.refunds(om)]:
            if start <= movement.key.day <= end:
                groups[movement.key].append(movement)
    drafts = []
    for key in sorted(groups, key=lambda k: (k.day, k.gateway or "", k.currency)):
        movements = groups[key]
        nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        problems: list[Problem] = []
        notes: list[str] = []
        for movement in movements:
            for part, amount in movement.nets.items():
                nets[part] += amount
            problems.extend(movement.problems)
            notes.extend(movement.notes)
        lines = _lines(nets)
        draft = JournalDraft(
            client=builder.client,
            key=key,
            batch_key=batch_key(builder.client, key),
            lines=lines,
            orders=tuple(sorted({m.label for m in movements})),
            sales=sum(1 for m in movements if m.kind == "sale"),
            refunds=sum(1 for m in movements if m.kind == "refund"),
            notes=tuple(dict.fromkeys(notes)),
        )
        off = [m for m in movements if m.imbalance and not m.problems]
        # Untranslatable money unbalances its journal too; that is said by its own problem.
        if not draft.balanced and (off or not problems):
            detail = "; ".join(
                f"{m.label} {m.kind}: money {'exceeds' if m.imbalance > 0 else 'falls short of'}"
                f" its breakdown by {abs(m.imbalance)}"
                for m in off[:10]
            )
            more = f" and {len(off) - 10} more" if len(off) > 10 else ""
            problems.insert(
                0,
                Problem(
                    "ledger_imbalance",
                    f"journal {draft.batch_key} does not balance: debits {draft.debits} != "
                    f"credits {draft.credits} (difference {draft.debits - draft.credits})"
                    + (f"; {detail}{more}" if detail else ""),
                ),
            )
        drafts.append(replace(draft, problems=tuple(dict.fromkeys(problems))))
    return drafts
