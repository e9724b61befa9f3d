"""The SHOPLINE sandbox answers four fields in the JSON type SHOPLINE's official SDK reads them.

An order's ``customer.addresses`` is one object (the customers API keeps a list), payment
amounts are JSON numbers, a variant's ``weight`` is a string. Bodies are read here as the
clients read them (``parse_float=Decimal``), so an amount's exactness is checked too.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from tests.sandbox.conftest import ShoplineServer


def decoded(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def the_order(server: ShoplineServer, order_id: str) -> dict[str, Any]:
    [order] = decoded(server.admin.get("/orders.json", params={"ids": order_id}))["orders"]
    return order


ADDRESSES = [
    {"address1": "2 Mill Lane", "city": "York", "zip": "YO1 7HH", "country_code": "GB"},
    {"address1": "9 Quay Street", "city": "Bristol", "zip": "BS1 4DJ", "country_code": "GB"},
]


def test_an_orders_customer_carries_one_address_object(shopline_server: ShoplineServer) -> None:
    created = shopline_server.admin.post(
        "/customers.json",
        json={"customer": {"email": "ines@example.com", "addresses": ADDRESSES}},
    )
    customer = decoded(created)["customer"]
    placed = shopline_server.place_order(customer={"email": "ines@example.com"})
    order = the_order(shopline_server, placed["id"])
    assert order["customer"]["id"] == customer["id"]
    assert order["customer"]["addresses"] == ADDRESSES[0]  # an object: the first address
    # The customers API keeps the list.
    fetched = decoded(shopline_server.admin.get(f"/customers/v2/{customer['id']}.json"))
    assert fetched["customer"]["addresses"] == ADDRESSES


def test_a_customer_without_an_address_has_none_on_the_order(
    shopline_server: ShoplineServer,
) -> None:
    placed = shopline_server.place_order(customer={"email": "noaddress@example.com"})
    order = the_order(shopline_server, placed["id"])
    assert order["customer"]["email"] == "noaddress@example.com"
    assert order["customer"]["addresses"] is None


def test_payment_amounts_are_exact_json_numbers(shopline_server: ShoplineServer) -> None:
    placed = shopline_server.place_order(
        lines=[{"sku": "TENT-2P-GRN", "quantity": 1}, {"sku": "STOVE-MINI", "quantity": 1}],
        gateway="paypal",
    )
    order = the_order(shopline_server, placed["id"])
    [detail] = order["payment_details"]
    total = Decimal(order["total_price"])  # money fields stay strings
    assert isinstance(order["total_price"], str)
    for key in ("pay_amount", "settle_pay_amount"):
        assert is_number(detail[key]), f"{key} is {detail[key]!r}"
        assert detail[key] == total
    transactions = decoded(shopline_server.admin.get(f"/orders/{placed['id']}/transactions.json"))
    [sale] = transactions["transactions"]
    assert is_number(sale["payment_details"]["pay_amount"]) and sale["amount"] == str(total)


def test_a_variant_weight_is_a_string_whatever_was_written(
    shopline_server: ShoplineServer,
) -> None:
    products = decoded(shopline_server.admin.get("/products/products.json", params={"limit": 50}))
    variants = [v for p in products["products"] for v in p["variants"]]
    assert variants and all(isinstance(v["weight"], str) for v in variants)
    [stove] = [v for v in variants if v["sku"] == "STOVE-MINI"]
    assert Decimal(stove["weight"]) > 0 and stove["weight_unit"] == "g"

    path = f"/products/variants/{stove['id']}.json"
    for written, answered in ((0.5, "0.5"), ("1.25", "1.25"), (2, "2"), ("0.234", "0.23")):
        response = shopline_server.admin.put(
            path, json={"variant": {"weight": written, "weight_unit": "kg"}}
        )
        assert decoded(response)["variant"]["weight"] == answered, written
    assert decoded(shopline_server.admin.get(path))["variant"]["weight"] == "0.23"
    refused = shopline_server.admin.put(path, json={"variant": {"weight": "heavy"}})
    assert refused.status_code == 422 and "weight" in refused.text

    # An order line's grams follow the weight and its unit: 0.23 kg is 230 g.
    placed = shopline_server.place_order(lines=[{"sku": "STOVE-MINI", "quantity": 1}])
    [line] = the_order(shopline_server, placed["id"])["line_items"]
    assert line["grams"] == 230
