"""The money of a SHOPLINE order, computed as SHOPLINE returns it (pure: no I/O, no store).

:func:`price_order` takes an order spec and the variants its lines name and answers every money
field of the order: line prices and ``tax_lines``, ``discount_allocations``, ``discount_codes``,
``discount_applications``, the shipping line's ``price``/``discounted_price``, the order's
``tax_lines``, ``subtotal_price``, ``total_discounts``, ``total_tax``, ``total_price``,
``current_total_price`` and ``total_outstanding`` (each with its ``*_set`` twin).

The spec (every key optional except ``line_items``)::

    line_items[i]:      quantity, price (unit list price; the variant's when absent),
                        discount (amount off the whole line, e.g. "5.00"; the official SDK's
                        line_items[].discount_price.amount), discount_title,
                        tax_line {title, rate, price?} (overrides the variant's tax)
    discount_code:      {code, type: percentage | fixed_amount, value}: allocated to lines
    order_discount:     an amount off the order that no line carries (the SDK's
                        price_info.current_extra_total_discounts), order_discount_title
    shipping_price:     the shipping line's list price (default "0.00")
    shipping_discounted_price: what was charged for shipping ("0.00" = free delivery)
    shipping_code:      the code that discounted shipping (a ``type: shipping`` discount code)
    shipping_tax_line:  {title, rate, price?} (default VAT 20%)
    taxes_included:     true (UK: prices include VAT) or false (tax is added on top)

``variants[i]`` is the variant of ``line_items[i]``: its ``price``, ``taxable`` and tax title
(``_vat_title``, or ``tax_title``) are used when the line does not override them.

Rules, each checked by tests (``tests/sandbox/test_shopline_pricing.py``):

- Line tax is computed on the line's amount after its ``discount_allocations``: the VAT
  contained in it when ``taxes_included``, else ``rate × amount`` added on top. Half-up to
  the penny per line, as SHOPLINE shows per-line tax.
- A percentage code takes ``round(line amount × value %)`` off each line; a fixed code is
  spread over the lines pro rata by amount, the pennies left by rounding going to the largest
  remainders, so the allocations add up to the code's amount exactly.
- ``total_discounts`` = line allocations + the unallocated order discount + the shipping
  discount ([I] Shopify-like: SHOPLINE's own ``total_discounts`` is documented without saying
  whether shipping discounts count; the finance ledger reads it this way).
- ``subtotal_price`` = Σ(price × quantity) − line allocations − unallocated order discount.
- ``total_price`` = ``subtotal_price`` + charged shipping (+ ``total_tax`` when taxes are not
  included). Hence, tax-inclusive: total = Σ(price × qty) − total_discounts + shipping list price
  = Σ(price × qty) − goods discounts + charged shipping.
- [I] An unallocated order discount does not change any line's tax: SHOPLINE's tax treatment
  of it is unknown, and a line's ``tax_lines`` only reflect that line's allocations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)
#: The tax titles the demo store uses and their rates (the demo mapping maps all three).
TAX_RATES: dict[str, Decimal] = {
    "VAT 20%": Decimal("0.20"),
    "VAT 5%": Decimal("0.05"),
    "VAT 0%": Decimal("0"),
}
DEFAULT_TAX_TITLE = "VAT 20%"
SHIPPING_TAX_TITLE = "VAT 20%"


class PricingError(ValueError):
    """A spec that cannot be priced (negative amounts, a discount larger than the order...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def cents(value: Any, field: str = "amount") -> Decimal:
    """A money amount (string, int, float or Decimal) rounded half-up to the penny."""
    if isinstance(value, bool) or value is None:
        raise PricingError(field, "is invalid")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise PricingError(field, "is invalid") from None
    if not amount.is_finite():
        raise PricingError(field, "is invalid")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal | str | int) -> str:
    """Money as SHOPLINE writes it: a string with two decimals."""
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def money_set(value: Decimal | str, currency: str) -> dict[str, Any]:
    """The ``*_set`` twin of a money value."""
    amount = money(value)
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def tax_of(amount: Decimal, rate: Decimal, *, included: bool) -> Decimal:
    """Tax of ``amount``: contained in it when ``included``, else added on top; to the penny."""
    tax = amount * rate / (1 + rate) if included else amount * rate
    return tax.quantize(CENT, rounding=ROUND_HALF_UP)


def _rate(value: Any, title: str) -> Decimal:
    if value in (None, ""):
        return TAX_RATES.get(title, TAX_RATES[DEFAULT_TAX_TITLE])
    try:
        rate = Decimal(str(value))
    except ArithmeticError:
        raise PricingError("tax_line.rate", "is invalid") from None
    if not rate.is_finite() or rate < 0 or rate > 1:
        raise PricingError("tax_line.rate", "must be between 0 and 1")
    return rate


def _spread(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``total`` split pro rata over ``weights`` to the penny, summing to ``total`` exactly."""
    whole = sum(weights, ZERO)
    if whole <= 0 or total <= 0:
        return [ZERO for _ in weights]
    pennies = int((total / CENT).to_integral_value())
    raw = [Decimal(pennies) * w / whole for w in weights]
    floors = [int(r) for r in raw]
    left = pennies - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * CENT for f in floors]


def _tax_line(kind: str, title: str, rate: Decimal, amount: Decimal, currency: str) -> dict:
    return {
        "type": kind,
        "title": title,
        "rate": float(rate),
        "price": money(amount),
        "price_set": money_set(amount, currency),
    }


def price_order(
    spec: Mapping[str, Any], variants: Sequence[Mapping[str, Any]], *, currency: str = "GBP"
) -> dict[str, Any]:
    """Every money field of the order ``spec`` describes (see the module docstring).

    Returns a dict with ``line_items`` (one per spec line, in order: ``price``, ``price_set``,
    ``quantity``, ``taxable``, ``tax_lines``, ``discount_allocations``), ``shipping_lines`` (one:
    ``price``, ``discounted_price``, their sets, ``tax_lines``, ``discount_allocations``) and the
    order-level fields ``taxes_included``, ``discount_codes``, ``discount_applications``,
    ``tax_lines``, ``total_line_items_price``, ``subtotal_price``, ``total_discounts``,
    ``total_shipping_price_set``, ``total_tax``, ``total_price``, ``current_total_price`` and
    ``total_outstanding`` (with ``*_set`` twins). Raises :class:`PricingError` on a spec that
    cannot be priced. Pure: the same inputs always give the same answer.
    """
    lines_in = list(spec.get("line_items") or [])
    if not lines_in:
        raise PricingError("line_items", "can't be blank")
    if len(variants) != len(lines_in):
        raise PricingError("line_items", "each line needs its variant")
    included = spec.get("taxes_included", True) is not False

    # -- each line's list price, tax title and manual discount --------------------------------
    applications: list[dict[str, Any]] = []
    discount_codes: list[dict[str, Any]] = []
    grosses: list[Decimal] = []
    quantities: list[int] = []
    taxes: list[tuple[str, Decimal, Decimal | None]] = []
    taxables: list[bool] = []
    allocations: list[list[tuple[Decimal, int]]] = []
    for i, (line, variant) in enumerate(zip(lines_in, variants, strict=True)):
        quantity = line.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise PricingError("quantity", "must be an integer of at least 1")
        price = cents(
            line.get("price") if line.get("price") not in (None, "") else variant.get("price"),
            "price",
        )
        if price < 0:
            raise PricingError("price", "must not be negative")
        tax_in = line.get("tax_line") or {}
        title = str(
            tax_in.get("title")
            or variant.get("tax_title")
            or variant.get("_vat_title")
            or DEFAULT_TAX_TITLE
        )
        taxable = bool(line.get("taxable", variant.get("taxable", True)))
        rate = _rate(tax_in.get("rate"), title) if taxable else ZERO
        fixed_tax = cents(tax_in["price"], "tax_line.price") if tax_in.get("price") else None
        grosses.append(price * quantity)
        quantities.append(quantity)
        taxes.append((title, rate, fixed_tax))
        taxables.append(taxable)
        allocations.append([])
        discount = line.get("discount")
        if discount not in (None, "", 0, "0", "0.00"):
            amount = cents(discount, "line_items.discount")
            if amount < 0 or amount > grosses[i]:
                raise PricingError("line_items.discount", "must be between 0 and the line's price")
            if amount > 0:
                applications.append(
                    {
                        "type": "manual",
                        "title": line.get("discount_title") or "Line discount",
                        "description": line.get("discount_title") or "Line discount",
                        "value": money(amount),
                        "value_type": "fixed_amount",
                        "allocation_method": "one",
                        "target_selection": "explicit",
                        "target_type": "line_item",
                    }
                )
                allocations[i].append((amount, len(applications) - 1))

    # -- a discount code allocated across the lines -------------------------------------------
    code = spec.get("discount_code")
    if code:
        kind = code.get("type", "percentage")
        value = cents(code.get("value"), "discount_code.value")
        left = [
            g - sum((a for a, _ in al), ZERO) for g, al in zip(grosses, allocations, strict=True)
        ]
        if kind == "percentage":
            if not ZERO < value <= 100:
                raise PricingError("discount_code.value", "must be a percentage in (0, 100]")
            shares = [(rest * value / 100).quantize(CENT, rounding=ROUND_HALF_UP) for rest in left]
        elif kind == "fixed_amount":
            if value <= 0:
                raise PricingError("discount_code.value", "must be positive")
            shares = _spread(min(value, sum(left, ZERO)), left)
        else:
            raise PricingError("discount_code.type", "must be percentage or fixed_amount")
        applications.append(
            {
                "type": "discount_code",
                "code": str(code.get("code") or "CODE"),
                "title": str(code.get("code") or "CODE"),
                "description": str(code.get("code") or "CODE"),
                "value": format(value, "f"),
                "value_type": kind,
                "allocation_method": "across",
                "target_selection": "all",
                "target_type": "line_item",
            }
        )
        index = len(applications) - 1
        for i, share in enumerate(shares):
            if share > 0:
                allocations[i].append((share, index))
        discount_codes.append(
            {
                "code": str(code.get("code") or "CODE"),
                "amount": money(sum(shares, ZERO)),
                "type": kind,
            }
        )

    # -- lines: discounted amount and tax on it ------------------------------------------------
    line_out: list[dict[str, Any]] = []
    tax_totals: dict[str, tuple[Decimal, Decimal]] = {}
    line_discounts = ZERO
    line_tax_total = ZERO
    gross_total = ZERO
    for i, gross in enumerate(grosses):
        allocated = sum((a for a, _ in allocations[i]), ZERO)
        title, rate, fixed_tax = taxes[i]
        tax = (
            fixed_tax
            if fixed_tax is not None
            else tax_of(gross - allocated, rate, included=included)
        )
        line_discounts += allocated
        line_tax_total += tax
        gross_total += gross
        old = tax_totals.get(title, (rate, ZERO))
        tax_totals[title] = (old[0], old[1] + tax)
        unit = gross / quantities[i]
        line_out.append(
            {
                "price": money(unit),
                "price_set": money_set(unit, currency),
                "quantity": quantities[i],
                "taxable": taxables[i],
                "tax_lines": [_tax_line("product_tax", title, rate, tax, currency)],
                "discount_allocations": [
                    {
                        "amount": money(amount),
                        "amount_set": money_set(amount, currency),
                        "discount_application_index": index,
                    }
                    for amount, index in allocations[i]
                ],
            }
        )

    # -- an order discount no line carries -----------------------------------------------------
    order_discount = ZERO
    if spec.get("order_discount") not in (None, "", 0, "0", "0.00"):
        order_discount = cents(spec["order_discount"], "order_discount")
        if order_discount < 0 or order_discount > gross_total - line_discounts:
            raise PricingError("order_discount", "must be between 0 and the discounted subtotal")
        if order_discount > 0:
            title = spec.get("order_discount_title") or "Order discount"
            applications.append(
                {
                    "type": "manual",
                    "title": title,
                    "description": title,
                    "value": money(order_discount),
                    "value_type": "fixed_amount",
                    "allocation_method": "across",
                    "target_selection": "all",
                    "target_type": "line_item",
                }
            )

    # -- shipping ------------------------------------------------------------------------------
    ship_price = cents(spec.get("shipping_price") or "0.00", "shipping_price")
    charged_in = spec.get("shipping_discounted_price")
    charged = (
        ship_price if charged_in in (None, "") else cents(charged_in, "shipping_discounted_price")
    )
    if ship_price < 0 or charged < 0 or charged > ship_price:
        raise PricingError("shipping_discounted_price", "must be between 0 and the shipping price")
    ship_discount = ship_price - charged
    ship_allocations: list[dict[str, Any]] = []
    if ship_discount > 0:
        ship_code = spec.get("shipping_code")
        applications.append(
            {
                "type": "discount_code" if ship_code else "manual",
                **({"code": str(ship_code)} if ship_code else {}),
                "title": str(ship_code or "Shipping discount"),
                "description": str(ship_code or "Shipping discount"),
                "value": money(ship_discount),
                "value_type": "fixed_amount",
                "allocation_method": "each",
                "target_selection": "all",
                "target_type": "shipping_line",
            }
        )
        ship_allocations.append(
            {
                "amount": money(ship_discount),
                "amount_set": money_set(ship_discount, currency),
                "discount_application_index": len(applications) - 1,
            }
        )
        if ship_code:
            discount_codes.append(
                {"code": str(ship_code), "amount": money(ship_discount), "type": "shipping"}
            )
    ship_tax_in = spec.get("shipping_tax_line") or {}
    ship_title = str(ship_tax_in.get("title") or SHIPPING_TAX_TITLE)
    ship_rate = _rate(ship_tax_in.get("rate"), ship_title)
    ship_tax = (
        cents(ship_tax_in["price"], "shipping_tax_line.price")
        if ship_tax_in.get("price")
        else tax_of(charged, ship_rate, included=included)
    )
    if ship_tax:
        old = tax_totals.get(ship_title, (ship_rate, ZERO))
        tax_totals[ship_title] = (old[0], old[1] + ship_tax)

    # -- order totals ----------------------------------------------------------------------------
    subtotal = gross_total - line_discounts - order_discount
    total_tax = line_tax_total + ship_tax
    total = subtotal + charged + (ZERO if included else total_tax)
    total_discounts = line_discounts + order_discount + ship_discount
    out: dict[str, Any] = {
        "taxes_included": included,
        "line_items": line_out,
        "shipping_lines": [
            {
                "price": money(ship_price),
                "price_set": money_set(ship_price, currency),
                "discounted_price": money(charged),
                "discounted_price_set": money_set(charged, currency),
                "tax_lines": [_tax_line("shipping_tax", ship_title, ship_rate, ship_tax, currency)],
                "discount_allocations": ship_allocations,
            }
        ],
        "discount_codes": discount_codes,
        "discount_applications": applications,
        "tax_lines": [
            {
                "title": title,
                "rate": float(rate),
                "price": money(amount),
                "price_set": money_set(amount, currency),
            }
            for title, (rate, amount) in sorted(tax_totals.items())
        ],
    }
    for key, value in (
        ("total_line_items_price", gross_total),
        ("subtotal_price", subtotal),
        ("total_discounts", total_discounts),
        ("total_tax", total_tax),
        ("total_price", total),
        ("current_total_price", total),
        ("total_outstanding", total),
    ):
        out[key] = money(value)
        out[f"{key}_set"] = money_set(value, currency)
    # [I] Shopify-like: the shipping list price, before shipping discounts.
    out["total_shipping_price_set"] = money_set(ship_price, currency)
    return out


def goods_discounts(priced: Mapping[str, Any]) -> Decimal:
    """Discounts on goods only: ``total_discounts`` less what came off the shipping lines."""
    shipping = sum(
        (Decimal(s["price"]) - Decimal(s["discounted_price"]) for s in priced["shipping_lines"]),
        ZERO,
    )
    return Decimal(priced["total_discounts"]) - shipping
