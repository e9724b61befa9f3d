"""Order shapes real stores produce, placed and followed up through the sandbox's control API.

Each test places an order of one shape and checks what SHOPLINE's API then shows of it: money to
the penny, transactions and payment details, refunds, fulfillable quantities, stock, webhooks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stokline.sandbox.shopline import run_storefront
from stokline.sandbox.shopline.shapes import draw_follow_ups, draw_order
from tests.sandbox.conftest import ShoplineServer, WebhookReceiver
from tests.sandbox.test_shopline_pricing import assert_adds_up

TENT = "TENT-2P-GRN"  # 149.00, VAT 20%
STOVE = "STOVE-MINI"  # 139.95, VAT 20%
GAS = "PIKE-GAS-230-25"  # 15.99, VAT 5%
MAP = "FELL-MAP-OS-54-OL7"  # 20.99, VAT 0%
STOCKED = (TENT, STOVE, GAS, MAP)


@pytest.fixture(scope="module", autouse=True)
def stocked(shopline_server: ShoplineServer) -> None:
    state = shopline_server.sandbox.state
    for sku in STOCKED:
        ref = state.store.get("sku_ref", sku)
        _, variant = state.variant(ref["variant_id"])
        for location in ("7001", "7002"):
            body = {"inventory_item_id": variant["inventory_item_id"], "location_id": location}
            state.set_level({**body, "available": 100000})


def d(value: Any) -> Decimal:
    return Decimal(str(value))


def order_of(server: ShoplineServer, order_id: str) -> dict[str, Any]:
    """The order as the Admin API lists it (what the integration reads)."""
    response = server.admin.get("/orders.json", params={"ids": order_id, "status": "any"})
    assert response.status_code == 200, response.text
    return response.json()["orders"][0]


def transactions_of(server: ShoplineServer, order_id: str) -> list[dict[str, Any]]:
    return server.admin.get(f"/orders/{order_id}/transactions.json").json()["transactions"]


def control(server: ShoplineServer, path: str, body: Any = None, status: int = 200) -> Any:
    response = server.control.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def available(server: ShoplineServer, sku: str, location: str = "7001") -> int:
    state = server.sandbox.state
    _, variant = state.variant(state.store.get("sku_ref", sku)["variant_id"])
    return state.store.get("inventory_level", f"{variant['inventory_item_id']}:{location}")[
        "available"
    ]


def fulfil(server: ShoplineServer, order: dict[str, Any]) -> None:
    response = server.admin.post(
        f"/orders/{order['id']}/fulfillments.json",
        json={"fulfillment": {"tracking_info_list": [{"tracking_number": "RM1GB"}]}},
    )
    assert response.status_code == 200, response.text


def test_line_discount_code_and_several_vat_rates_add_up(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(
        lines=[
            {"sku": TENT, "quantity": 1, "discount": "5.00"},
            {"sku": GAS, "quantity": 2},
            {"sku": MAP, "quantity": 1},
        ],
        discount_code={"code": "SPRING10", "type": "percentage", "value": "10"},
    )
    listed = order_of(shopline_server, order["id"])
    assert_adds_up(listed, placed=True)
    tent, gas, paper = listed["line_items"]
    assert [a["amount"] for a in tent["discount_allocations"]] == ["5.00", "14.40"]
    assert [t["title"] for t in (tent, gas, paper) for t in t["tax_lines"]] == [
        "VAT 20%",
        "VAT 5%",
        "VAT 0%",
    ]
    assert gas["tax_lines"][0]["price"] == "1.37"  # VAT 5% in 31.98 − 3.20
    assert paper["tax_lines"][0]["price"] == "0.00"
    assert listed["discount_codes"] == [
        {"code": "SPRING10", "amount": "19.70", "type": "percentage"}  # 14.40 + 3.20 + 2.10
    ]
    assert listed["total_discounts"] == "24.70"
    assert listed["total_price"] == "181.22"  # 149 + 31.98 + 20.99 − 24.70 + 3.95
    assert {t["title"] for t in listed["tax_lines"]} == {"VAT 20%", "VAT 5%", "VAT 0%"}
    paid = sum(d(p["pay_amount"]) for p in listed["payment_details"])
    assert paid == d(listed["total_price"])


def test_order_level_discount_is_on_no_line(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(lines=[{"sku": TENT}], order_discount="7.50")
    listed = order_of(shopline_server, order["id"])
    assert listed["line_items"][0]["discount_allocations"] == []
    assert listed["total_discounts"] == "7.50"
    assert listed["discount_applications"][0]["target_selection"] == "all"
    assert listed["total_price"] == "145.45"
    assert d(listed["payment_details"][0]["pay_amount"]) == d("145.45")
    assert_adds_up(listed, placed=True)


def test_free_and_discounted_shipping(shopline_server: ShoplineServer) -> None:
    free = shopline_server.place_order(shipping_discounted_price="0.00", shipping_code="FREEDEL")
    ship = order_of(shopline_server, free["id"])["shipping_lines"][0]
    assert (ship["price"], ship["discounted_price"]) == ("3.95", "0.00")
    assert free["total_price"] == "149.00"
    cheaper = shopline_server.place_order(
        shipping_title="DPD Next Day", shipping_discounted_price="3.00"
    )
    ship = cheaper["shipping_lines"][0]
    assert (ship["price"], ship["discounted_price"]) == ("6.95", "3.00")
    assert ship["tax_lines"][0]["price"] == "0.50"
    assert cheaper["total_price"] == "152.00"
    assert_adds_up(cheaper, placed=True)


def test_taxes_excluded_order_adds_vat(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(lines=[{"sku": GAS, "quantity": 1}], taxes_included=False)
    assert order["taxes_included"] is False
    assert order["total_tax"] == "1.59"  # 0.80 on 15.99 at 5 % + 0.79 on 3.95 at 20 %
    assert order["total_price"] == "21.53"
    assert_adds_up(order, placed=True)


def test_authorisation_then_partial_captures_on_different_days(
    shopline_server: ShoplineServer,
) -> None:
    order = shopline_server.place_order(paid=False, authorize=True)
    assert order["financial_status"] == "authorized"
    assert order["total_outstanding"] == "152.95"
    assert order["payment_details"] == []
    first = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/capture",
        {"amount": "60.00", "at": "2026-03-02T10:00:00+00:00"},
    )["order"]
    assert first["financial_status"] == "partially_paid"
    assert first["total_outstanding"] == "92.95"
    too_much = shopline_server.control.post(
        f"/_sandbox/orders/{order['id']}/capture", json={"amount": "100.00"}
    )
    assert too_much.status_code == 422
    last = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/capture",
        {"at": "2026-03-04T09:30:00+00:00"},
    )["order"]
    assert last["financial_status"] == "paid"
    assert last["total_outstanding"] == "0.00"
    details = order_of(shopline_server, order["id"])["payment_details"]
    assert [d(p["pay_amount"]) for p in details] == [d("60.00"), d("92.95")]
    assert [p["create_time"][:10] for p in details] == ["2026-03-02", "2026-03-04"]
    assert len({p["pay_seq"] for p in details}) == 2
    assert len({p["pay_channel_deal_id"] for p in details}) == 2
    kinds = [(t["kind"], t["amount"]) for t in transactions_of(shopline_server, order["id"])]
    assert kinds == [("authorization", "152.95"), ("capture", "60.00"), ("capture", "92.95")]
    captures = transactions_of(shopline_server, order["id"])[1:]
    assert {t["parent_id"] for t in captures} == {
        transactions_of(shopline_server, order["id"])[0]["id"]
    }


def test_captures_may_reuse_the_authorisations_deal_id(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(paid=False, authorize=True, gateway="paypal")
    for amount in ("50.00", None):
        body = {"reuse_deal_id": True, **({"amount": amount} if amount else {})}
        control(shopline_server, f"/_sandbox/orders/{order['id']}/capture", body)
    authorization, *captures = transactions_of(shopline_server, order["id"])
    deal = authorization["payment_details"]["pay_channel_deal_id"]
    details = order_of(shopline_server, order["id"])["payment_details"]
    assert [p["pay_channel_deal_id"] for p in details] == [deal, deal]
    assert len({p["pay_seq"] for p in details}) == 2
    assert [c["kind"] for c in captures] == ["capture", "capture"]


def test_cancelling_an_authorised_order_voids_it(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(paid=False, authorize=True)
    cancelled = control(shopline_server, f"/_sandbox/orders/{order['id']}/cancel", {})["order"]
    assert cancelled["financial_status"] == "unpaid"  # SHOPLINE documents no "voided"
    assert cancelled["status"] == "cancelled"
    assert cancelled["total_outstanding"] == "0.00"
    assert [t["kind"] for t in transactions_of(shopline_server, order["id"])] == [
        "authorization",
        "void",
    ]


@pytest.mark.parametrize("restock", ["no_restock", "cancel", "return"])
def test_unshipped_refund_of_any_restock_type_is_no_longer_fulfillable(
    shopline_server: ShoplineServer, restock: str
) -> None:
    order = shopline_server.place_order(lines=[{"sku": STOVE, "quantity": 3}])
    line = order["line_items"][0]
    before = available(shopline_server, STOVE)
    refund = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/refund",
        {"lines": [{"line_item_id": line["id"], "quantity": 2, "restock_type": restock}]},
    )["refund"]
    assert refund["refund_line_items"][0]["type"] == "Unshipped"
    listed = order_of(shopline_server, order["id"])
    assert listed["line_items"][0]["fulfillable_quantity"] == 1
    assert available(shopline_server, STOVE) == before + (0 if restock == "no_restock" else 2)
    # The warehouse cannot ship the refunded units any more.
    too_many = shopline_server.admin.post(
        f"/orders/{order['id']}/fulfillments.json",
        json={"fulfillment": {"line_items": [{"id": int(line["id"]), "quantity": 2}]}},
    )
    assert too_many.status_code == 422
    assert listed["refunds"][0]["id"] == refund["id"]
    assert d(listed["current_total_price"]) == d(listed["total_price"]) - d("279.90")


def test_returned_after_dispatch_restocks_and_refunds_the_discounted_price(
    shopline_server: ShoplineServer,
) -> None:
    order = shopline_server.place_order(lines=[{"sku": STOVE, "quantity": 2, "discount": "5.00"}])
    fulfil(shopline_server, order)
    line = order["line_items"][0]
    before = available(shopline_server, STOVE)
    unshipped = shopline_server.control.post(
        f"/_sandbox/orders/{order['id']}/refund",
        json={"lines": [{"line_item_id": line["id"], "quantity": 1, "type": "Unshipped"}]},
    )
    assert unshipped.status_code == 422  # nothing is unshipped any more
    amounts = []
    for _ in range(2):
        refund = control(
            shopline_server,
            f"/_sandbox/orders/{order['id']}/refund",
            {
                "lines": [
                    {
                        "line_item_id": line["id"],
                        "quantity": 1,
                        "type": "Returned",
                        "restock_type": "return",
                    }
                ]
            },
        )["refund"]
        amounts.append(d(refund["transactions"][0]["amount"]))
        assert refund["refund_line_items"][0]["type"] == "Returned"
    assert amounts == [d("137.45"), d("137.45")]  # (2 × 139.95 − 5.00) / 2 each
    assert available(shopline_server, STOVE) == before + 2
    listed = order_of(shopline_server, order["id"])
    assert listed["line_items"][0]["fulfillable_quantity"] == 0
    assert listed["financial_status"] == "partially_refunded"  # shipping was not refunded
    assert d(listed["current_total_price"]) == d("3.95")


def test_refund_by_amount_is_transactions_only(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order()
    refund = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/refund",
        {"lines": [], "amount": "10.00", "note": "Goodwill gesture"},
    )["refund"]
    assert refund["refund_line_items"] == []
    assert refund["transactions"][0]["amount"] == "10.00"
    assert refund["order_adjustments"] == [
        {
            "kind": "refund_discrepancy",
            "reason": "Goodwill gesture",
            "amount": "-10.00",
            "tax_amount": "0.00",
        }
    ]
    listed = order_of(shopline_server, order["id"])
    assert listed["financial_status"] == "partially_refunded"
    assert listed["current_total_price"] == "142.95"
    assert listed["line_items"][0]["fulfillable_quantity"] == 1


def test_shipping_only_refund_gives_back_what_was_charged(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(shipping_title="DPD Next Day")
    path = f"/_sandbox/orders/{order['id']}/refund"
    refund = control(shopline_server, path, {"lines": [], "shipping": True})["refund"]
    assert refund["transactions"][0]["amount"] == "6.95"
    assert refund["order_adjustments"][0] == {
        "kind": "shipping_refund",
        "reason": "Shipping refund",
        "amount": "-6.95",
        "tax_amount": "-1.16",
    }
    control(shopline_server, path, {"lines": [], "shipping": True}, status=422)  # nothing left
    free = shopline_server.place_order(shipping_discounted_price="0.00")
    path = f"/_sandbox/orders/{free['id']}/refund"
    control(shopline_server, path, {"lines": [], "shipping": True}, status=422)
    partial = shopline_server.place_order(shipping_title="DPD Next Day")
    path = f"/_sandbox/orders/{partial['id']}/refund"
    one = control(shopline_server, path, {"lines": [], "shipping_amount": "2.00"})["refund"]
    assert one["transactions"][0]["amount"] == "2.00"


def test_full_refund_of_an_order_with_an_unallocated_discount_refunds_what_was_paid(
    shopline_server: ShoplineServer,
) -> None:
    order = shopline_server.place_order(order_discount="7.50")
    refund = control(shopline_server, f"/_sandbox/orders/{order['id']}/refund", {})["refund"]
    assert refund["transactions"][0]["amount"] == "145.45"
    listed = order_of(shopline_server, order["id"])
    assert listed["financial_status"] == "refunded"
    assert listed["current_total_price"] == "0.00"
    assert listed["line_items"][0]["fulfillable_quantity"] == 0


def test_edit_after_payment_is_priced_again_and_captured(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver
) -> None:
    for topic in ("orders/edited", "orders/updated"):
        shopline_server.admin.post(
            "/webhooks.json",
            json={"webhook": {"address": webhook_receiver.url, "topic": topic}},
        )
    order = shopline_server.place_order(
        lines=[{"sku": TENT, "quantity": 1}],
        discount_code={"code": "SPRING10", "type": "percentage", "value": "10"},
    )
    before = available(shopline_server, GAS)
    edited = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/edit",
        {"add": [{"sku": GAS, "quantity": 2}], "quantities": {order["line_items"][0]["id"]: 2}},
    )["order"]
    assert [li["quantity"] for li in edited["line_items"]] == [2, 2]
    assert edited["line_items"][1]["id"] == str(int(order["line_items"][0]["id"]) + 1)
    assert edited["line_items"][1]["discount_allocations"][0]["amount"] == "3.20"
    assert edited["total_price"] == "300.93"  # (298 + 31.98) × 0.9 + 3.95
    assert edited["financial_status"] == "partially_paid"
    assert d(edited["total_outstanding"]) == d("300.93") - d(order["total_price"])
    assert available(shopline_server, GAS) == before - 2
    assert_adds_up(edited, placed=True)
    paid = control(shopline_server, f"/_sandbox/orders/{order['id']}/capture", {})["order"]
    assert paid["financial_status"] == "paid"
    assert [t["kind"] for t in transactions_of(shopline_server, order["id"])] == ["sale", "sale"]
    found = webhook_receiver.wait_for(
        lambda r: r.headers.get("x-shopline-topic") == "orders/edited"
    )
    assert json.loads(found[0].body)["id"] == order["id"]
    lower = shopline_server.control.post(
        f"/_sandbox/orders/{order['id']}/edit",
        json={"quantities": {order["line_items"][0]["id"]: 1}},
    )
    assert lower.status_code == 422  # lowering a paid order is a refund


def test_edit_of_an_unpaid_order_removes_a_line_and_returns_its_stock(
    shopline_server: ShoplineServer,
) -> None:
    order = shopline_server.place_order(
        lines=[{"sku": TENT}, {"sku": MAP, "quantity": 3}], paid=False
    )
    before = available(shopline_server, MAP)
    edited = control(
        shopline_server,
        f"/_sandbox/orders/{order['id']}/edit",
        {"remove": [order["line_items"][1]["id"]]},
    )["order"]
    assert [li["sku"] for li in edited["line_items"]] == [TENT]
    assert edited["total_price"] == edited["total_outstanding"] == "152.95"
    assert available(shopline_server, MAP) == before + 3
    paid = control(shopline_server, f"/_sandbox/orders/{order['id']}/pay")["order"]
    assert paid["financial_status"] == "paid"


def test_buyer_with_phone_only(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(
        customer={"phone": "7700900321", "first_name": "Phoebe", "last_name": "Only"}
    )
    listed = order_of(shopline_server, order["id"])
    assert listed["email"] is None
    assert listed["phone"] == "+447700900321"
    assert listed["customer"]["email"] is None
    assert listed["customer"]["phone"] == "7700900321"


def test_omitted_keys_are_left_out_or_null(shopline_server: ShoplineServer) -> None:
    lines = [{"sku": TENT, "discount": "5.00"}, {"sku": MAP}]
    keys = order_of(shopline_server, shopline_server.place_order(lines=lines, omit="keys")["id"])
    for key in ("buyer_note", "note", "tags", "note_attributes"):
        assert key not in keys
    discounted, plain = keys["line_items"]
    assert "requires_shipping" not in discounted and "requires_shipping" not in plain
    assert discounted["discount_allocations"][0]["amount"] == "5.00"  # never a value
    assert "discount_allocations" not in plain
    assert "phone" not in keys["shipping_address"]
    assert_adds_up(
        {**keys, "line_items": [{"discount_allocations": [], **li} for li in keys["line_items"]]},
        placed=True,
    )
    nulls = order_of(shopline_server, shopline_server.place_order(lines=lines, omit="null")["id"])
    assert nulls["buyer_note"] is None and nulls["note"] is None
    assert nulls["line_items"][1]["requires_shipping"] is None
    assert nulls["line_items"][1]["discount_allocations"] is None
    assert nulls["shipping_address"]["phone"] is None
    wrong = shopline_server.control.post(
        "/_sandbox/orders", json={"lines": lines, "omit": "sometimes"}
    )
    assert wrong.status_code == 422


def test_skus_tell_their_tax_title(shopline_server: ShoplineServer) -> None:
    listed = shopline_server.control.get("/_sandbox/skus").json()
    assert listed["tax_titles"][GAS] == "VAT 5%"
    assert listed["tax_titles"][MAP] == "VAT 0%"
    assert set(listed["tax_titles"]) == set(listed["skus"])


# -- every drawn shape, end to end through the control API ----------------------------------


def _run(server: ShoplineServer, order: dict[str, Any], action: dict[str, Any]) -> None:
    """Do one drawn follow-up; refusals the merchant would meet are fine, 5xx never."""
    path = f"/_sandbox/orders/{order['id']}"
    name = action["action"]
    if name == "refund" and action["when"] == "after_dispatch":
        current = order_of(server, order["id"])
        if current["status"] != "cancelled" and any(
            li["fulfillable_quantity"] for li in current["line_items"]
        ):
            fulfil(server, order)
    body: Any = None
    if name == "capture":
        body = {k: action[k] for k in ("amount", "reuse_deal_id") if action.get(k) is not None}
    elif name == "edit":
        body = {k: action[k] for k in ("quantities", "add", "remove")}
    elif name == "refund":
        body = action["body"]
    elif name == "cancel":
        body = {}
    response = server.control.post(f"{path}/{name}", json=body)
    assert response.status_code in (200, 422), response.text


def _check(order: dict[str, Any], transactions: list[dict[str, Any]]) -> None:
    captured = sum(
        (d(t["amount"]) for t in transactions if t["kind"] in ("sale", "capture")), Decimal(0)
    )
    refunded = sum((d(t["amount"]) for t in transactions if t["kind"] == "refund"), Decimal(0))
    assert refunded <= captured
    assert d(order["current_total_price"]) == d(order["total_price"]) - refunded
    assert captured == sum((d(p["pay_amount"]) for p in order["payment_details"]), Decimal(0))
    if order["status"] != "cancelled":
        assert d(order["total_outstanding"]) == d(order["total_price"]) - captured
    assert sum((d(r["transactions"][0]["amount"]) for r in order["refunds"]), Decimal(0)) == (
        refunded
    )
    for line in order["line_items"]:
        assert 0 <= line["fulfillable_quantity"] <= line["quantity"]


@pytest.fixture(scope="module")
def catalogue(shopline_server: ShoplineServer) -> Iterator[tuple[list[str], dict[str, str]]]:
    titles = shopline_server.control.get("/_sandbox/skus").json()["tax_titles"]
    yield list(STOCKED), {sku: titles[sku] for sku in STOCKED}


# Through HTTP, so an eighth of the profile's examples (25 in ci, 250 when thorough).
@settings(
    max_examples=max(10, settings.default.max_examples // 8),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False))
def test_every_drawn_shape_and_follow_up_keeps_the_money_straight(
    shopline_server: ShoplineServer, catalogue: tuple[list[str], dict[str, str]], rng: random.Random
) -> None:
    skus, titles = catalogue
    body = draw_order(rng, skus, tax_titles=titles)
    response = shopline_server.control.post("/_sandbox/orders", json=body)
    if response.status_code == 422:  # a discount larger than a small basket
        assert "discount" in response.text
        return
    assert response.status_code == 200, response.text
    order = response.json()["order"]
    assert_adds_up(order, placed=True)
    for action in draw_follow_ups(rng, order, skus=skus):
        _run(shopline_server, order, action)
        _check(
            order_of(shopline_server, order["id"]),
            transactions_of(shopline_server, order["id"]),
        )


def test_the_storefront_simulator_places_every_kind_of_order(
    shopline_server: ShoplineServer,
) -> None:
    state = shopline_server.sandbox.state
    known = {o["id"] for o in state.store.list("order")}
    placed = run_storefront(shopline_server.url, orders_per_minute=600000, count=120, seed=4)
    assert placed == 120
    orders = [o for o in state.store.list("order") if o["id"] not in known]
    kinds = {t["kind"] for o in orders for t in o["_transactions"]}
    assert {"sale", "authorization", "capture", "refund"} <= kinds
    assert any(o["discount_codes"] for o in orders)
    assert any(Decimal(o["shipping_lines"][0]["discounted_price"]) == 0 for o in orders)
    assert any(len({li["tax_lines"][0]["title"] for li in o["line_items"]}) > 1 for o in orders)
    assert any(not o["email"] and o["phone"] for o in orders)
    assert any(o.get("_omit") for o in orders)
    assert any(o["financial_status"] == "partially_refunded" for o in orders)
    for order in orders:
        public_order = order_of(shopline_server, order["id"])
        _check(public_order, transactions_of(shopline_server, order["id"]))
