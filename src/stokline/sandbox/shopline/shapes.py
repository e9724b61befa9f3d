"""Order shapes real SHOPLINE stores produce, drawn from a ``random.Random``: one shared place.

The storefront simulator (``storefront.py``), the tests (through Hypothesis'
``st.randoms(use_true_random=False)``) and the benchmarks draw orders here, so every shape below
reaches ``make demo``, the property tests and the load runs alike. Nothing here imports
Hypothesis or does I/O: callers pass a seeded ``random.Random`` and send what they draw to the
sandbox's control API (``/_sandbox/orders`` and the per-order endpoints).

Shapes of an order (:func:`draw_order`), each drawn independently with its default frequency
(:data:`ORDER_MIX`; pass ``mix={...}`` to change any):

==================  =====  ====================================================================
shape               freq.  what the order looks like
==================  =====  ====================================================================
line_discount       0.12   one line carries a manual discount (``discount_allocations``)
discount_code       0.15   a code (10/15/20 % or £5/£10 off) allocated across the lines
order_discount      0.06   an order-level discount no line carries (``total_discounts`` only)
free_shipping       0.10   shipping discounted to "0.00" by the code FREEDEL
shipping_discount   0.04   shipping discounted in part (e.g. 6.95 charged 3.00)
multi_rate          0.20   a VAT 5 % or VAT 0 % line beside VAT 20 % ones (needs ``tax_titles``)
phone_only          0.12   the buyer has a phone and no email
omit_keys           0.05   optional keys left out of the order (``omit: "keys"``)
omit_null           0.03   optional keys sent as null (``omit: "null"``)
unpaid              0.12   placed unpaid, paid later (``pay`` follow-up)
authorized          0.10   authorised at checkout, captured later in 1–3 parts (``capture``)
taxes_excluded      0.00   prices exclude tax, tax added on top (UK stores include VAT)
==================  =====  ====================================================================

Follow-ups of a placed order (:func:`draw_follow_ups`), from the order SHOPLINE returned, in the
order they happen (:data:`FOLLOW_UP_MIX`):

======================  =====  ================================================================
follow-up               freq.  action
======================  =====  ================================================================
pay                     1.00   an unpaid order is paid later (always, for ``unpaid`` orders)
capture                 1.00   an authorised order is captured in 1–3 parts on different days
                               (``days_later`` 0–3); the parts may reuse the authorisation's
                               deal id (``reuse_deal_id``, 30 %)
edit                    0.04   the merchant adds a line or raises a quantity (paid orders: the
                               difference is captured after); unpaid orders may also lose one
refund_before_dispatch  0.05   some units of a line refunded before dispatch (``Unshipped``,
                               ``restock_type`` cancel or no_restock)
refund_after_dispatch   0.04   units returned after dispatch (``Returned``, return/no_restock)
refund_amount           0.04   a goodwill refund by amount (no lines)
refund_shipping         0.03   shipping refunded alone
refund_full             0.02   everything refunded
cancel                  0.03   the merchant cancels (refunds what was paid)
======================  =====  ================================================================

Each action is a dict with ``action`` and what the control API needs (see :func:`draw_follow_ups`).
Amounts are strings with two decimals; timestamps are left to the caller (``days_later``).

The signatures of :func:`draw_order` and :func:`draw_follow_ups` are stable: property tests
elsewhere build on them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stokline.sandbox.shopline.quirks import DEFAULT_SHIPPING_PRICE, SHIPPING_PRICES

ORDER_MIX: dict[str, float] = {
    "line_discount": 0.12,
    "discount_code": 0.15,
    "order_discount": 0.06,
    "free_shipping": 0.10,
    "shipping_discount": 0.04,
    "multi_rate": 0.20,
    "phone_only": 0.12,
    "omit_keys": 0.05,
    "omit_null": 0.03,
    "unpaid": 0.12,
    "authorized": 0.10,
    "taxes_excluded": 0.0,
}
FOLLOW_UP_MIX: dict[str, float] = {
    "edit": 0.04,
    "refund_before_dispatch": 0.05,
    "refund_after_dispatch": 0.04,
    "refund_amount": 0.04,
    "refund_shipping": 0.03,
    "refund_full": 0.02,
    "cancel": 0.03,
}
#: Shipping methods the demo mapping maps (prices in ``quirks.SHIPPING_PRICES``).
SHIPPING_TITLES = (
    "Royal Mail Tracked 48",
    "Royal Mail Tracked 48",
    "DPD Next Day",
    "Click & Collect Bristol",
)
#: Gateways the demo mapping maps.
GATEWAYS = ("shopline_payments", "shopline_payments", "shopline_payments", "paypal", "klarna")
NEVER_SOLD = ("GIFT-CARD-", "SAMPLE-")
_NAMES = ("Ada", "Alan", "Grace", "Tim", "Mary", "Rosalind", "Charles", "Dorothy", "Kath")
_CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _happens(rng: random.Random, mix: Mapping[str, float], shape: str) -> bool:
    return rng.random() < mix.get(shape, 0.0)


def draw_buyer(rng: random.Random, *, phone_only: bool = False) -> dict[str, Any]:
    """A storefront buyer: mostly an email, sometimes a phone too, or (``phone_only``) a phone."""
    name = rng.choice(_NAMES)
    buyer: dict[str, Any] = {"first_name": name, "last_name": "Buyer"}
    if phone_only:
        buyer["phone"] = f"7700900{rng.randint(0, 999):03d}"
        return buyer
    buyer["email"] = f"{name.lower()}.buyer{rng.randint(1, 400)}@example.com"
    if rng.random() < 0.3:
        buyer["phone"] = f"7700900{rng.randint(0, 999):03d}"
    return buyer


def draw_order(
    rng: random.Random,
    skus: Sequence[str],
    *,
    tax_titles: Mapping[str, str] | None = None,
    mix: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A body for ``POST /_sandbox/orders`` with a realistic mix of shapes (see the module doc).

    ``skus`` are the SKUs a buyer may choose (gift cards and samples are skipped);
    ``tax_titles`` maps SKUs to their tax title (``GET /_sandbox/skus`` answers it) so that
    ``multi_rate`` orders can pick a VAT 5 % or 0 % line; ``mix`` overrides :data:`ORDER_MIX`.
    The body's ``shapes`` key lists the shapes drawn (the control API ignores it).
    """
    weights = {**ORDER_MIX, **(mix or {})}
    sellable = sorted({s for s in skus if not s.upper().startswith(NEVER_SOLD)})
    if not sellable:
        raise ValueError("no sellable SKUs to draw an order from")
    titles = dict(tax_titles or {})
    shapes: list[str] = []
    count = min(rng.choice((1, 1, 2, 3)), len(sellable))
    chosen = rng.sample(sellable, count)
    if titles and _happens(rng, weights, "multi_rate"):
        other = sorted(s for s in sellable if titles.get(s, "VAT 20%") != "VAT 20%")
        standard = sorted(s for s in sellable if titles.get(s, "VAT 20%") == "VAT 20%")
        if other and standard:
            chosen = [rng.choice(standard), rng.choice(other)]
            if rng.random() < 0.4 and len(sellable) > 2:
                extra = rng.choice(sellable)
                if extra not in chosen:
                    chosen.append(extra)
            shapes.append("multi_rate")
    lines: list[dict[str, Any]] = [
        {"sku": sku, "quantity": rng.choice((1, 1, 1, 2, 3))} for sku in chosen
    ]
    body: dict[str, Any] = {"lines": lines}
    if _happens(rng, weights, "line_discount"):
        rng.choice(lines)["discount"] = rng.choice(("1.00", "2.50", "5.00"))
        shapes.append("line_discount")
    if _happens(rng, weights, "discount_code"):
        if rng.random() < 0.6:
            body["discount_code"] = {
                "code": rng.choice(("SPRING10", "WELCOME15", "VIP20")),
                "type": "percentage",
                "value": rng.choice(("10", "15", "20")),
            }
        else:
            body["discount_code"] = {
                "code": rng.choice(("FIVEOFF", "TENOFF")),
                "type": "fixed_amount",
                "value": rng.choice(("5.00", "10.00")),
            }
        shapes.append("discount_code")
    if _happens(rng, weights, "order_discount"):
        body["order_discount"] = rng.choice(("2.00", "3.50", "7.50"))
        shapes.append("order_discount")
    title = rng.choice(SHIPPING_TITLES)
    body["shipping_title"] = title
    list_price = Decimal(SHIPPING_PRICES.get(title, DEFAULT_SHIPPING_PRICE))
    if list_price > 0 and _happens(rng, weights, "free_shipping"):
        body["shipping_discounted_price"] = "0.00"
        body["shipping_code"] = "FREEDEL"
        shapes.append("free_shipping")
    elif list_price > 1 and _happens(rng, weights, "shipping_discount"):
        body["shipping_discounted_price"] = _money(list_price - Decimal(rng.choice((1, 2, 3))))
        shapes.append("shipping_discount")
    phone_only = _happens(rng, weights, "phone_only")
    if phone_only:
        shapes.append("phone_only")
    body["customer"] = draw_buyer(rng, phone_only=phone_only)
    body["gateway"] = rng.choice(GATEWAYS)
    if _happens(rng, weights, "taxes_excluded"):
        body["taxes_included"] = False
        shapes.append("taxes_excluded")
    roll = rng.random()
    unpaid = weights.get("unpaid", 0.0)
    if roll < unpaid:
        body["paid"] = False
        shapes.append("unpaid")
    elif roll < unpaid + weights.get("authorized", 0.0):
        body["paid"] = False
        body["authorize"] = True
        shapes.append("authorized")
    else:
        body["paid"] = True
    if _happens(rng, weights, "omit_keys"):
        body["omit"] = "keys"
        shapes.append("omit_keys")
    elif _happens(rng, weights, "omit_null"):
        body["omit"] = "null"
        shapes.append("omit_null")
    if "omit" not in body and rng.random() < 0.1:
        body["buyer_note"] = "Please leave in the porch"
    body["shapes"] = shapes
    return body


def _outstanding(order: Mapping[str, Any]) -> Decimal:
    return Decimal(str(order.get("total_outstanding") or "0"))


def _split(rng: random.Random, amount: Decimal) -> list[Decimal]:
    """``amount`` in 1–3 parts of whole pennies, summing to it exactly."""
    parts = rng.choice((1, 2, 2, 3))
    pennies = int(amount / _CENT)
    if pennies < parts * 100:
        return [amount]
    cuts = sorted(rng.sample(range(100, pennies - 99), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, pennies]
    out = [Decimal(edges[i + 1] - edges[i]) * _CENT for i in range(parts)]
    return [p for p in out if p > 0]


def draw_follow_ups(
    rng: random.Random,
    order: Mapping[str, Any],
    *,
    skus: Sequence[str] = (),
    mix: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """What happens to a placed order afterwards, in order (see the module doc).

    ``order`` is the order the sandbox returned (its ``financial_status``, ``line_items`` ids and
    quantities, ``total_outstanding``, ``shipping_lines``); ``skus`` are SKUs an edit may add.
    Actions:

    - ``{"action": "pay"}``: ``POST /_sandbox/orders/{id}/pay``
    - ``{"action": "capture", "amount": "40.00", "days_later": 1, "reuse_deal_id": bool}``:
      ``POST /_sandbox/orders/{id}/capture`` (the last part captures what is left)
    - ``{"action": "edit", "quantities": {line_id: n}, "add": [{sku, quantity}],
      "remove": [line_id]}``: ``POST /_sandbox/orders/{id}/edit``
    - ``{"action": "refund", "when": "before_dispatch" | "after_dispatch" | "any",
      "body": {...}}``: ``POST /_sandbox/orders/{id}/refund`` with ``body`` (lines with
      ``type``/``restock_type``, ``amount``, ``shipping``); ``after_dispatch`` ones wait until
      the order is fulfilled, ``before_dispatch`` ones are made at once
    - ``{"action": "cancel"}``: ``POST /_sandbox/orders/{id}/cancel``

    At most one refund-or-cancel is drawn, so the actions never ask for more than was paid.
    """
    weights = {**FOLLOW_UP_MIX, **(mix or {})}
    actions: list[dict[str, Any]] = []
    status = order.get("financial_status")
    if status == "unpaid":
        actions.append({"action": "pay"})
    lines = [li for li in order.get("line_items") or [] if int(li.get("quantity") or 0) > 0]
    sellable = sorted(s for s in skus if not s.upper().startswith(NEVER_SOLD))
    edited_up = False
    if lines and _happens(rng, weights, "edit"):
        edit: dict[str, Any] = {"action": "edit", "quantities": {}, "add": [], "remove": []}
        roll = rng.random()
        if status == "unpaid" and roll < 0.3 and len(lines) > 1:
            edit["remove"].append(str(rng.choice(lines)["id"]))
        elif status == "unpaid" and roll < 0.5 and any(li["quantity"] > 1 for li in lines):
            line = rng.choice([li for li in lines if li["quantity"] > 1])
            edit["quantities"][str(line["id"])] = int(line["quantity"]) - 1
        elif sellable and roll < 0.75:
            edit["add"].append({"sku": rng.choice(sellable), "quantity": 1})
            edited_up = True
        else:
            line = rng.choice(lines)
            edit["quantities"][str(line["id"])] = int(line["quantity"]) + 1
            edited_up = True
        actions.insert(0, edit)  # the merchant edits before anything is captured or paid
        # Refunds drawn below are of the order as edited: never of a line the edit removed,
        # nor of more units than the edit left.
        lines = [
            {**li, "quantity": edit["quantities"].get(str(li["id"]), li["quantity"])}
            for li in lines
            if str(li["id"]) not in edit["remove"]
        ]
    if status == "authorized":
        days = 0
        parts = _split(rng, _outstanding(order))
        reuse = rng.random() < 0.3
        for index, part in enumerate(parts):
            days += rng.choice((0, 1, 1, 2))
            last = index == len(parts) - 1
            actions.append(
                {
                    "action": "capture",
                    "amount": None if last else _money(part),
                    "days_later": days,
                    "reuse_deal_id": reuse,
                }
            )
    elif edited_up and status in ("paid", "partially_paid"):
        actions.append(
            {"action": "capture", "amount": None, "days_later": 0, "reuse_deal_id": False}
        )
    if status == "cancelled":
        return actions
    choices = [
        "refund_before_dispatch",
        "refund_after_dispatch",
        "refund_amount",
        "refund_shipping",
        "refund_full",
        "cancel",
    ]
    roll = rng.random()
    picked = None
    for name in choices:
        roll -= weights.get(name, 0.0)
        if roll < 0:
            picked = name
            break
    if picked == "cancel":
        actions.append({"action": "cancel"})
        return actions
    if picked is None or not lines:
        return actions
    if picked == "refund_before_dispatch":
        line = rng.choice(lines)
        quantity = rng.randint(1, int(line["quantity"]))
        body = {
            "lines": [
                {
                    "line_item_id": str(line["id"]),
                    "quantity": quantity,
                    "type": "Unshipped",
                    "restock_type": rng.choice(("cancel", "no_restock")),
                }
            ],
            "note": "Buyer no longer wants it",
        }
        actions.append({"action": "refund", "when": "before_dispatch", "body": body})
    elif picked == "refund_after_dispatch":
        line = rng.choice(lines)
        body = {
            "lines": [
                {
                    "line_item_id": str(line["id"]),
                    "quantity": rng.randint(1, int(line["quantity"])),
                    "type": "Returned",
                    "restock_type": rng.choice(("return", "return", "no_restock")),
                }
            ],
            "shipping": rng.random() < 0.2,
            "note": "Returned by the buyer",
        }
        actions.append({"action": "refund", "when": "after_dispatch", "body": body})
    elif picked == "refund_amount":
        total = Decimal(str(order.get("total_price") or "0"))
        amount = min(Decimal(rng.choice(("5.00", "10.00"))), (total / 2).quantize(_CENT))
        if amount > 0:
            body = {"lines": [], "amount": _money(amount), "note": "Goodwill gesture"}
            actions.append({"action": "refund", "when": "any", "body": body})
    elif picked == "refund_shipping":
        charged = sum(
            (
                Decimal(str(s.get("discounted_price") or "0"))
                for s in order.get("shipping_lines") or []
            ),
            Decimal(0),
        )
        if charged > 0:
            body = {"lines": [], "shipping": True, "note": "Delivery was late"}
            actions.append({"action": "refund", "when": "any", "body": body})
    elif picked == "refund_full":
        actions.append({"action": "refund", "when": "any", "body": {}})
    return actions


def pricing_spec(body: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`~stokline.sandbox.shopline.pricing.price_order` spec of a drawn order body.

    Pair it with the variants of ``body["lines"]`` (same order) to price a drawn order without
    a store: ``price_order(pricing_spec(body), variants)``.
    """
    spec: dict[str, Any] = {
        "line_items": [
            {
                k: line[k]
                for k in ("quantity", "price", "discount", "discount_title", "tax_line")
                if line.get(k) is not None
            }
            for line in body.get("lines") or []
        ],
        "shipping_price": SHIPPING_PRICES.get(
            str(body.get("shipping_title")), DEFAULT_SHIPPING_PRICE
        ),
    }
    for key in (
        "discount_code",
        "order_discount",
        "shipping_discounted_price",
        "shipping_code",
        "taxes_included",
    ):
        if body.get(key) is not None:
            spec[key] = body[key]
    return spec
