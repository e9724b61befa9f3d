"""The Stokly sale order of any order shape: the units paid and not refunded, money to the penny.

Each example is an order drawn from the shared shapes (`stokline.sandbox.shopline.shapes`: line
and order-level discounts, discount codes, free or discounted delivery, several VAT rates,
phone-only buyers, omitted keys, authorisations captured in parts, edits, refunds before
dispatch by line, amount or shipping), placed on the SHOPLINE sandbox and followed up as drawn,
then read back through SHOPLINE's admin API into the order model exactly as the orders sync
reads it, and translated with the demo mapping. The oracles are SHOPLINE's own figures (its
totals, its captures, the units its refunds gave back), never the translation's.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import assume, event, given, settings

from stokline.connectors.shopline.models import Order
from stokline.mapping.translate import Untranslatable
from stokline.sandbox.shopline.shapes import draw_follow_ups, draw_order
from stokline.sync.orders.translate import StoklyCatalogue, is_importable, translate_order
from tests.properties.actions import after_dispatch, apply_follow_up
from tests.properties.strategies import examples, randoms
from tests.sync.conftest import TOKEN, World

CENT = Decimal("0.01")


def _catalogue(world: World) -> StoklyCatalogue:
    items = [(i["sku"], i["itemId"]) for i in world.stokly_state.items if i.get("sku")]
    locations = [(loc["name"], loc["locationId"]) for loc in world.stokly_state.locations]
    return StoklyCatalogue.build(world.mapping, items, locations)


def _matches(world: World, sku: str) -> bool:
    try:
        _catalogue(world).matcher.match(sku)
    except Untranslatable:
        return False
    return True


def _read_back(world: World, order_id: str) -> dict[str, Any]:
    """The order as the orders sync gets it: SHOPLINE's admin API, the model, its dump."""
    response = world.shop.get(
        "/admin/openapi/v20251201/orders.json",
        params={"ids": order_id, "status": "any"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    [raw] = json.loads(response.content, parse_float=Decimal)["orders"]
    return Order.model_validate(raw).model_dump()


def _place(world: World, rng: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    listing = world.shop.get("/_sandbox/skus").json()
    # The demo seed keeps a few SKUs Stokly does not know (unmapped_sku is another test's
    # subject): orders here are drawn from the SKUs the mapping matches.
    skus = [s for s in listing["skus"] if _matches(world, s)]
    titles = listing["tax_titles"]
    body = draw_order(rng, skus, tax_titles=titles)
    response = world.shop.post("/_sandbox/orders", json=body)
    assert response.status_code == 200, response.text
    order = response.json()["order"]
    actions = draw_follow_ups(rng, order, skus=skus)
    for shape in body["shapes"]:
        event(shape)
    return order, actions


def _money(value: Any) -> Decimal:
    return Decimal(str(value or "0"))


def _captured(order: dict[str, Any]) -> Decimal:
    return sum(
        (
            _money(d.get("pay_amount"))
            for d in order.get("payment_details") or []
            if d.get("pay_status") in (None, "paid", "paid_overtime")
        ),
        Decimal(0),
    )


@settings(max_examples=examples(2))
@given(rng=randoms())
def test_the_sale_order_is_what_the_buyer_paid_for_and_keeps(
    shared_world: World, rng: random.Random
) -> None:
    order, actions = _place(shared_world, rng)
    for action in actions:
        event(f"follow-up {action['action']} {action.get('when', '')}".strip())
        if not after_dispatch(action):  # nothing ships before the import
            response = apply_follow_up(shared_world.shop, order["id"], action)
            assert response.status_code == 200, (action, response.text)
    synced = _read_back(shared_world, order["id"])
    assume(
        is_importable(synced["financial_status"], shared_world.mapping.syncs.orders.import_when)
        and synced["status"] != "cancelled"
    )
    sandbox_lines = shared_world.shopline_app.state.shopline.state.order(order["id"])["line_items"]
    kept_by_sandbox = {li["id"]: li["quantity"] - li["_refunded_quantity"] for li in sandbox_lines}

    draft = translate_order(shared_world.mapping, synced, _catalogue(shared_world))

    # Units: every line carries what was paid and not refunded; nothing refunded is shipped.
    expected = sorted(
        (li["sku"], kept_by_sandbox[li["id"]])
        for li in sandbox_lines
        if kept_by_sandbox[li["id"]] > 0
    )
    assert sorted((line.shopline_sku, line.quantity) for line in draft.lines) == expected

    # The payload adds up: each line, then lines and delivery to the order's total.
    items = draft.payload["items"]
    for item in items:
        assert item["displayLineTotal"] == item["displayLinePrice"] - item["displayLineDiscount"]
        assert item["displayLinePrice"] >= 0 and item["displayLineTotal"] >= 0
    shipping = draft.payload.get("shipping", {}).get("cost", Decimal(0))
    assert draft.total == sum((i["displayLineTotal"] for i in items), Decimal(0)) + shipping

    # Money to the penny. Payments are the captures SHOPLINE took. An order nothing was
    # refunded from is exactly what the buyer paid for; one with units refunded is short of it by
    # those units' share of their line after every discount (the order-level discount spread by
    # line value), each line rounded once to the penny.
    total = _money(synced["total_price"])
    paid = sum((p["amount"] for p in draft.payload["payments"]), Decimal(0))
    assert paid == _captured(synced)
    expected_total = _expected_total(synced, kept_by_sandbox)
    refunded_lines = sum(
        1 for li in synced["line_items"] if kept_by_sandbox[str(li["id"])] < li["quantity"]
    )
    if not refunded_lines:
        assert draft.total == total == expected_total, (draft.total, total, expected_total)
        if synced["financial_status"] == "paid":
            assert paid == total
    else:
        assert abs(draft.total - expected_total) <= CENT * refunded_lines, (
            draft.total,
            expected_total,
        )


def _expected_total(order: dict[str, Any], kept: dict[str, int]) -> Decimal:
    """The order's total less the refunded units' share, from SHOPLINE's figures, unrounded."""
    included = order.get("taxes_included") is not False
    lines = [li for li in order["line_items"] if li["quantity"] > 0]
    values, allocated = [], []
    for li in lines:
        value = _money(li["price"]) * li["quantity"]
        if not included:
            value += sum((_money(t.get("price")) for t in li.get("tax_lines") or []), Decimal(0))
        values.append(value)
        allocated.append(
            sum((_money(d.get("amount")) for d in li.get("discount_allocations") or []), Decimal(0))
        )
    charged = sum(
        (
            _money(s["price"] if s.get("discounted_price") is None else s["discounted_price"])
            for s in order.get("shipping_lines") or []
        ),
        Decimal(0),
    )
    listed = sum((_money(s.get("price")) for s in order.get("shipping_lines") or []), Decimal(0))
    unallocated = (
        _money(order.get("total_discounts")) - sum(allocated, Decimal(0)) - (listed - charged)
    )
    nets = [v - a for v, a in zip(values, allocated, strict=True)]
    base = sum(nets, Decimal(0))
    total = charged
    for li, net in zip(lines, nets, strict=True):
        share = unallocated * net / base if base else Decimal(0)
        total += (net - share) * kept[str(li["id"])] / li["quantity"]
    return (
        total.quantize(CENT)
        if all(kept[str(li["id"])] == li["quantity"] for li in lines)
        else total
    )
