"""One SHOPLINE order → one Stokly v2 sale order payload, under a client's mapping (no I/O).

The sync fetches what translation needs to know of Stokly (items by SKU, locations by name) and
passes it in as a `StoklyCatalogue`; the customer is resolved by the sync afterwards and added
with `SaleOrderDraft.payload_for`. Every problem of an order is collected before giving up, so
one `OrderUntranslatable` names them all and operations fix an order in one go, not one
problem per run.

Money is `Decimal` from SHOPLINE's strings to the payload (the Stokly client writes Decimals as
JSON numbers). Stokly's ``display*`` amounts are tax-inclusive, as a UK shop shows them: with
``taxes_included`` (SHOPLINE's UK default) they are SHOPLINE's prices as they are; otherwise the
line's tax is added.

What the sale order carries (the rules of `translate_order`):

* **Units to ship.** A line carries the units paid and not refunded (`shippable_quantities`):
  its quantity less what ``refunds[].refund_line_items`` give back when the order carries its
  refunds ([I]: Shopify's shape; SHOPLINE documents the refunds endpoint, not the key on the
  order), and never more than SHOPLINE's ``fulfillable_quantity`` [C] when it is given (the only
  figure when the refunds are not on the order). A line refunded entirely is left out and listed
  in ``SaleOrderDraft.refunded``; an order with nothing left to ship is not created.
* **Money of a refunded unit.** A line's price, tax and discount are shared between the units
  kept and the units refunded by quantity (to the penny, `stokline.mapping.money.allocate`);
  the sale order shows only the units kept. Its payments stay what the buyer paid: the money
  given back is the payments sync's refund payment, so a credit note for a refund made before
  the import must not credit those goods again (they never were on the sale order).
* **Discounts.** A line's own ``discount_allocations`` are its discount; a shipping line costs
  its ``discounted_price`` when SHOPLINE gives one (``0.00`` included), else its ``price``. An
  order-level discount no line carries — ``total_discounts`` beyond the lines' allocations and
  the shipping discounts (the rule the ledger uses), or, without ``total_discounts``, the
  ``discount_applications`` on lines when no line has an allocation — is spread over the
  order's lines in proportion to their totals after their own discounts, to the penny, so that
  the sale order's total is what the buyer paid. A never-synced line (a gift card) takes its
  share too, so the lines on the sale order carry exactly theirs.
* **Delivery.** A line is collected only when SHOPLINE says ``requires_shipping: false``;
  omitted or null means it is delivered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stokline.config.models import Location
from stokline.config.models import Mapping as ClientMapping
from stokline.mapping.money import allocate, minor_unit
from stokline.mapping.translate import (
    SkuMatcher,
    Untranslatable,
    render_sale_order_fields,
    resolve_gateway,
    resolve_location,
    resolve_shipping,
    resolve_tax_class,
)

__all__ = [
    "NO_REFUNDS",
    "DraftLine",
    "OrderUntranslatable",
    "SaleOrderDraft",
    "StoklyCatalogue",
    "importable_statuses",
    "is_cancelled",
    "is_importable",
    "order_fingerprint",
    "refunded_before_import",
    "refunded_but_dispatched",
    "refunded_quantities",
    "refunded_still_to_ship",
    "shippable_quantities",
    "translate_order",
]

CENT = Decimal("0.01")
PAID_STATUSES = ("paid", "paid_overtime")


def importable_statuses(import_when: Iterable[str]) -> tuple[str, ...]:
    """The SHOPLINE financial statuses of orders the mapping imports: ``import_when``, and, when
    that takes ``paid`` orders, ``partially_refunded`` too. An order paid and then refunded in
    part still owes the buyer the rest of the goods; its refund reaches Stokly through the
    payments sync. The orders, stock and payments syncs all ask here, so that an order one of
    them imports is one the others wait for (and subtract from stock) while it is on its way."""
    wanted = tuple(dict.fromkeys(import_when))
    if "paid" in wanted and "partially_refunded" not in wanted:
        wanted += ("partially_refunded",)
    return wanted


def is_importable(financial_status: str | None, import_when: Iterable[str]) -> bool:
    """Whether an order of this financial status is one the mapping imports (see
    `importable_statuses`); cancellation is the caller's to check."""
    return financial_status in importable_statuses(import_when)


def is_cancelled(order: Mapping[str, Any]) -> bool:
    """Whether SHOPLINE's ``order`` (as a dict) is cancelled: its status says so, or it has a
    cancellation time (SHOPLINE sets one without the other in some answers)."""
    return order.get("status") == "cancelled" or bool(order.get("cancelled_at"))


def placed_at(order: Mapping[str, Any]) -> datetime | None:
    """When the buyer placed ``order``: its ``created_at`` (else ``processed_at``), or None when
    neither is there or readable as a date-time with an offset."""
    for key in ("created_at", "processed_at"):
        value = order.get(key)
        if isinstance(value, datetime):
            placed = value
        elif isinstance(value, str):
            try:
                placed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        else:
            continue
        if placed.tzinfo is not None:
            return placed
    return None


def before_go_live(order: Mapping[str, Any], import_from: datetime | None) -> bool:
    """Whether ``order`` was placed before the mapping's ``syncs.orders.import_from`` (and so is
    never imported). An order whose placing time cannot be read is not: translating it names
    the problem instead (`translate_order`), so a person decides."""
    if import_from is None:
        return False
    placed = placed_at(order)
    return placed is not None and placed < import_from


def refunded_before_import(financial_status: str | None, import_when: Iterable[str]) -> bool:
    """Paid (as the mapping imports) and then refunded in full: never created in Stokly, though
    one created before the refund (by a run killed before recording it) is still linked."""
    return financial_status == "refunded" and "paid" in set(import_when)


def money(value: Any) -> Decimal:
    """A SHOPLINE money value ("8.00", Decimal, int; a YAML float via its text) as Decimal."""
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class OrderUntranslatable(Untranslatable):
    """An order the mapping cannot translate; ``problems`` holds every reason, in order found.

    ``code`` is the first problem's code (lines are checked before shipping, payments and
    fields), so the exception goes to the team that must act first; the message names them all.
    """

    def __init__(self, problems: list[Untranslatable]):
        unique = list(dict.fromkeys((p.code, p.message) for p in problems))
        self.problems = [Untranslatable(code, message) for code, message in unique]
        super().__init__(unique[0][0], "; ".join(message for _, message in unique))


@dataclass(frozen=True)
class StoklyCatalogue:
    """What translation must know of Stokly: sellable items by SKU, locations by name."""

    matcher: SkuMatcher
    item_ids: Mapping[str, str]
    location_ids: Mapping[str, str]

    @classmethod
    def build(
        cls,
        mapping: ClientMapping,
        items: Iterable[tuple[str, str]],
        locations: Iterable[tuple[str, str]],
    ) -> StoklyCatalogue:
        """From (SKU, itemId) of orderable Stokly items and (name, locationId) of locations."""
        item_ids = dict(items)
        return cls(
            SkuMatcher(mapping, item_ids),
            item_ids,
            {name.strip().casefold(): location_id for name, location_id in locations},
        )

    def location_id(self, name: str) -> str | None:
        return self.location_ids.get(name.strip().casefold())


@dataclass(frozen=True)
class DraftLine:
    """A translated line, for summaries: both SKUs, quantity, tax class, line total."""

    shopline_sku: str
    stokly_sku: str
    quantity: int
    total: Decimal
    tax_class: str | None


@dataclass(frozen=True)
class SaleOrderDraft:
    """A sale order ready to create, and what the run reports and remembers about it."""

    order_id: str
    name: str
    payload: dict[str, Any]
    lines: tuple[DraftLine, ...]
    excluded: tuple[str, ...]
    location: str
    shipping_option: str | None
    total: Decimal
    fingerprint: dict[str, str] = field(default_factory=dict)
    refunded: tuple[str, ...] = ()

    @property
    def importable(self) -> bool:
        """False when no line is left to ship: every line is a never-sync SKU (a gift-card-only
        order) or was refunded before the import. Nothing to create then."""
        return bool(self.lines)

    def payload_for(self, customer_id: str | None) -> dict[str, Any]:
        """The payload with its Stokly customer (None: the order carries no customer)."""
        if customer_id is None:
            return dict(self.payload)
        return {**self.payload, "customer": {"customerId": customer_id}}

    def summary(self) -> dict[str, Any]:
        """One row for reports: no customer data, only what operations recognise the order by."""
        return {
            "order": self.name,
            "shopline_id": self.order_id,
            "items": ", ".join(f"{line.stokly_sku} x{line.quantity}" for line in self.lines),
            "excluded": ", ".join([*self.excluded, *(f"{r} (refunded)" for r in self.refunded)]),
            "total": str(self.total),
            "location": self.location,
            "shipping": self.shipping_option or "",
        }


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _positive_lines(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [li for li in order.get("line_items") or [] if int(li.get("quantity") or 0) > 0]


def _address_of(order: Mapping[str, Any]) -> Mapping[str, Any]:
    customer = order.get("customer") or {}
    addresses = customer.get("addresses") or [{}]
    return order.get("shipping_address") or order.get("billing_address") or addresses[0] or {}


def refunded_quantities(order: Mapping[str, Any]) -> dict[str, int] | None:
    """Units refunded per line id, from the refunds the order carries; None when it carries none
    (the key is absent or null: then SHOPLINE's ``fulfillable_quantity`` is all there is)."""
    refunds = order.get("refunds")
    if refunds is None:
        return None
    out: dict[str, int] = {}
    for refund in refunds:
        for item in refund.get("refund_line_items") or []:
            key = str(item.get("line_item_id"))
            out[key] = out.get(key, 0) + int(item.get("quantity") or 0)
    return out


def shippable_quantities(order: Mapping[str, Any]) -> dict[str, int]:
    """Units to ship per line id: paid and not refunded, never more than SHOPLINE's
    ``fulfillable_quantity`` when it gives one (see the module's rules)."""
    refunded = refunded_quantities(order) or {}
    out: dict[str, int] = {}
    for li in _positive_lines(order):
        key = str(li.get("id"))
        left = int(li["quantity"]) - refunded.get(key, 0)
        fulfillable = li.get("fulfillable_quantity")
        if fulfillable is not None:
            left = min(left, int(fulfillable))
        out[key] = max(left, 0)
    return out


def refunded_still_to_ship(
    order: Mapping[str, Any],
    stokly_lines: Iterable[tuple[str, int, int]],
    stokly_sku: Callable[[str], str | None],
) -> dict[str, int]:
    """Units per Stokly SKU that the sale order has yet to ship but SHOPLINE no longer sells.

    ``stokly_lines`` are the sale order's lines as (Stokly SKU, quantity, quantity dispatched),
    cancelled ones left out; ``stokly_sku`` maps a SHOPLINE SKU to its Stokly SKU (None: none).
    With the refunds on the order, what SHOPLINE sells is each line's quantity less its refunded
    units, and the sale order's units beyond it are refunded; of those, the ones not dispatched
    yet must not ship (the rest went out: a return). Without them, SHOPLINE's
    ``fulfillable_quantity`` is what it still expects to be shipped, and Stokly's undispatched
    units beyond it are the ones to stop (fulfilments reach SHOPLINE after Stokly ships, so the
    lag only ever makes SHOPLINE's figure the larger).
    """
    refunded = refunded_quantities(order)
    wanted: dict[str, int] = {}
    for li in _positive_lines(order):
        target = stokly_sku(str(li.get("sku") or ""))
        if target is None:
            continue
        if refunded is not None:
            left = int(li["quantity"]) - refunded.get(str(li.get("id")), 0)
        elif li.get("fulfillable_quantity") is not None:
            left = int(li["fulfillable_quantity"])
        else:
            left = int(li["quantity"])
        wanted[target] = wanted.get(target, 0) + max(left, 0)
    on_order: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for sku, quantity, dispatched in stokly_lines:
        on_order[sku] = on_order.get(sku, 0) + quantity
        waiting[sku] = waiting.get(sku, 0) + max(quantity - dispatched, 0)
    out: dict[str, int] = {}
    for sku, quantity in on_order.items():
        beyond = (quantity if refunded is not None else waiting[sku]) - wanted.get(sku, 0)
        if (stop := min(beyond, waiting[sku])) > 0:
            out[sku] = stop
    return out


def refunded_but_dispatched(
    order: Mapping[str, Any],
    stokly_lines: Iterable[tuple[str, int, int]],
    stokly_sku: Callable[[str], str | None],
) -> dict[str, int]:
    """Units per Stokly SKU that SHOPLINE refunded as not shipped and Stokly dispatched all the
    same: the buyer has both the goods and the money (a refund that landed while the parcel was
    being packed). Arguments as for `refunded_still_to_ship`.

    Only the refunds on the order say how a unit was refunded ([I]: Shopify's shape); without
    them nothing can be told apart from a return, and nothing is named. A refunded unit typed
    ``Returned`` (or restocked as a return) came back: a return, not this. Units refunded before
    the import were never on the sale order, so they are never taken for dispatched ones.
    """
    refunds = order.get("refunds")
    if not refunds:
        return {}
    sold: dict[str, int] = {}
    by_line: dict[str, str] = {}
    for li in _positive_lines(order):
        target = stokly_sku(str(li.get("sku") or ""))
        if target is None:
            continue
        by_line[str(li.get("id"))] = target
        sold[target] = sold.get(target, 0) + int(li["quantity"])
    unshipped: dict[str, int] = {}
    for refund in refunds:
        for item in refund.get("refund_line_items") or []:
            kind = item.get("type") or ("Returned" if item.get("restock_type") == "return" else "")
            target = by_line.get(str(item.get("line_item_id")))
            if target is not None and kind != "Returned":
                unshipped[target] = unshipped.get(target, 0) + int(item.get("quantity") or 0)
    dispatched: dict[str, int] = {}
    for sku, _, units in stokly_lines:
        dispatched[sku] = dispatched.get(sku, 0) + units
    out: dict[str, int] = {}
    for sku, units in dispatched.items():
        beyond = units - (sold.get(sku, 0) - unshipped.get(sku, 0))
        if sku in sold and (extra := min(beyond, unshipped.get(sku, 0))) > 0:
            out[sku] = extra
    return out


def order_fingerprint(order: Mapping[str, Any]) -> dict[str, str]:
    """Digests of what can change after import: the lines, the delivery, the notes, the refunds.

    Built from SHOPLINE's own values (not the translation), so changing the mapping never looks
    like an edit of the order. ``refunds`` digests the units refunded per line when the order
    carries its refunds, else its financial status once it says refunded (all SHOPLINE tells
    then); an order without refunds digests as one whose refunds list is empty.
    """
    lines = sorted(
        (
            str(li.get("id")),
            str(li.get("sku") or ""),
            int(li.get("quantity")),
            str(money(li.get("price"))),
        )
        for li in _positive_lines(order)
    )
    address = _address_of(order)
    delivery = {
        "address": {
            k: address.get(k)
            for k in (
                "first_name",
                "last_name",
                "address1",
                "address2",
                "city",
                "zip",
                "country_code",
            )
        },
        "shipping": [s.get("title") for s in order.get("shipping_lines") or []],
    }
    notes = {k: order.get(k) for k in ("note", "buyer_note", "tags")}
    refunded = refunded_quantities(order)
    if refunded is not None:
        refunds: Any = sorted((k, v) for k, v in refunded.items() if v)
    elif order.get("financial_status") in ("partially_refunded", "refunded"):
        refunds = order.get("financial_status")
    else:
        refunds = []
    return {
        "lines": _digest(lines),
        "delivery": _digest(delivery),
        "notes": _digest(notes),
        "refunds": _digest(refunds),
    }


NO_REFUNDS = _digest([])
"""The ``refunds`` digest of an order with nothing refunded: what a link recorded before
fingerprints had refunds was imported with."""


def order_location(order: Mapping[str, Any]) -> str | None:
    """The order-level SHOPLINE location: explicit, POS, then pickup before product locations."""
    if order.get("location_id"):
        return str(order["location_id"])
    if order.get("pos_location_id"):
        return str(order["pos_location_id"])
    listed = order.get("locations") or []
    for kind in ("pickupLocation", "posLocation", "productLocation"):
        for entry in listed:
            if entry.get("type") == kind and entry.get("location_id"):
                return str(entry["location_id"])
    return None


def _tax_classes(
    mapping: ClientMapping, tax_lines: Iterable[Mapping[str, Any]], what: str
) -> tuple[Decimal, list[str], list[Untranslatable]]:
    total, classes, problems = Decimal(0), [], []
    for tax in tax_lines:
        total += money(tax.get("price"))
        try:
            classes.append(resolve_tax_class(mapping, tax.get("title"), tax.get("rate")))
        except Untranslatable as exc:
            problems.append(Untranslatable(exc.code, f"{what}: {exc.message}"))
    return total, classes, problems


def _allocated(line: Mapping[str, Any]) -> Decimal:
    """The discount SHOPLINE allocated to ``line`` (its ``discount_allocations``)."""
    return sum((money(d.get("amount")) for d in line.get("discount_allocations") or []), Decimal(0))


def _line_value(line: Mapping[str, Any], taxes_included: bool) -> Decimal:
    """What ``line`` costs before discounts, tax-inclusive as Stokly shows it."""
    value = money(line.get("price")) * int(line["quantity"])
    if not taxes_included:
        value += sum((money(t.get("price")) for t in line.get("tax_lines") or []), Decimal(0))
    return value


def _shipping_charged(shipping_line: Mapping[str, Any]) -> Decimal:
    """A shipping line's price after its discount: ``discounted_price`` whenever SHOPLINE gives
    one, ``0.00`` (free delivery) included; else its ``price``."""
    discounted = shipping_line.get("discounted_price")
    return money(shipping_line.get("price") if discounted in (None, "") else discounted)


def _order_discount(
    order: Mapping[str, Any], lines: list[Mapping[str, Any]], values: list[Decimal]
) -> Decimal:
    """The order-level discount no line carries (see the module's rules), never negative."""
    allocated = sum((_allocated(li) for li in lines), Decimal(0))
    shipping = sum(
        (money(s.get("price")) - _shipping_charged(s) for s in order.get("shipping_lines") or []),
        Decimal(0),
    )
    stated = order.get("total_discounts")
    if stated not in (None, ""):
        return max(cents(money(stated) - allocated - shipping), Decimal(0))
    if allocated:
        return Decimal(0)
    goods = sum(values, Decimal(0))
    amount = Decimal(0)
    for application in order.get("discount_applications") or []:
        if (application.get("target_type") or "line_item") != "line_item":
            continue
        value = money(application.get("value"))
        if application.get("value_type") == "percentage":
            amount += cents(goods * value / 100)
        else:
            amount += value
    return min(max(cents(amount), Decimal(0)), max(goods, Decimal(0)))


def _kept(amount: Decimal, quantity: int, kept: int, unit: Decimal) -> Decimal:
    """The part of a line's ``amount`` that belongs to ``kept`` of its ``quantity`` units."""
    if kept >= quantity:
        return amount
    weights = [Decimal(kept), Decimal(quantity - kept)]
    return allocate(cents(amount), weights, unit)[0]


def _line(
    mapping: ClientMapping,
    catalogue: StoklyCatalogue,
    line: Mapping[str, Any],
    taxes_included: bool,
    problems: list[Untranslatable],
    *,
    spread: Decimal,
    kept: int,
    unit: Decimal,
) -> tuple[dict[str, Any], DraftLine, Location | None] | None:
    sku = str(line.get("sku") or "").strip()
    ordered = int(line["quantity"])
    label = f"line {sku or line.get('id')}"
    location = None
    try:
        location = resolve_location(mapping, line.get("location_id"))
    except Untranslatable as exc:
        problems.append(Untranslatable(exc.code, f"{label}: {exc.message}"))
    stokly_sku = None
    try:
        stokly_sku = catalogue.matcher.match(sku)
    except Untranslatable as exc:
        problems.append(exc)
    tax, classes, tax_problems = _tax_classes(mapping, line.get("tax_lines") or [], label)
    problems.extend(tax_problems)
    if stokly_sku is None or tax_problems:
        return None
    quantity = kept
    line_price = _kept(_line_value(line, taxes_included), ordered, kept, unit)
    discount = _kept(_allocated(line) + spread, ordered, kept, unit)
    tax = _kept(tax, ordered, kept, unit)
    total = line_price - discount
    payload = {
        "type": "item",
        "referenceId": catalogue.item_ids[stokly_sku],
        "quantity": quantity,
        "displayPrice": cents(line_price / quantity),
        "displayTax": cents(tax / quantity),
        "displayDiscount": cents(discount / quantity),
        "displayLinePrice": cents(line_price),
        "displayLineTax": cents(tax),
        "displayLineDiscount": cents(discount),
        "displayLineTotal": cents(total),
        # Only an explicit "no" is a collection: omitted (None in a model dump) is a delivery.
        "fulfilmentType": "collection" if line.get("requires_shipping") is False else "delivery",
    }
    tax_class = ",".join(dict.fromkeys(classes)) or None
    return payload, DraftLine(sku, stokly_sku, quantity, cents(total), tax_class), location


def _payments(mapping: ClientMapping, order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Payments taken, by Stokly method: from payment details, else the gateway and amount paid."""
    out: dict[int, Decimal] = {}
    details = [
        d
        for d in order.get("payment_details") or []
        if d.get("pay_status") in (None, *PAID_STATUSES)
    ]
    if details:
        for detail in details:
            method = resolve_gateway(mapping, detail.get("gateway")).stokly_method
            out[method] = out.get(method, Decimal(0)) + money(detail.get("pay_amount"))
    else:
        total = money(order.get("total_price") or order.get("current_total_price"))
        paid = total - money(order.get("total_outstanding"))
        names = order.get("payment_gateway_names") or [None]
        if paid > 0:
            out[resolve_gateway(mapping, names[0]).stokly_method] = paid
    return [{"method": method, "amount": cents(amount)} for method, amount in out.items()]


def _split_name(address: Mapping[str, Any], customer: Mapping[str, Any]) -> dict[str, str]:
    forename = address.get("first_name") or customer.get("first_name") or ""
    surname = address.get("last_name") or customer.get("last_name") or ""
    if not forename and not surname and address.get("name"):
        forename, _, surname = str(address["name"]).partition(" ")
    return {"forename": forename, "surname": surname}


def stokly_address(address: Mapping[str, Any]) -> dict[str, str]:
    """A SHOPLINE address in Stokly's shape (country as its ISO code)."""
    return {
        "line1": address.get("address1") or "",
        "line2": address.get("address2") or "",
        "city": address.get("city") or "",
        "region": address.get("province") or "",
        "country": address.get("country_code") or address.get("country") or "",
        "postcode": address.get("zip") or "",
    }


def translate_order(
    mapping: ClientMapping, order: Mapping[str, Any], catalogue: StoklyCatalogue
) -> SaleOrderDraft:
    """The Stokly sale order for ``order`` (a SHOPLINE order as JSON-like data).

    Lines with never-sync SKUs (gift cards, samples) are left out and listed in ``excluded``,
    units refunded before the import in ``refunded`` (see the module's rules for their money);
    payments stay what the buyer paid. Raises `OrderUntranslatable` naming every problem.
    """
    problems: list[Untranslatable] = []
    order_id = str(order["id"])
    name = str(order.get("name") or order_id)
    settings = mapping.syncs.orders
    if settings is not None and settings.import_from is not None and placed_at(order) is None:
        problems.append(
            Untranslatable(
                "poison_message",
                "the order has no readable created_at: cannot tell whether it was placed before "
                f"syncs.orders.import_from ({settings.import_from.isoformat()})",
            )
        )
    taxes_included = order.get("taxes_included") is not False
    currency = order.get("currency") or mapping.client.currency
    unit = minor_unit(currency)
    positive = _positive_lines(order)
    values = [max(_line_value(li, taxes_included) - _allocated(li), Decimal(0)) for li in positive]
    extra = _order_discount(order, positive, values)
    spread = allocate(extra, values, unit) if positive and extra else [Decimal(0)] * len(positive)
    to_ship = shippable_quantities(order)
    items, lines, excluded, refunded, line_locations = [], [], [], [], []
    for line, share in zip(positive, spread, strict=True):
        sku = str(line.get("sku") or "")
        ordered = int(line["quantity"])
        if sku and catalogue.matcher.excluded(sku):
            excluded.append(f"{sku} x{ordered}")
            continue
        kept = to_ship[str(line.get("id"))]
        if kept < ordered:
            refunded.append(f"{sku or line.get('id')} x{ordered - kept}")
        if kept == 0:
            continue
        translated = _line(
            mapping,
            catalogue,
            line,
            taxes_included,
            problems,
            spread=share,
            kept=kept,
            unit=unit,
        )
        if translated is not None:
            items.append(translated[0])
            lines.append(translated[1])
            if translated[2] is not None:
                line_locations.append(translated[2])

    location: Location | None = None
    try:
        explicit = order_location(order)
        if explicit is not None or not line_locations:
            location = resolve_location(mapping, explicit)
        else:
            location = line_locations[0]
    except Untranslatable as exc:
        problems.append(exc)
    location_id = None
    if location is not None:
        location_id = catalogue.location_id(location.fulfilment_location)
        if location_id is None:
            problems.append(
                Untranslatable(
                    "unknown_location",
                    f"Stokly has no location named {location.fulfilment_location} (fulfil_from of"
                    f" SHOPLINE location {location.shopline_location})",
                )
            )

    shipping_lines = order.get("shipping_lines") or []
    shipping: dict[str, Any] = {}
    option = None
    if shipping_lines or any(li.get("requires_shipping") is not False for li in positive):
        first = shipping_lines[0] if shipping_lines else {}
        try:
            option = resolve_shipping(mapping, first.get("title"), first.get("code")).stokly_option
        except Untranslatable as exc:
            problems.append(exc)
        cost = sum((_shipping_charged(s) for s in shipping_lines), Decimal(0))
        tax, _, tax_problems = _tax_classes(
            mapping,
            [t for s in shipping_lines for t in s.get("tax_lines") or []],
            "shipping",
        )
        problems.extend(tax_problems)
        address = _address_of(order)
        shipping = {
            "name": _split_name(address, order.get("customer") or {}),
            "address": stokly_address(address),
            "option": option,
            "cost": cents(cost if taxes_included else cost + tax),
            "tax": cents(tax),
        }

    payments: list[dict[str, Any]] = []
    try:
        payments = _payments(mapping, order)
    except Untranslatable as exc:
        problems.append(exc)
    fields: dict[str, Any] = {}
    try:
        fields = render_sale_order_fields(mapping, order, order.get("customer"))
    except Untranslatable as exc:
        problems.append(exc)
    if problems:
        raise OrderUntranslatable(problems)

    created = order.get("created_at")
    payload: dict[str, Any] = {
        "stage": "order",
        "createdAt": created.isoformat() if hasattr(created, "isoformat") else created,
        "currency": currency,
        "sourceType": "other",
        "sourceId": mapping.connections.stokly.channel_id,
        "sourceReferenceId": order_id,
        **fields,
        "locationId": location_id,
        "items": items,
        "payments": payments,
    }
    if shipping:
        payload["shipping"] = shipping
    total = sum((line.total for line in lines), Decimal(0)) + (shipping.get("cost") or Decimal(0))
    return SaleOrderDraft(
        order_id=order_id,
        name=name,
        payload=payload,
        lines=tuple(lines),
        excluded=tuple(excluded),
        location=location.fulfilment_location if location else "",
        shipping_option=option,
        total=cents(total),
        fingerprint=order_fingerprint(order),
        refunded=tuple(refunded),
    )
