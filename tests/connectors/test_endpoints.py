"""Every client method hits its documented endpoint with its documented body (one table each)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from stokline.connectors import ShoplineClient, StoklyClient

from .conftest import API, make_stokly
from .fakes import FakeClock, StrictTransport

ORDER = {"id": "9001", "name": "#1001"}
FULFILLMENT = {"id": "77", "status": "success"}
LEVEL = {"inventory_item_id": "11", "location_id": "6001", "available": 1}


def assert_models(result: Any) -> None:
    """The call returned typed records (one, or a list of them)."""
    records = result if isinstance(result, list) else [result]
    assert all(isinstance(record, BaseModel) for record in records), result


async def drain(result: Any) -> Any:
    if hasattr(result, "__aiter__"):
        return [x async for x in result]
    return await result


SHOPLINE_CASES: list[tuple[str, Callable[[ShoplineClient], Any], str, str, Any, Any]] = [
    (
        "get_product",
        lambda c: c.get_product("5"),
        "GET",
        "products/5.json",
        None,
        {"product": {"id": "5"}},
    ),
    (
        "get_variant",
        lambda c: c.get_variant("6"),
        "GET",
        "products/variants/6.json",
        None,
        {"variant": {"id": "6"}},
    ),
    (
        "adjust_inventory_level",
        lambda c: c.adjust_inventory_level("11", "6001", -2),
        "POST",
        "inventory_levels/adjust.json",
        {"inventory_item_id": "11", "location_id": "6001", "available_adjustment": -2},
        {"inventory_level": LEVEL},
    ),
    (
        "connect_inventory_level",
        lambda c: c.connect_inventory_level("11", "6001"),
        "POST",
        "inventory_levels/connect.json",
        {"inventory_item_id": "11", "location_id": "6001"},
        {"inventory_level": LEVEL},
    ),
    (
        "update_order",
        lambda c: c.update_order("9001", {"tags": "stokly"}),
        "PUT",
        "orders/9001.json",
        {"order": {"tags": "stokly", "id": "9001"}},
        {"order": ORDER},
    ),
    (
        "cancel_order",
        lambda c: c.cancel_order("9001", "customer"),
        "POST",
        "orders/9001/cancel.json",
        {"cancel_reason": "customer"},
        {"order": ORDER},
    ),
    (
        "list_transactions",
        lambda c: c.list_transactions("9001"),
        "GET",
        "orders/9001/transactions.json",
        None,
        {"transactions": [{"id": "t1", "kind": "sale", "amount": "8.00"}]},
    ),
    (
        "list_refunds",
        lambda c: c.list_refunds("9001"),
        "GET",
        "orders/9001/refunds.json",
        None,
        {"refunds": [{"id": "r1", "refund_line_items": [{"line_item_id": "417", "quantity": 1}]}]},
    ),
    (
        "list_fulfillments",
        lambda c: c.list_fulfillments("9001"),
        "GET",
        "orders/9001/fulfillments.json",
        None,
        {"fulfillments": [FULFILLMENT]},
    ),
    (
        "update_fulfillment_tracking",
        lambda c: c.update_fulfillment_tracking("9001", "77", [{"tracking_number": "X2"}]),
        "POST",
        "orders/9001/fulfillments/77/update_tracking.json",
        {
            "fulfillment": {
                "notify_customer": False,
                "tracking_info_list": [{"tracking_number": "X2"}],
            }
        },
        {"fulfillment": FULFILLMENT},
    ),
    (
        "cancel_fulfillment",
        lambda c: c.cancel_fulfillment("9001", "77"),
        "POST",
        "orders/9001/fulfillments/77/cancel.json",
        {},
        {"fulfillment": {**FULFILLMENT, "status": "cancelled"}},
    ),
    (
        "get_customer",
        lambda c: c.get_customer("c1"),
        "GET",
        "customers/v2/c1.json",
        None,
        {"customer": {"id": "c1"}},
    ),
    (
        "search_customers",
        lambda c: c.search_customers("+447700900123"),
        "GET",
        "customers/v2/search.json",
        None,
        {"customers": [{"id": "c1", "phone": "7700900123"}]},
    ),
    (
        "list_webhooks",
        lambda c: c.list_webhooks(),
        "GET",
        "webhooks.json",
        None,
        {"webhooks": [{"id": 1, "address": "https://h.example.com", "topic": "orders/paid"}]},
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "body", "answer"),
    [case[1:] for case in SHOPLINE_CASES],
    ids=[case[0] for case in SHOPLINE_CASES],
)
def test_shopline_endpoints(
    shopline: ShoplineClient,
    transport: StrictTransport,
    clock: FakeClock,
    call: Callable[[ShoplineClient], Any],
    method: str,
    path: str,
    body: Any,
    answer: Any,
) -> None:
    transport.expect(method, f"{API}/{path}", json_body=body, body=answer)
    assert_models(clock.run(drain(call(shopline))))


def test_search_customers_sends_the_query(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        f"{API}/customers/v2/search.json",
        params={"query_param": "ada@example.com", "limit": "250"},
        exact_params=True,
        body={"customers": []},
    )
    assert clock.run(drain(shopline.search_customers("ada@example.com"))) == []


CREATED = {"data": {"id": "new-1"}}


def envelope(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"count": len(rows)}, "data": rows}


STOKLY_CASES: list[tuple[str, Callable[[StoklyClient], Any], str, str, Any, Any]] = [
    (
        "iter_bins",
        lambda c: c.iter_bins("L1"),
        "GET",
        "/v0/locations/L1/bins",
        None,
        envelope([{"binId": "b1", "name": "A-01", "default": 1}]),
    ),
    (
        "iter_listings",
        lambda c: c.iter_listings("ch1"),
        "GET",
        "/v0/channels/ch1/listings",
        None,
        envelope([{"listingId": "li1", "itemId": "i1", "referenceId": "v1"}]),
    ),
    (
        "iter_channels",
        lambda c: c.iter_channels(),
        "GET",
        "/v0/channels",
        None,
        envelope([{"channelId": "ch1", "type": 7}]),
    ),
    (
        "create_customer",
        lambda c: c.create_customer({"email": "a@example.com", "type": 1}),
        "POST",
        "/v0/customers",
        {"email": "a@example.com", "type": 1},
        CREATED,
    ),
    (
        "iter_sale_orders",
        lambda c: c.iter_sale_orders(),
        "GET",
        "/v2/saleorders",
        None,
        envelope([{"saleOrderId": "so1"}]),
    ),
    (
        "get_sale_order",
        lambda c: c.get_sale_order("so1"),
        "GET",
        "/v2/saleorders/so1",
        None,
        {"data": {"saleOrderId": "so1", "stage": "order"}},
    ),
    (
        "get_sale_order_items",
        lambda c: c.get_sale_order_items("so1"),
        "GET",
        "/v2/saleorders/so1/items",
        None,
        envelope([{"lineId": "l1", "quantity": 2, "displayPrice": 9.99}]),
    ),
    (
        "patch_sale_order",
        lambda c: c.patch_sale_order("so1", {"tags": ["shopline"]}),
        "PATCH",
        "/v2/saleorders/so1",
        {"tags": ["shopline"]},
        {"data": {"id": "so1"}},
    ),
    (
        "collect_items",
        lambda c: c.collect_items("so1", "L1", [("l1", 2)]),
        "POST",
        "/v2/saleorders/so1/collect-items",
        {"locationId": "L1", "items": [{"lineId": "l1", "quantity": 2}]},
        {"data": {"id": "so1"}},
    ),
    (
        "create_invoice",
        lambda c: c.create_invoice(
            "so1", [{"status": "paid", "payments": [{"method": 4, "amount": Decimal("9.99")}]}]
        ),
        "POST",
        "/v2/saleorders/so1/invoices",
        {"invoices": [{"status": "paid", "payments": [{"method": 4, "amount": 9.99}]}]},
        {"data": {"id": "inv1", "ids": ["inv1"]}},
    ),
    (
        "iter_invoices",
        lambda c: c.iter_invoices(),
        "GET",
        "/v0/invoices",
        None,
        envelope([{"saleInvoiceId": "inv1", "total": 9.99}]),
    ),
    (
        "iter_allocations",
        lambda c: c.iter_allocations(),
        "GET",
        "/v0/allocations",
        None,
        envelope([{"itemId": "i1", "locationId": None, "allocated": 2}]),
    ),
    (
        "create_shipment",
        lambda c: c.create_shipment("so1", {"carrier": "royal-mail", "trackingNumbers": ["RM1"]}),
        "POST",
        "/v2/saleorders/so1/shipments",
        {"carrier": "royal-mail", "trackingNumbers": ["RM1"]},
        CREATED,
    ),
    (
        "iter_sale_order_shipments",
        lambda c: c.iter_sale_order_shipments("so1"),
        "GET",
        "/v2/saleorders/so1/shipments",
        None,
        envelope([{"shipmentId": "s1", "saleOrderId": "so1", "status": "dispatched"}]),
    ),
    (
        "get_shipment",
        lambda c: c.get_shipment("s1"),
        "GET",
        "/v0/shipments/s1",
        None,
        {"data": {"shipmentId": "s1", "saleOrderId": "so1", "status": "dispatched"}},
    ),
    (
        "update_shipment",
        lambda c: c.update_shipment("s1", {"status": "cancelled"}),
        "PATCH",
        "/v0/shipments/s1",
        {"status": "cancelled"},
        {"data": {"id": "s1"}},
    ),
    (
        "create_refund",
        lambda c: c.create_refund("so1", {"sourceReferenceId": "RF1", "amount": Decimal("5.00")}),
        "POST",
        "/v2/saleorders/so1/refunds",
        {"sourceReferenceId": "RF1", "amount": 5},
        CREATED,
    ),
    (
        "iter_sale_order_refunds",
        lambda c: c.iter_sale_order_refunds("so1"),
        "GET",
        "/v2/saleorders/so1/refunds",
        None,
        envelope([{"refundId": "r1", "saleOrderId": "so1", "amount": 5}]),
    ),
    (
        "iter_refunds",
        lambda c: c.iter_refunds(),
        "GET",
        "/v0/refunds",
        None,
        envelope([{"refundId": "r1", "saleOrderId": "so1", "amount": 5}]),
    ),
    (
        "create_payment",
        lambda c: c.create_payment("so1", {"transactionId": "pi_1", "kind": "payment"}),
        "POST",
        "/v2/saleorders/so1/payments",
        {"transactionId": "pi_1", "kind": "payment"},
        CREATED,
    ),
    (
        "iter_sale_order_payments",
        lambda c: c.iter_sale_order_payments("so1"),
        "GET",
        "/v2/saleorders/so1/payments",
        None,
        envelope(
            [
                {
                    "paymentId": "p1",
                    "saleOrderId": "so1",
                    "kind": "payment",
                    "transactionId": "pi_1",
                    "amount": 53.98,
                }
            ]
        ),
    ),
    (
        "iter_payments",
        lambda c: c.iter_payments(),
        "GET",
        "/v0/payments",
        None,
        envelope([]),
    ),
    (
        "get_journal",
        lambda c: c.get_journal("j1"),
        "GET",
        "/v0/journals/j1",
        None,
        {"data": {"journalId": "j1", "reference": "r", "date": "2026-11-26", "currency": "GBP"}},
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "body", "answer"),
    [case[1:] for case in STOKLY_CASES],
    ids=[case[0] for case in STOKLY_CASES],
)
def test_stokly_endpoints(
    transport: StrictTransport,
    clock: FakeClock,
    call: Callable[[StoklyClient], Any],
    method: str,
    path: str,
    body: Any,
    answer: Any,
) -> None:
    client = make_stokly(transport, clock)
    transport.expect(
        "POST",
        "/v1/grant",
        body={
            "data": {"authenticationResult": {"accessToken": "t", "expiry": "2099-01-01T00:00:00Z"}}
        },
    )
    transport.expect(method, path, json_body=body, body=answer)
    assert_models(clock.run(drain(call(client))))
