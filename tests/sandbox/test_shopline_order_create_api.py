"""``POST /orders.json`` honours what SHOPLINE's official SDK sends; refunds answer in ``data``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.sandbox.conftest import ShoplineServer
from tests.sandbox.test_shopline_pricing import assert_adds_up

TENT = "TENT-2P-GRN"  # 149.00, VAT 20%


def create(server: ShoplineServer, order: dict[str, Any], status: int = 200) -> dict[str, Any]:
    body = {
        "customer": {"email": "sdk.buyer@example.com", "first_name": "Sid"},
        **order,
    }
    response = server.admin.post("/orders.json", json={"order": body})
    assert response.status_code == status, response.text
    return response.json().get("order", {})


def sdk_order(**price_info: Any) -> dict[str, Any]:
    """The order of the issue: a 5.00 line discount, 7.50 off the order, free shipping, PayPal."""
    return {
        "line_items": [
            {
                "sku": TENT,
                "quantity": 1,
                "price": "149.00",
                "discount_price": {"title": "Damaged box", "amount": "5.00"},
                "tax_line": {"title": "VAT 20%", "rate": "0.200"},
            }
        ],
        "shipping_lines": [
            {
                "title": "Royal Mail Tracked 48",
                "price": "3.95",
                "tax_line": {"title": "VAT 20%", "rate": "0.200"},
            }
        ],
        "price_info": {
            "current_extra_total_discounts": "7.50",
            "total_shipping_price": "0.00",
            **price_info,
        },
        "transaction_list": [{"gateway": "PayPal", "amount": "136.50", "status": "paid"}],
    }


def test_discounts_free_shipping_and_paypal_sent_by_the_sdk_are_kept(
    shopline_server: ShoplineServer,
) -> None:
    order = create(shopline_server, sdk_order())
    line = order["line_items"][0]
    assert line["discount_allocations"][0]["amount"] == "5.00"
    applied = order["discount_applications"][
        line["discount_allocations"][0]["discount_application_index"]
    ]
    assert applied["title"] == "Damaged box"
    assert line["tax_lines"][0]["price"] == "24.00"  # VAT in 144.00
    ship = order["shipping_lines"][0]
    assert (ship["price"], ship["discounted_price"]) == ("3.95", "0.00")
    assert ship["tax_lines"][0]["price"] == "0.00"
    assert order["total_discounts"] == "16.45"  # 5.00 + 7.50 + 3.95 of shipping
    assert order["total_price"] == "136.50"
    assert order["current_total_price"] == "136.50"
    assert order["discount_codes"] == []
    assert {"manual"} == {a["type"] for a in order["discount_applications"]}
    assert order["payment_gateway_names"] == ["paypal"]
    assert order["financial_status"] == "paid"
    assert order["total_outstanding"] == "0.00"
    assert [(p["gateway"], p["pay_amount"]) for p in order["payment_details"]] == [
        ("paypal", 136.5)
    ]
    assert_adds_up(order, placed=True)
    listed = shopline_server.admin.get("/orders.json", params={"ids": order["id"]}).json()
    assert listed["orders"][0]["total_discounts"] == "16.45"


def test_discount_codes_and_tax_lines_sent_by_the_sdk_are_kept(
    shopline_server: ShoplineServer,
) -> None:
    order = create(
        shopline_server,
        {
            "line_items": [
                {"sku": TENT, "quantity": 2, "tax_line": {"title": "VAT 5%", "rate": "0.05"}}
            ],
            "discount_codes": [
                {"code": "SPRING10", "amount": "10", "type": "percentage"},
                {"code": "FREEDEL", "amount": "3.95", "type": "shipping"},
            ],
            "financial_status": "paid",
        },
    )
    line = order["line_items"][0]
    assert line["discount_allocations"][0]["amount"] == "29.80"
    assert line["tax_lines"][0] == {**line["tax_lines"][0], "title": "VAT 5%", "price": "12.77"}
    assert {c["code"]: c["amount"] for c in order["discount_codes"]} == {
        "SPRING10": "29.80",
        "FREEDEL": "3.95",
    }
    assert order["shipping_lines"][0]["discounted_price"] == "0.00"
    assert order["total_price"] == "268.20"
    assert order["financial_status"] == "paid"
    assert_adds_up(order, placed=True)


def test_a_transaction_for_part_of_the_total_leaves_it_partially_paid(
    shopline_server: ShoplineServer,
) -> None:
    body = sdk_order()
    body["transaction_list"] = [{"gateways": "Klarna", "amount": "36.50"}]
    order = create(shopline_server, body)
    assert order["financial_status"] == "partially_paid"
    assert order["total_outstanding"] == "100.00"
    assert order["payment_gateway_names"] == ["klarna"]


def test_an_unpaid_transaction_is_not_captured(shopline_server: ShoplineServer) -> None:
    body = sdk_order()
    body["transaction_list"] = [{"gateway": "PayPal", "amount": "136.50", "status": "unpaid"}]
    order = create(shopline_server, body)
    assert order["financial_status"] == "unpaid"
    assert order["payment_details"] == []


def test_tax_excluded_orders_add_tax(shopline_server: ShoplineServer) -> None:
    order = create(
        shopline_server,
        {
            "line_items": [{"sku": TENT, "quantity": 1, "price": "100.00"}],
            "price_info": {"taxes_included": False, "total_shipping_price": "5.00"},
        },
    )
    assert order["taxes_included"] is False
    assert order["total_tax"] == "21.00"
    assert order["total_price"] == "126.00"


@pytest.mark.parametrize(
    "change",
    [
        {"price_info": {"current_extra_total_discounts": "500.00"}},
        {"price_info": "free"},
        {"transaction_list": [{"gateway": "PayPal", "amount": "999.00"}]},
        {"transaction_list": "PayPal"},
    ],
)
def test_impossible_money_is_a_422(shopline_server: ShoplineServer, change: dict) -> None:
    create(shopline_server, {**sdk_order(), **change}, status=422)


def test_refund_answers_in_data_as_the_sdk_reads_it(shopline_server: ShoplineServer) -> None:
    order = create(shopline_server, sdk_order())
    response = shopline_server.admin.post(
        "/order/refund.json",
        json={
            "order_id": order["id"],
            "refund_line_items": [
                {"line_item_id": order["line_items"][0]["id"], "quantity": 1, "type": "Unshipped"}
            ],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"data"}
    refund = answer["data"]
    assert refund["order_id"] == order["id"]
    # The line's discounted price, capped at what was paid (7.50 came off the whole order).
    assert refund["refund_line_items"][0]["subtotal"] == "144.00"
    assert Decimal(refund["transactions"][0]["amount"]) == Decimal("136.50")
    refunds = shopline_server.admin.get(f"/orders/{order['id']}/refunds.json").json()["refunds"]
    assert [r["id"] for r in refunds] == [refund["id"]]
