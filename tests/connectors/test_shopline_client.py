"""ShoplineClient against a strict fake transport: requests, pagination, models, quirks."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from stokline.connectors import (
    NotFoundError,
    PaginationLoopError,
    ResponseFormatError,
    ShoplineClient,
)
from stokline.connectors.shopline.client import parse_next_link

from .conftest import API, SHOPLINE_BASE, SHOPLINE_TOKEN
from .fakes import FakeClock, StrictTransport, link


def order(order_id: str, **extra: object) -> dict[str, object]:
    return {"id": order_id, "name": f"#{order_id[-4:]}", "current_total_price": "8.00", **extra}


async def collect(iterator) -> list:
    return [item async for item in iterator]


def test_requests_carry_bearer_token_and_json_headers(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", f"{API}/locations/list.json", body={"locations": []})
    assert clock.run(shopline.list_locations()) == []
    request = transport.requests[0]
    assert request.headers["Authorization"] == f"Bearer {SHOPLINE_TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.url.host == "demo.myshopline.com"


def test_orders_follow_link_header_across_three_pages(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    url = f"{SHOPLINE_BASE}{API}/orders.json"
    transport.expect(
        "GET",
        f"{API}/orders.json",
        params={"limit": "100", "status": "any", "financial_status": "paid"},
        body={"orders": [order("21000000000000000000000001")]},
        headers={"link": link(url, "p2")},
    )
    transport.expect(
        "GET",
        f"{API}/orders.json",
        params={"page_info": "p2", "limit": "100"},
        exact_params=True,
        body={"orders": [order("21000000000000000000000002")]},
        headers={"link": f'<{url}?page_info=p1>; rel="previous", ' + link(url, "p3")},
    )
    transport.expect(
        "GET",
        f"{API}/orders.json",
        params={"page_info": "p3", "limit": "100"},
        exact_params=True,
        body={"orders": [order("21000000000000000000000003")]},
        headers={"link": f'<{url}?page_info=p2>; rel="previous"'},
    )
    orders = clock.run(collect(shopline.iter_orders(financial_status="paid")))
    assert [o.id for o in orders] == [
        "21000000000000000000000001",
        "21000000000000000000000002",
        "21000000000000000000000003",
    ]
    assert orders[0].current_total_price == Decimal("8.00")


def test_next_pages_keep_fields_and_stay_on_the_configured_host(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    # The link points at another host: the token must never follow it there.
    other = "https://elsewhere.example.com/admin/openapi/v20251201/products/products.json"
    transport.expect(
        "GET",
        f"{API}/products/products.json",
        params={"limit": "1000", "fields": "id,title"},
        body={"products": [{"id": "1"}]},
        headers={"link": link(other, "abc")},
    )
    transport.expect(
        "GET",
        f"{API}/products/products.json",
        params={"page_info": "abc", "limit": "1000", "fields": "id,title"},
        exact_params=True,
        body={"products": [{"id": "2"}]},
    )
    products = clock.run(collect(shopline.iter_products(fields="id,title", status="active")))
    assert [p.id for p in products] == ["1", "2"]
    assert {r.url.host for r in transport.requests} == {"demo.myshopline.com"}


def test_repeated_page_info_raises_pagination_loop_error(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    url = f"{SHOPLINE_BASE}{API}/v2/customers.json"
    path = f"{API}/v2/customers.json"
    transport.expect(
        "GET", path, body={"customers": [{"id": "1"}]}, headers={"link": link(url, "A")}
    )
    transport.expect(
        "GET", path, body={"customers": [{"id": "2"}]}, headers={"link": link(url, "B")}
    )
    transport.expect(
        "GET", path, body={"customers": [{"id": "3"}]}, headers={"link": link(url, "A")}
    )
    with pytest.raises(PaginationLoopError, match="page_info 'A' came back"):
        clock.run(collect(shopline.iter_customers()))
    assert transport.requests[0].url.params["limit"] == "250"


def test_next_link_without_page_info_is_a_format_error(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        f"{API}/v2/customers.json",
        body={"customers": []},
        headers={"link": f'<{SHOPLINE_BASE}{API}/v2/customers.json?limit=5>; rel="next"'},
    )
    with pytest.raises(ResponseFormatError, match="page_info") as info:
        clock.run(collect(shopline.iter_customers()))
    assert info.value.field == "link"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('<https://s/x.json?page_info=a>; rel="previous"', None),
        ('<https://s/x.json?page_info=a>; rel="next"', "https://s/x.json?page_info=a"),
        (
            '<https://s/x.json?page_info=p>; rel="previous", <https://s/x.json?page_info=n>; rel="next"',
            "https://s/x.json?page_info=n",
        ),
    ],
)
def test_parse_next_link(header: str | None, expected: str | None) -> None:
    assert parse_next_link(header) == expected


def test_order_ids_are_sent_in_batches_of_100(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    ids = [f"2100000000000000000000{n:04d}" for n in range(250)]
    for chunk in (ids[:100], ids[100:200], ids[200:]):
        transport.expect(
            "GET",
            f"{API}/orders.json",
            params={"ids": ",".join(chunk), "limit": "100"},
            body={"orders": [order(i) for i in chunk]},
        )
    found = clock.run(collect(shopline.iter_orders(ids=ids + ids[:10])))
    assert [o.id for o in found] == ids


def test_inventory_levels_batch_item_ids_and_pass_locations(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = ShoplineClient(
        SHOPLINE_BASE,
        __import__("pydantic").SecretStr(SHOPLINE_TOKEN),
        transport=transport,
        clock=clock,
        id_batch_size=2,
    )
    for chunk in (["11", "12"], ["13"]):
        transport.expect(
            "GET",
            f"{API}/inventory_levels.json",
            params={"inventory_item_ids": ",".join(chunk), "location_ids": "6001,6002"},
            body={
                "inventory_levels": [
                    {"inventory_item_id": i, "location_id": "6001", "available": 3} for i in chunk
                ]
            },
        )
    levels = clock.run(collect(client.iter_inventory_levels(["11", "12", "13"], ["6001", "6002"])))
    assert [(lv.inventory_item_id, lv.available) for lv in levels] == [
        ("11", 3),
        ("12", 3),
        ("13", 3),
    ]


def test_set_inventory_level_posts_absolute_value(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "POST",
        f"{API}/inventory_levels/set.json",
        json_body={"inventory_item_id": "11", "location_id": "6001", "available": 7},
        body={
            "inventory_level": {"inventory_item_id": "11", "location_id": "6001", "available": 7}
        },
    )
    level = clock.run(shopline.set_inventory_level("11", "6001", 7))
    assert level.available == 7
    assert transport.requests[0].headers["content-type"].startswith("application/json")


def test_create_fulfillment_sends_integer_line_ids_and_tracking_list(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "POST",
        f"{API}/orders/9001/fulfillments.json",
        json_body={
            "fulfillment": {
                "line_items": [{"id": 417, "quantity": 2}],
                "notify_customer": True,
                "tracking_info_list": [
                    {"tracking_number": "RM1GB", "tracking_company": "Royal Mail"}
                ],
            }
        },
        body={"fulfillment": {"id": "77", "order_id": "9001", "status": "success"}},
    )
    result = clock.run(
        shopline.create_fulfillment(
            "9001",
            [{"id": "417", "quantity": 2}],
            [{"tracking_number": "RM1GB", "tracking_company": "Royal Mail"}],
            notify_customer=True,
        )
    )
    assert (result.id, result.status) == ("77", "success")


def test_create_fulfillment_refuses_more_than_ten_tracking_entries(
    shopline: ShoplineClient, clock: FakeClock
) -> None:
    tracking = [{"tracking_number": f"T{n}"} for n in range(11)]
    with pytest.raises(ValueError, match="at most 10"):
        clock.run(shopline.create_fulfillment("1", [{"id": "1", "quantity": 1}], tracking))


@pytest.mark.parametrize("wrapper", ["data", "refund"])  # SHOPLINE's SDK reads "data"
def test_create_refund_uses_singular_order_path(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock, wrapper: str
) -> None:
    transport.expect(
        "POST",
        f"{API}/order/refund.json",
        json_body={"note": "damaged", "order_id": "9001"},
        body={
            wrapper: {
                "id": "r1",
                "order_id": "9001",
                "transactions": [{"id": "t1", "amount": "4.50", "kind": "refund"}],
            }
        },
    )
    refund = clock.run(shopline.create_refund("9001", {"note": "damaged"}))
    assert refund.transactions[0].amount == Decimal("4.50")


def test_webhook_id_is_an_integer_and_version_defaults_to_the_clients(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "POST",
        f"{API}/webhooks.json",
        json_body={
            "webhook": {
                "address": "https://hooks.example.com/shopline",
                "topic": "orders/paid",
                "api_version": "v20251201",
            }
        },
        body={
            "webhook": {
                "id": 501,
                "address": "https://hooks.example.com/shopline",
                "topic": "orders/paid",
            }
        },
    )
    hook = clock.run(shopline.create_webhook("https://hooks.example.com/shopline", "orders/paid"))
    assert hook.id == 501


def test_count_orders_reads_count(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET", f"{API}/orders/count.json", params={"status": "any"}, body={"count": 12}
    )
    assert clock.run(shopline.count_orders()) == 12


def test_money_in_request_bodies_is_sent_as_strings(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "PUT",
        f"{API}/products/variants/55.json",
        json_body={"variant": {"price": "19.90", "id": "55"}},
        body={"variant": {"id": "55", "price": "19.90"}},
    )
    variant = clock.run(shopline.update_variant("55", {"price": Decimal("19.90")}))
    assert variant.price == Decimal("19.90")
    assert json.loads(transport.requests[0].content)["variant"]["price"] == "19.90"


def test_constructor_validates_plain_values() -> None:
    from pydantic import SecretStr

    with pytest.raises(TypeError, match="SecretStr"):
        ShoplineClient(SHOPLINE_BASE, SHOPLINE_TOKEN)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="v20251201"):
        ShoplineClient(SHOPLINE_BASE, SecretStr("t"), api_version="2025-12")
    with pytest.raises(ValueError, match="limit"):
        ShoplineClient(SHOPLINE_BASE, SecretStr("t")).iter_customers(limit=251)


def test_ids_are_single_path_segments(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    # The fake compares decoded paths; the raw path below proves the slash stayed escaped.
    transport.expect("GET", f"{API}/products/../orders.json", status=404, body={"errors": "no"})
    with pytest.raises(NotFoundError):
        clock.run(shopline.get_product("../orders"))
    assert transport.requests[0].url.raw_path.endswith(b"/products/..%2Forders.json")
    with pytest.raises(ValueError, match="invalid id"):
        clock.run(shopline.get_product(".."))


def test_get_order_reads_through_the_ids_filter(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", f"{API}/orders.json", params={"ids": "42"}, body={"orders": []})
    assert clock.run(shopline.get_order("42")) is None


def test_app_key_adds_appkey_and_millisecond_timestamp(
    transport: StrictTransport, clock: FakeClock
) -> None:
    from pydantic import SecretStr

    client = ShoplineClient(
        SHOPLINE_BASE, SecretStr(SHOPLINE_TOKEN), app_key="app-1", transport=transport, clock=clock
    )
    transport.expect("GET", f"{API}/webhooks.json", body={"webhooks": []})
    clock.run(client.list_webhooks())
    headers = transport.requests[0].headers
    assert headers["appkey"] == "app-1"
    assert headers["timestamp"] == str(int(clock.now * 1000))


def test_fields_without_id_are_refused(shopline: ShoplineClient, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="must include 'id'"):
        clock.run(collect(shopline.iter_orders(fields="name,email")))


def test_create_product_posts_the_wrapped_product_once(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    body = {"title": "Tent", "variants": [{"sku": "T-1", "price": Decimal("9.50")}]}
    transport.expect(
        "POST",
        f"{API}/products/products.json",
        json_body={"product": {"title": "Tent", "variants": [{"sku": "T-1", "price": "9.50"}]}},
        body={"product": {"id": "7", "title": "Tent", "variants": [{"id": "8", "sku": "T-1"}]}},
    )
    product = clock.run(shopline.create_product(body))
    assert product.id == "7" and [v.sku for v in product.variants] == ["T-1"]


def test_update_product_puts_only_the_given_fields(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "PUT",
        f"{API}/products/7.json",
        json_body={"product": {"status": "archived", "id": "7"}},
        body={"product": {"id": "7", "status": "archived"}},
    )
    assert clock.run(shopline.update_product("7", {"status": "archived"})).status == "archived"
