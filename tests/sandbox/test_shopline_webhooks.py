"""Webhook deliveries from the SHOPLINE sandbox to a real local receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.sandbox.conftest import (
    SHOPLINE_SECRET,
    SHOPLINE_VERSION,
    Received,
    ShoplineServer,
    WebhookReceiver,
)


def independent_hex_signature(body: bytes, secret: str) -> str:
    """The receiver side of SHOPLINE's signature, written from the docs, not the sandbox."""
    return hmac.HMAC(secret.encode("utf-8"), body, digestmod=hashlib.sha256).hexdigest()


def subscribe(server: ShoplineServer, receiver: WebhookReceiver, *topics: str) -> list[int]:
    ids = []
    for topic in topics:
        response = server.admin.post(
            "/webhooks.json",
            json={
                "webhook": {
                    "address": f"{receiver.url}/hooks/{topic}",
                    "topic": topic,
                    "api_version": SHOPLINE_VERSION,
                }
            },
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["webhook"]["id"])
    return ids


@pytest.fixture
def subscriptions(shopline_server: ShoplineServer):
    """Delete this test's subscriptions afterwards so tests stay independent."""
    created: list[int] = []
    yield created
    for webhook_id in created:
        shopline_server.admin.delete(f"/webhooks/{webhook_id}.json")
    shopline_server.control.put("/_sandbox/faults", json={"profile": "none"})
    shopline_server.control.put(
        "/_sandbox/webhook_settings", json={"signature_encoding": "hex", "timeout_s": 5}
    )


def for_order(order_id: str, topic: str):
    def match(r: Received) -> bool:
        return (
            r.headers.get("x-shopline-topic") == topic and json.loads(r.body).get("id") == order_id
        )

    return match


def test_order_webhooks_are_signed_bare_payloads(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    subscriptions += subscribe(shopline_server, webhook_receiver, "orders/create", "orders/paid")
    order = shopline_server.place_order()
    created = webhook_receiver.wait_for(for_order(order["id"], "orders/create"))[0]
    paid = webhook_receiver.wait_for(for_order(order["id"], "orders/paid"))[0]
    for delivery in (created, paid):
        expected = independent_hex_signature(delivery.body, SHOPLINE_SECRET)
        assert hmac.compare_digest(delivery.headers["x-shopline-hmac-sha256"], expected)
        assert delivery.headers["x-shopline-shop-domain"] == "demo-outdoor.myshopline.com"
        assert delivery.headers["x-shopline-api-version"] == SHOPLINE_VERSION
        assert delivery.headers["x-shopline-shop-id"].isdigit()
        assert delivery.headers["x-shopline-merchant-id"].isdigit()
        assert delivery.headers["x-shopline-webhook-id"]
        payload = json.loads(delivery.body)
        assert "order" not in payload and payload["line_items"][0]["sku"] == "TENT-2P-GRN"
    assert created.headers["x-shopline-webhook-id"] != paid.headers["x-shopline-webhook-id"]
    assert json.loads(paid.body)["financial_status"] == "paid"


def test_signature_can_be_base64(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    shopline_server.control.put("/_sandbox/webhook_settings", json={"signature_encoding": "base64"})
    subscriptions += subscribe(shopline_server, webhook_receiver, "orders/create")
    order = shopline_server.place_order(paid=False)
    delivery = webhook_receiver.wait_for(for_order(order["id"], "orders/create"))[0]
    digest = hmac.new(SHOPLINE_SECRET.encode(), delivery.body, hashlib.sha256).digest()
    assert delivery.headers["x-shopline-hmac-sha256"] == base64.b64encode(digest).decode()


def test_failed_delivery_is_retried_with_the_same_webhook_id(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    webhook_receiver.plan["orders/paid"] = [500, 404]
    subscriptions += subscribe(shopline_server, webhook_receiver, "orders/paid")
    order = shopline_server.place_order()
    attempts = webhook_receiver.wait_for(for_order(order["id"], "orders/paid"), count=3)
    assert len({a.headers["x-shopline-webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    assert len({a.headers["x-shopline-hmac-sha256"] for a in attempts}) == 1
    time.sleep(0.3)
    assert len(webhook_receiver.matching(for_order(order["id"], "orders/paid"))) == 3
    deliveries = shopline_server.control.get(
        "/_sandbox/deliveries", params={"topic": "orders/paid"}
    ).json()["deliveries"]
    mine = [d for d in deliveries if d["payload"]["id"] == order["id"]]
    assert mine[0]["state"] == "delivered"
    assert [a["status"] for a in mine[0]["attempts"]] == [500, 404, 200]


def test_slow_receiver_counts_as_failed_and_never_blocks_the_api(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    shopline_server.control.put("/_sandbox/webhook_settings", json={"timeout_s": 1.0})
    webhook_receiver.delay_s = 1.5
    subscriptions += subscribe(shopline_server, webhook_receiver, "orders/create")
    started = time.monotonic()
    order = shopline_server.place_order()
    # Waiting for the receiver would take the full 1 s attempt timeout.
    assert time.monotonic() - started < 0.9
    attempts = webhook_receiver.wait_for(for_order(order["id"], "orders/create"), count=2)
    assert len({a.headers["x-shopline-webhook-id"] for a in attempts}) == 1
    webhook_receiver.delay_s = 0.0
    deadline = time.monotonic() + 5
    state = None
    while time.monotonic() < deadline:
        deliveries = shopline_server.control.get(
            "/_sandbox/deliveries", params={"topic": "orders/create"}
        ).json()["deliveries"]
        state = next(d for d in deliveries if d["payload"]["id"] == order["id"])
        if state["state"] == "delivered":
            break
        time.sleep(0.05)
    assert state is not None and state["state"] == "delivered"
    assert state["attempts"][0]["error"] == "ReadTimeout"


def test_fulfilment_refund_inventory_and_product_topics(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    subscriptions += subscribe(
        shopline_server,
        webhook_receiver,
        "fulfillments/create",
        "orders/partially_fulfilled",
        "orders/fulfilled",
        "refunds/create",
        "inventory_levels/update",
        "products/update",
        "order_transactions/create",
    )
    order = shopline_server.place_order(
        lines=[{"sku": "STOVE-MINI", "quantity": 1}, {"sku": "TENT-2P-GRN", "quantity": 1}]
    )
    first, second = order["line_items"]
    path = f"/orders/{order['id']}/fulfillments.json"
    shopline_server.admin.post(
        path, json={"fulfillment": {"line_items": [{"id": int(first["id"]), "quantity": 1}]}}
    )
    shopline_server.admin.post(
        path, json={"fulfillment": {"line_items": [{"id": int(second["id"]), "quantity": 1}]}}
    )
    webhook_receiver.wait_for(for_order(order["id"], "orders/partially_fulfilled"))
    webhook_receiver.wait_for(for_order(order["id"], "orders/fulfilled"))
    fulfilments = webhook_receiver.wait_for(
        lambda r: (
            r.headers["x-shopline-topic"] == "fulfillments/create"
            and json.loads(r.body)["order_id"] == order["id"]
        ),
        count=2,
    )
    assert {json.loads(f.body)["status"] for f in fulfilments} == {"success"}
    transaction = webhook_receiver.wait_for(
        lambda r: r.headers["x-shopline-topic"] == "order_transactions/create"
    )[0]
    assert set(json.loads(transaction.body)) == {
        "pay_seq",
        "pay_status",
        "pay_channel_deal_id",
        "pay_amount",
        "create_time",
    }

    shopline_server.control.post(f"/_sandbox/orders/{order['id']}/refund", json={})
    refund = webhook_receiver.wait_for(
        lambda r: (
            r.headers["x-shopline-topic"] == "refunds/create"
            and json.loads(r.body)["order_id"] == order["id"]
        )
    )[0]
    assert json.loads(refund.body)["transactions"][0]["kind"] == "refund"

    item = first["variant_id"]
    variant = shopline_server.admin.get(f"/products/variants/{item}.json").json()["variant"]
    shopline_server.admin.post(
        "/inventory_levels/set.json",
        json={
            "inventory_item_id": variant["inventory_item_id"],
            "location_id": "7002",
            "available": 33,
        },
    )
    level = webhook_receiver.wait_for(
        lambda r: (
            r.headers["x-shopline-topic"] == "inventory_levels/update"
            and json.loads(r.body)["available"] == 33
        )
    )[0]
    assert set(json.loads(level.body)) == {
        "inventory_item_id",
        "location_id",
        "variant_id",
        "available",
        "committed",
        "onhand",
        "unavailable",
        "updated_at",
    }
    shopline_server.admin.put(f"/products/variants/{item}.json", json={"variant": {"price": "99"}})
    product = webhook_receiver.wait_for(
        lambda r: r.headers["x-shopline-topic"] == "products/update"
    )
    assert json.loads(product[0].body)["variants"][0]["price"] == "99.00"


def test_hostile_profile_duplicates_deliveries(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    shopline_server.control.put(
        "/_sandbox/faults",
        json={"webhook_copies": 3, "webhook_reorder": True, "webhook_reorder_window_s": 0.2},
    )
    subscriptions += subscribe(shopline_server, webhook_receiver, "orders/create")
    orders = [shopline_server.place_order(paid=False) for _ in range(6)]
    for order in orders:
        webhook_receiver.wait_for(for_order(order["id"], "orders/create"))
    time.sleep(0.3)
    by_id: dict[str, list[Received]] = {}
    for r in webhook_receiver.matching(lambda r: r.headers["x-shopline-topic"] == "orders/create"):
        by_id.setdefault(r.headers["x-shopline-webhook-id"], []).append(r)
    assert len(by_id) == len(orders)
    assert max(len(copies) for copies in by_id.values()) > 1
    for copies in by_id.values():
        assert len({c.body for c in copies}) == 1


def test_subscription_deleted_after_the_last_retry_fails(
    shopline_server: ShoplineServer, webhook_receiver: WebhookReceiver, subscriptions: list[int]
) -> None:
    shopline_server.sandbox.webhooks.configure(retry_scale=0.00001)
    try:
        webhook_receiver.plan["orders/cancelled"] = [503] * 50
        (webhook_id,) = subscribe(shopline_server, webhook_receiver, "orders/cancelled")
        order = shopline_server.place_order(paid=False)
        shopline_server.control.post(f"/_sandbox/orders/{order['id']}/cancel", json={})
        webhook_receiver.wait_for(for_order(order["id"], "orders/cancelled"), count=20)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if shopline_server.admin.get(f"/webhooks/{webhook_id}.json").status_code == 404:
                break
            time.sleep(0.05)
        assert shopline_server.admin.get(f"/webhooks/{webhook_id}.json").status_code == 404
        assert len(webhook_receiver.matching(for_order(order["id"], "orders/cancelled"))) == 20
    finally:
        shopline_server.sandbox.webhooks.configure(retry_scale=0.01)
