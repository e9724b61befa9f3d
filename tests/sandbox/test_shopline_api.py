"""The SHOPLINE sandbox's Admin API over real HTTP: auth, errors, pagination, resources."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.sandbox.conftest import SHOPLINE_PREFIX, SHOPLINE_TOKEN, ShoplineServer

LINK_PART = re.compile(r'^<([^<>]+)>; rel="(next|previous)"$')


def parse_link(header: str | None) -> dict[str, str]:
    """Split a ``link`` header the way SHOPLINE's SDKs do: on commas, each part strict."""
    if not header:
        return {}
    out = {}
    for part in header.split(","):
        match = LINK_PART.match(part.strip())
        assert match, f"malformed link part {part!r}"
        out[match.group(2)] = match.group(1)
    return out


# -- auth, errors, headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SHOPLINE_TOKEN}],
    ids=["missing", "wrong", "no-bearer-scheme"],
)
def test_bad_or_missing_token_is_401_with_errors_body(
    shopline_server: ShoplineServer, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{shopline_server.url}{SHOPLINE_PREFIX}/orders.json", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"errors"} and isinstance(body["errors"], str)
    assert response.headers["traceId"]
    assert SHOPLINE_TOKEN not in response.text


def test_every_response_has_a_trace_id(shopline_server: ShoplineServer) -> None:
    ok = shopline_server.admin.get("/locations/list.json")
    missing = shopline_server.admin.get("/orders/xyz/fulfillments.json")
    assert ok.status_code == 200 and missing.status_code == 404
    assert ok.headers["traceId"] != missing.headers["traceId"]


def test_errors_have_a_string_code(shopline_server: ShoplineServer) -> None:
    response = shopline_server.admin.get("/products/123.json")
    assert response.status_code == 404
    body = response.json()
    assert isinstance(body["code"], str) and body["message"] and body["errors"]


def test_unknown_version_is_404(shopline_server: ShoplineServer) -> None:
    response = httpx.get(
        f"{shopline_server.url}/admin/openapi/2025-12/locations/list.json",
        headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
    )
    assert response.status_code == 404


def test_any_dated_version_is_accepted(shopline_server: ShoplineServer) -> None:
    response = httpx.get(
        f"{shopline_server.url}/admin/openapi/v20260301/locations/list.json",
        headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
    )
    assert response.status_code == 200


def test_invalid_json_body_is_422_in_shopline_shape(shopline_server: ShoplineServer) -> None:
    response = shopline_server.admin.post(
        "/inventory_levels/set.json",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert isinstance(response.json()["code"], str)


# -- pagination -----------------------------------------------------------------------------


def test_products_paginate_over_many_pages_by_link_only(shopline_server: ShoplineServer) -> None:
    first = shopline_server.admin.get("/products/products.json", params={"limit": 25})
    assert first.status_code == 200
    ids = [p["id"] for p in first.json()["products"]]
    links = parse_link(first.headers.get("link"))
    assert "previous" not in links
    pages = 1
    while "next" in links:
        query = parse_qs(urlsplit(links["next"]).query)
        assert set(query) == {"limit", "page_info"}
        info = json.loads(base64.b64decode(query["page_info"][0]))
        assert info["direction"] == "next" and info["limit"] == 25 and info["sinceId"] == ids[-1]
        page = httpx.get(
            links["next"], headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"}, timeout=10
        )
        assert page.status_code == 200
        ids.extend(p["id"] for p in page.json()["products"])
        links = parse_link(page.headers.get("link"))
        assert "previous" in links
        pages += 1
    assert pages >= 3
    assert len(ids) == len(set(ids))
    count = shopline_server.admin.get("/products/count.json").json()["count"]
    assert len(ids) == count
    assert all(len(i) == 26 and i.isdigit() for i in ids)


def test_previous_link_returns_the_page_before(shopline_server: ShoplineServer) -> None:
    first = shopline_server.admin.get("/products/products.json", params={"limit": 10})
    second = httpx.get(
        parse_link(first.headers["link"])["next"],
        headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
    )
    back = httpx.get(
        parse_link(second.headers["link"])["previous"],
        headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
    )
    assert [p["id"] for p in back.json()["products"]] == [p["id"] for p in first.json()["products"]]


def test_next_page_keeps_the_first_requests_filters(shopline_server: ShoplineServer) -> None:
    first = shopline_server.admin.get(
        "/orders.json",
        params={"status": "any", "financial_status": "paid", "limit": 3, "fields": "id,name"},
    )
    assert first.status_code == 200
    assert all(set(o) == {"id", "name"} for o in first.json()["orders"])
    header = first.headers["link"]
    assert "fields=id%2Cname" in header
    seen = [o["id"] for o in first.json()["orders"]]
    url = parse_link(header).get("next")
    while url:
        page = httpx.get(url, headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"})
        seen.extend(o["id"] for o in page.json()["orders"])
        url = parse_link(page.headers.get("link")).get("next")
    paid = shopline_server.admin.get(
        "/orders.json", params={"status": "any", "financial_status": "paid", "limit": 100}
    ).json()["orders"]
    assert seen == [o["id"] for o in paid]


def test_page_info_overrides_other_filters(shopline_server: ShoplineServer) -> None:
    first = shopline_server.admin.get("/orders.json", params={"status": "any", "limit": 2})
    url = parse_link(first.headers["link"])["next"]
    with_noise = httpx.get(
        url + "&financial_status=refunded&status=cancelled",
        headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
    )
    clean = httpx.get(url, headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"})
    assert with_noise.json() == clean.json()


@pytest.mark.parametrize("limit", ["0", "-1", "ten"])
def test_invalid_limit_is_422(shopline_server: ShoplineServer, limit: str) -> None:
    response = shopline_server.admin.get("/products/products.json", params={"limit": limit})
    assert response.status_code == 422


def test_garbage_page_info_is_422(shopline_server: ShoplineServer) -> None:
    response = shopline_server.admin.get("/products/products.json", params={"page_info": "!!"})
    assert response.status_code == 422


def test_since_id_starts_after_that_id(shopline_server: ShoplineServer) -> None:
    products = shopline_server.admin.get("/products/products.json", params={"limit": 5}).json()
    pivot = products["products"][1]["id"]
    after = shopline_server.admin.get(
        "/products/products.json", params={"limit": 3, "since_id": pivot}
    ).json()["products"]
    assert [p["id"] for p in after] == [p["id"] for p in products["products"][2:5]]


# -- products, variants, inventory ----------------------------------------------------------


def _variant_by_sku(server: ShoplineServer, sku: str) -> dict:
    for product in server.admin.get("/products/products.json", params={"limit": 1000}).json()[
        "products"
    ]:
        for variant in product["variants"]:
            if variant["sku"] == sku:
                return variant
    raise AssertionError(f"no variant {sku}")


def test_product_and_variant_shapes(shopline_server: ShoplineServer) -> None:
    variant = _variant_by_sku(shopline_server, "STOVE-MINI")
    product = shopline_server.admin.get(f"/products/{variant['product_id']}.json").json()
    assert product["product"]["variants"][0]["sku"] == "STOVE-MINI"
    single = shopline_server.admin.get(f"/products/variants/{variant['id']}.json").json()
    assert single["variant"]["price"] == "139.95"
    assert single["variant"]["required_shipping"] is True
    listed = shopline_server.admin.get(f"/products/{variant['product_id']}/variants.json").json()
    assert [v["id"] for v in listed["variants"]] == [variant["id"]]
    item = shopline_server.admin.get(f"/inventory_items/{variant['inventory_item_id']}.json")
    assert item.json()["inventory_item"]["sku"] == "STOVE-MINI"
    assert "required_shipping" in item.json()["inventory_item"]


def test_variant_update_changes_price_and_sku(shopline_server: ShoplineServer) -> None:
    variant = _variant_by_sku(shopline_server, "ACME-TENT-2P-ORANGE")
    response = shopline_server.admin.put(
        f"/products/variants/{variant['id']}.json",
        json={"variant": {"price": "139", "barcode": "5060123400021"}},
    )
    assert response.status_code == 200
    assert response.json()["variant"]["price"] == "139.00"
    again = shopline_server.admin.get(f"/products/variants/{variant['id']}.json").json()
    assert again["variant"]["barcode"] == "5060123400021"


def test_product_create_and_update(shopline_server: ShoplineServer) -> None:
    created = shopline_server.admin.post(
        "/products/products.json",
        json={"product": {"title": "Camp Kettle", "variants": [{"sku": "KETTLE-1", "price": 19}]}},
    )
    assert created.status_code == 200
    product = created.json()["product"]
    assert product["variants"][0]["price"] == "19.00"
    updated = shopline_server.admin.put(
        f"/products/{product['id']}.json", json={"product": {"title": "Camp Kettle 1L"}}
    )
    assert updated.json()["product"]["title"] == "Camp Kettle 1L"
    missing_title = shopline_server.admin.post("/products/products.json", json={"product": {}})
    assert missing_title.status_code == 422


def test_locations_quirks(shopline_server: ShoplineServer) -> None:
    listed = shopline_server.admin.get("/locations/list.json").json()["locations"]
    assert shopline_server.admin.get("/locations.json").json()["locations"] == listed
    by_id = {loc["id"]: loc for loc in listed}
    assert by_id["7001"]["is_default"] == "true" and by_id["7002"]["is_default"] == "false"
    assert shopline_server.admin.get("/locations/7002.json").json()["location"]["id"] == "7002"
    assert shopline_server.admin.get("/locations/9999.json").status_code == 404


def test_inventory_set_adjust_and_levels(shopline_server: ShoplineServer) -> None:
    variant = _variant_by_sku(shopline_server, "acme-bottle-1l")
    item = variant["inventory_item_id"]
    set_ = shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={"inventory_item_id": item, "location_id": "7001", "available": 10},
    )
    assert set_.status_code == 200
    assert set_.json()["inventory_level"]["available"] == 10
    adjusted = shopline_server.admin.post(
        "/inventory_levels/adjust.json",
        json={"inventory_item_id": item, "location_id": "7001", "available_adjustment": -3},
    ).json()["inventory_level"]
    assert adjusted["available"] == 7
    assert "update_at" in adjusted and "updated_at" not in adjusted
    shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={"inventory_item_id": item, "location_id": "7002", "available": 5},
    )
    levels = shopline_server.admin.get(
        "/inventory_levels.json", params={"inventory_item_ids": item}
    ).json()["inventory_levels"]
    assert {lv["location_id"]: lv["available"] for lv in levels} == {"7001": 7, "7002": 5}
    only_7002 = shopline_server.admin.get(
        "/inventory_levels.json", params={"inventory_item_ids": item, "location_ids": "7002"}
    ).json()["inventory_levels"]
    assert [lv["location_id"] for lv in only_7002] == ["7002"]
    again = shopline_server.admin.get(f"/products/variants/{variant['id']}.json").json()
    assert again["variant"]["inventory_quantity"] == 12


def test_inventory_errors(shopline_server: ShoplineServer) -> None:
    variant = _variant_by_sku(shopline_server, "STOVE-MINI")
    item = variant["inventory_item_id"]
    unknown_item = shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={"inventory_item_id": "1", "location_id": "7001", "available": 1},
    )
    assert unknown_item.status_code == 404
    not_integer = shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={"inventory_item_id": item, "location_id": "7001", "available": "5"},
    )
    assert not_integer.status_code == 422
    inactive = shopline_server.admin.post(
        "/inventory_levels/adjust.json",
        json={"inventory_item_id": item, "location_id": "7003", "available_adjustment": 1},
    )
    assert inactive.status_code == 422
    no_filter = shopline_server.admin.get("/inventory_levels.json")
    assert no_filter.status_code == 422


def test_connect_makes_adjust_possible(shopline_server: ShoplineServer) -> None:
    created = shopline_server.admin.post(
        "/products/products.json",
        json={"product": {"title": "Spork", "variants": [{"sku": "SPORK-1", "price": "3.50"}]}},
    ).json()["product"]
    item = created["variants"][0]["inventory_item_id"]
    body = {"inventory_item_id": item, "location_id": "7002", "available_adjustment": 4}
    assert shopline_server.admin.post("/inventory_levels/adjust.json", json=body).status_code == 422
    connect = shopline_server.admin.post(
        "/inventory_levels/connect.json", json={"inventory_item_id": item, "location_id": "7002"}
    )
    assert connect.json()["inventory_level"]["available"] == 0
    adjusted = shopline_server.admin.post("/inventory_levels/adjust.json", json=body)
    assert adjusted.json()["inventory_level"]["available"] == 4


# -- orders ---------------------------------------------------------------------------------


def test_order_shape(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(
        lines=[{"sku": "TENT-2P-GRN", "quantity": 2}],
        shipping_title="DPD Next Day",
        gateway="paypal",
    )
    assert len(order["id"]) == 26 and order["id"].isdigit()
    assert order["name"].startswith("#")
    assert order["financial_status"] == "paid" and order["fulfillment_status"] is None
    assert order["total_price"] == "304.95"
    assert order["total_price_set"]["shop_money"] == {"amount": "304.95", "currency_code": "GBP"}
    assert order["tax_lines"] == [
        {
            "title": "VAT 20%",
            "rate": 0.2,
            "price": "50.83",
            "price_set": order["tax_lines"][0]["price_set"],
        }
    ]
    line = order["line_items"][0]
    assert line["sku"] == "TENT-2P-GRN" and line["price"] == "149.00"
    assert line["requires_shipping"] is True and line["fulfillable_quantity"] == 2
    assert order["shipping_lines"][0]["title"] == "DPD Next Day"
    assert order["payment_details"][0]["gateway"] == "paypal"
    assert order["payment_gateway_names"] == ["paypal"]
    assert not any(key.startswith("_") for key in order)
    transactions = shopline_server.admin.get(f"/orders/{order['id']}/transactions.json").json()
    assert [t["kind"] for t in transactions["transactions"]] == ["sale"]
    assert transactions["transactions"][0]["amount"] == "304.95"


def test_order_filters(shopline_server: ShoplineServer) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    unpaid = shopline_server.place_order(paid=False, customer={"email": "filter-a@example.com"})
    paid = shopline_server.place_order(customer={"email": "filter-b@example.com"})
    cancelled = shopline_server.place_order(paid=False, customer={"email": "filter-c@example.com"})
    shopline_server.control.post(f"/_sandbox/orders/{cancelled['id']}/cancel", json={})
    mine = ",".join(o["id"] for o in (unpaid, paid, cancelled))

    def ids(**params: str) -> list[str]:
        response = shopline_server.admin.get("/orders.json", params={"ids": mine, **params})
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["orders"]]

    assert ids() == [unpaid["id"], paid["id"]]
    assert ids(status="any") == [unpaid["id"], paid["id"], cancelled["id"]]
    assert ids(status="cancelled") == [cancelled["id"]]
    assert ids(financial_status="unpaid") == [unpaid["id"]]
    assert ids(fulfillment_status="unshipped") == [unpaid["id"], paid["id"]]
    assert ids(fulfillment_status="shipped") == []
    assert ids(status="any", since_id=unpaid["id"]) == [paid["id"], cancelled["id"]]
    assert ids(email="FILTER-B@example.com") == [paid["id"]]
    assert ids(name=paid["name"]) == [paid["id"]]
    assert ids(name=paid["name"].lstrip("#")) == [paid["id"]]
    assert ids(created_at_min=before.isoformat()) == [unpaid["id"], paid["id"]]
    assert ids(created_at_max=before.isoformat()) == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(updated_at_min=future) == []
    assert ids(status="any", sort_condition="order_at:desc")[0] == cancelled["id"]
    count = shopline_server.admin.get(
        "/orders/count.json", params={"ids": mine, "status": "any"}
    ).json()
    assert count == {"count": 3}


@pytest.mark.parametrize(
    "params",
    [
        {"status": "closed"},
        {"financial_status": "free"},
        {"fulfillment_status": "done"},
        {"created_at_min": "yesterday"},
        {"ids": ",".join(str(n) for n in range(101))},
    ],
)
def test_invalid_order_filters_are_422(shopline_server: ShoplineServer, params: dict) -> None:
    assert shopline_server.admin.get("/orders.json", params=params).status_code == 422


def test_admin_create_update_cancel_order(shopline_server: ShoplineServer) -> None:
    created = shopline_server.admin.post(
        "/orders.json",
        json={
            "order": {
                "line_items": [{"sku": "STOVE-MINI", "quantity": 1}],
                "customer": {"phone": "7700900555", "first_name": "Pat"},
                "shipping_lines": [{"title": "Royal Mail Tracked 48"}],
                "financial_status": "paid",
            }
        },
    )
    assert created.status_code == 200
    order = created.json()["order"]
    assert order["email"] is None and order["phone"] == "+447700900555"
    updated = shopline_server.admin.put(
        f"/orders/{order['id']}.json", json={"order": {"note": "Gate code 1234"}}
    )
    assert updated.json()["order"]["note"] == "Gate code 1234"
    refused = shopline_server.admin.put(
        f"/orders/{order['id']}.json", json={"order": {"total_price": "0.00"}}
    )
    assert refused.status_code == 422
    cancelled = shopline_server.admin.post(
        f"/orders/{order['id']}/cancel.json", json={"cancel_reason": "customer"}
    ).json()["order"]
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "customer"
    assert cancelled["financial_status"] == "refunded"
    again = shopline_server.admin.post(f"/orders/{order['id']}/cancel.json", json={})
    assert again.status_code == 422


def test_fulfillment_partial_then_fulfilled(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(
        lines=[{"sku": "TENT-2P-GRN", "quantity": 2}, {"sku": "STOVE-MINI", "quantity": 1}]
    )
    first, second = order["line_items"]
    tracking = [
        {
            "tracking_number": "RM123456785GB",
            "tracking_company": "Royal Mail",
            "tracking_url": "https://www.royalmail.com/track-your-item",
        }
    ]
    path = f"/orders/{order['id']}/fulfillments.json"
    too_many = shopline_server.admin.post(
        path,
        json={"fulfillment": {"line_items": [{"id": int(first["id"]), "quantity": 3}]}},
    )
    assert too_many.status_code == 422
    eleven = shopline_server.admin.post(
        path,
        json={
            "fulfillment": {
                "line_items": [{"id": int(first["id"]), "quantity": 1}],
                "tracking_info_list": tracking * 11,
            }
        },
    )
    assert eleven.status_code == 422

    partial = shopline_server.admin.post(
        path,
        json={
            "fulfillment": {
                "line_items": [{"id": int(first["id"]), "quantity": 2}],
                "notify_customer": False,
                "tracking_info_list": tracking,
            }
        },
    )
    assert partial.status_code == 200
    fulfillment = partial.json()["fulfillment"]
    assert fulfillment["status"] == "success"
    assert fulfillment["tracking_info_list"] == tracking
    assert fulfillment["line_items"][0]["fulfillment_quantity"] == 2
    assert fulfillment["line_items"][0]["fulfillable_quantity"] == 0

    def current() -> dict:
        return shopline_server.admin.get(
            "/orders.json", params={"ids": order["id"], "status": "any"}
        ).json()["orders"][0]

    assert current()["fulfillment_status"] == "partial"
    assert [li["fulfillable_quantity"] for li in current()["line_items"]] == [0, 1]

    rest = shopline_server.admin.post(
        path, json={"fulfillment": {"line_items": [{"id": int(second["id"]), "quantity": 1}]}}
    )
    assert rest.status_code == 200
    assert current()["fulfillment_status"] == "fulfilled"
    count = shopline_server.admin.get(f"/orders/{order['id']}/fulfillments/count.json").json()
    assert count == {"count": 2}
    listed = shopline_server.admin.get(path).json()["fulfillments"]
    assert [f["id"] for f in listed] == [fulfillment["id"], rest.json()["fulfillment"]["id"]]

    new_tracking = [{"tracking_number": "DPD1", "tracking_company": "DPD", "tracking_url": None}]
    updated = shopline_server.admin.post(
        f"/orders/{order['id']}/fulfillments/{fulfillment['id']}/update_tracking.json",
        json={"fulfillment": {"tracking_info_list": new_tracking}},
    )
    assert updated.json()["fulfillment"]["tracking_info_list"] == new_tracking

    cancelled = shopline_server.admin.post(
        f"/orders/{order['id']}/fulfillments/{fulfillment['id']}/cancel.json"
    )
    assert cancelled.json()["fulfillment"]["status"] == "cancelled"
    assert current()["fulfillment_status"] == "partial"
    assert current()["line_items"][0]["fulfillable_quantity"] == 2


def test_shipped_order_cannot_be_cancelled(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order()
    shopline_server.admin.post(f"/orders/{order['id']}/fulfillments.json", json={"fulfillment": {}})
    response = shopline_server.admin.post(f"/orders/{order['id']}/cancel.json", json={})
    assert response.status_code == 422


def test_refunds_partial_then_full(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(lines=[{"sku": "STOVE-MINI", "quantity": 2}])
    line = order["line_items"][0]
    partial = shopline_server.admin.post(
        "/order/refund.json",
        json={
            "order_id": order["id"],
            "note": "one arrived dented",
            "notify": False,
            "refund_line_items": [
                {"line_item_id": line["id"], "quantity": 1, "restock_type": "no_restock"}
            ],
        },
    )
    assert partial.status_code == 200
    refund = partial.json()["data"]  # as SHOPLINE's SDK reads it
    assert refund["transactions"][0]["amount"] == "139.95"
    assert refund["refund_line_items"][0]["subtotal"] == "139.95"
    assert refund["note"] == "one arrived dented"
    too_much = shopline_server.admin.post(
        "/order/refund.json",
        json={
            "order_id": order["id"],
            "transactions": [{"kind": "refund", "gateway": "shopline_payments", "amount": "999"}],
        },
    )
    assert too_much.status_code == 422
    rest = shopline_server.admin.post(
        "/order/refund.json",
        json={
            "order_id": order["id"],
            "refund_line_items": [{"line_item_id": line["id"], "quantity": 1, "type": "Returned"}],
            "shipping": {"full_refund": True},
        },
    )
    assert rest.status_code == 200
    refunds = shopline_server.admin.get(f"/orders/{order['id']}/refunds.json").json()["refunds"]
    assert len(refunds) == 2
    one = shopline_server.admin.get(f"/orders/{order['id']}/refunds/{refunds[1]['id']}.json")
    assert one.json()["refund"]["order_adjustments"][0]["kind"] == "shipping_refund"
    state = shopline_server.admin.get(
        "/orders.json", params={"ids": order["id"], "status": "any"}
    ).json()["orders"][0]
    assert state["financial_status"] == "refunded"
    kinds = [
        t["kind"]
        for t in shopline_server.admin.get(f"/orders/{order['id']}/transactions.json").json()[
            "transactions"
        ]
    ]
    assert kinds == ["sale", "refund", "refund"]


def test_unpaid_order_cannot_be_refunded(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(paid=False)
    response = shopline_server.admin.post(
        "/order/refund.json",
        json={
            "order_id": order["id"],
            "refund_line_items": [{"line_item_id": order["line_items"][0]["id"], "quantity": 1}],
        },
    )
    assert response.status_code == 422


# -- customers ------------------------------------------------------------------------------


def test_customers_list_get_search_create_update(shopline_server: ShoplineServer) -> None:
    created = shopline_server.admin.post(
        "/customers.json",
        json={"customer": {"phone": "7700900999", "first_name": "Phoebe", "last_name": "Only"}},
    )
    assert created.status_code == 200
    customer = created.json()["customer"]
    assert customer["email"] is None and customer["area_code"] == "+44"
    fetched = shopline_server.admin.get(f"/customers/v2/{customer['id']}.json").json()
    assert fetched["customer"]["phone"] == "7700900999"
    found = shopline_server.admin.get(
        "/customers/v2/search.json", params={"query_param": "900999"}
    ).json()["customers"]
    assert [c["id"] for c in found] == [customer["id"]]
    updated = shopline_server.admin.put(
        f"/customers/{customer['id']}.json", json={"customer": {"email": "phoebe@example.com"}}
    )
    assert updated.json()["customer"]["email"] == "phoebe@example.com"
    duplicate = shopline_server.admin.post(
        "/customers.json", json={"customer": {"email": "PHOEBE@example.com"}}
    )
    assert duplicate.status_code == 422
    too_long = shopline_server.admin.post("/customers.json", json={"customer": {"phone": "1" * 21}})
    assert too_long.status_code == 422
    listed = shopline_server.admin.get("/v2/customers.json", params={"limit": 250}).json()
    assert customer["id"] in {c["id"] for c in listed["customers"]}
    kinds = {(bool(c["email"]), bool(c["phone"])) for c in listed["customers"]}
    assert {(True, False), (False, True), (True, True)} <= kinds


# -- webhook subscriptions ------------------------------------------------------------------


def test_webhook_subscription_crud(shopline_server: ShoplineServer) -> None:
    body = {
        "webhook": {
            "address": "https://127.0.0.1:9/hooks",
            "topic": "orders/paid",
            "api_version": "v20251201",
        }
    }
    created = shopline_server.admin.post("/webhooks.json", json=body)
    assert created.status_code == 200
    webhook = created.json()["webhook"]
    assert isinstance(webhook["id"], int)
    assert shopline_server.admin.post("/webhooks.json", json=body).status_code == 422
    bad_topic = {"webhook": {**body["webhook"], "topic": "orders/teleported"}}
    assert shopline_server.admin.post("/webhooks.json", json=bad_topic).status_code == 422
    assert shopline_server.admin.get("/webhooks/count.json").json()["count"] >= 1
    listed = shopline_server.admin.get("/webhooks.json").json()["webhooks"]
    assert webhook["id"] in {w["id"] for w in listed}
    deleted = shopline_server.admin.delete(f"/webhooks/{webhook['id']}.json")
    assert deleted.status_code == 200
    assert shopline_server.admin.delete(f"/webhooks/{webhook['id']}.json").status_code == 404


def test_docs_are_served(shopline_server: ShoplineServer) -> None:
    spec = shopline_server.control.get("/openapi.json").json()
    assert "/admin/openapi/{version}/orders.json" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "/_sandbox/orders" in spec["paths"]
    assert shopline_server.control.get("/docs").status_code == 200


def test_fulfillment_line_id_must_be_an_integer(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order()
    line_id = order["line_items"][0]["id"]
    response = shopline_server.admin.post(
        f"/orders/{order['id']}/fulfillments.json",
        json={"fulfillment": {"line_items": [{"id": line_id, "quantity": 1}]}},
    )
    assert response.status_code == 422
    assert "integer" in response.json()["message"]


def test_refund_calculation_changes_nothing(shopline_server: ShoplineServer) -> None:
    order = shopline_server.place_order(lines=[{"sku": "STOVE-MINI", "quantity": 1}])
    line = order["line_items"][0]
    calculated = shopline_server.admin.post(
        f"/orders/{order['id']}/refunds/calculate.json",
        json={
            "refund": {
                "refund_line_items": [{"line_item_id": line["id"], "quantity": 1}],
                "shipping": {"full_refund": True},
            }
        },
    )
    assert calculated.status_code == 200
    suggestion = calculated.json()["refund"]
    assert suggestion["transactions"][0]["kind"] == "suggested_refund"
    assert suggestion["transactions"][0]["amount"] == "143.90"
    assert shopline_server.admin.get(f"/orders/{order['id']}/refunds.json").json() == {
        "refunds": []
    }
    after = shopline_server.admin.get("/orders.json", params={"ids": order["id"]}).json()
    assert after["orders"][0]["financial_status"] == "paid"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/orders.json", {"order": {"line_items": [{"sku": "STOVE-MINI"}], "customer": "x"}}),
        ("/orders.json", {"order": {"line_items": [{"sku": "STOVE-MINI", "quantity": "two"}]}}),
        ("/orders.json", {"order": {"line_items": "STOVE-MINI"}}),
        ("/products/products.json", {"product": {"title": "X", "variants": [{"price": "abc"}]}}),
        ("/inventory_levels/set.json", ["not", "an", "object"]),
    ],
)
def test_malformed_bodies_are_422_never_5xx(
    shopline_server: ShoplineServer, path: str, body: object
) -> None:
    response = shopline_server.admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["code"], str)


def test_checkout_refuses_sold_out_but_admin_orders_may_oversell(
    shopline_server: ShoplineServer,
) -> None:
    variant = _variant_by_sku(shopline_server, "ACME-HAMMOCK-XL-RED")
    shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={
            "inventory_item_id": variant["inventory_item_id"],
            "location_id": "7001",
            "available": 1,
        },
    )
    refused = shopline_server.control.post(
        "/_sandbox/orders", json={"lines": [{"sku": "ACME-HAMMOCK-XL-RED", "quantity": 2}]}
    )
    assert refused.status_code == 422
    assert "sold out" in refused.json()["message"]
    admin = shopline_server.admin.post(
        "/orders.json",
        json={"order": {"line_items": [{"sku": "ACME-HAMMOCK-XL-RED", "quantity": 2}]}},
    )
    assert admin.status_code == 200
    levels = shopline_server.admin.get(
        "/inventory_levels.json",
        params={"inventory_item_ids": variant["inventory_item_id"], "location_ids": "7001"},
    ).json()["inventory_levels"]
    assert levels[0]["available"] == -1
