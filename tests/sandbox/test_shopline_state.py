"""Persistence, seeding, the shared catalogue and the storefront simulation."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from stokline.sandbox.catalogue import demo_catalogue, ean13
from stokline.sandbox.common import DocStore, ServerThread
from stokline.sandbox.shopline import create_app, run_storefront, seed_demo
from stokline.sandbox.shopline.seed import UNMAPPED_GATEWAY
from tests.sandbox.conftest import (
    SHOPLINE_PREFIX,
    SHOPLINE_SECRET,
    SHOPLINE_TOKEN,
    WebhookReceiver,
)

AUTH = {"Authorization": f"Bearer {SHOPLINE_TOKEN}"}


def _app(data_dir: Path | None, **kwargs):
    return create_app(
        data_dir=data_dir,
        access_token=SHOPLINE_TOKEN,
        app_secret=SHOPLINE_SECRET,
        rate_per_s=None,
        **kwargs,
    )


def test_state_survives_a_restart(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        order = client.post(
            "/_sandbox/orders",
            json={"lines": [{"sku": "STOVE-MINI"}], "customer": {"email": "keep@example.com"}},
        ).json()["order"]
        client.post(
            f"{SHOPLINE_PREFIX}/webhooks.json",
            headers=AUTH,
            json={"webhook": {"address": "http://127.0.0.1:9/x", "topic": "orders/delete"}},
        )
        before = client.get("/_sandbox/summary").json()
    app.state.shopline.close()

    again = _app(tmp_path)
    with ServerThread(again) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/_sandbox/summary").json() == before
        found = client.get(
            f"{SHOPLINE_PREFIX}/orders.json", headers=AUTH, params={"ids": order["id"]}
        ).json()["orders"]
        assert found[0]["name"] == order["name"]
        following = client.post("/_sandbox/orders", json={"lines": [{"sku": "STOVE-MINI"}]}).json()[
            "order"
        ]
        assert int(following["name"][1:]) == int(order["name"][1:]) + 1
        assert following["id"] > order["id"]
        hooks = client.get(f"{SHOPLINE_PREFIX}/webhooks.json", headers=AUTH).json()["webhooks"]
        assert [h["topic"] for h in hooks] == ["orders/delete"]
    again.state.shopline.close()


def test_reset_wipes_and_reseeds() -> None:
    app = _app(None)
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
            client.post("/_sandbox/orders", json={"lines": [{"sku": "STOVE-MINI"}]})
            seeded = client.post("/_sandbox/reset", json={"skus": 50}).json()
            # 28 orders of every state, and the audit's 5 (src/stokline/sandbox/shopline/seed.py)
            assert seeded["order"] == 33 and seeded["location"] == 3
            empty = client.post("/_sandbox/reset", json={"seed": False}).json()
            assert set(empty.values()) == {0}
    finally:
        app.state.shopline.close()


def test_seed_demo_covers_every_state() -> None:
    store = DocStore(None)
    counts = seed_demo(store, skus=300, seed=7)
    assert counts["variants"] == sum(e.listed_on_shopline for e in demo_catalogue(300, 7))
    orders = store.list("order")
    states = {(o["status"], o["financial_status"], o["fulfillment_status"]) for o in orders}
    assert ("open", "paid", None) in states
    assert ("open", "unpaid", None) in states
    assert ("open", "refunded", None) in states
    assert ("open", "partially_refunded", None) in states
    assert ("cancelled", "unpaid", None) in states
    assert ("cancelled", "refunded", None) in states
    assert ("open", "paid", "partial") in states
    assert ("open", "paid", "fulfilled") in states
    skus = {li["sku"] for o in orders for li in o["line_items"]}
    assert {"TENT-2P-GRN", "STOVE-MINI", "GIFT-CARD-25", "ACME-HAMMOCK-XL-RED"} <= skus
    titles = {o["shipping_lines"][0]["title"] for o in orders}
    assert {"Royal Mail Tracked 48", "DPD Next Day", "Click & Collect Bristol"} <= titles
    assert {o["payment_gateway_names"][0] for o in orders} == {
        "shopline_payments",
        "paypal",
        "klarna",
        UNMAPPED_GATEWAY,  # for the audit: one order, refunded
    }
    customers = store.list("customer")
    assert any(c["email"] and not c["phone"] for c in customers)
    assert any(c["phone"] and not c["email"] for c in customers)
    assert any(not o["email"] and o["phone"] for o in orders)
    locations = {loc["id"]: loc for loc in store.list("location")}
    assert locations["7001"]["is_default"] == "true"
    assert {lv["location_id"] for lv in store.list("inventory_level")} == {"7001", "7002"}


def test_seed_handles_a_large_catalogue_quickly() -> None:
    started = time.monotonic()
    counts = seed_demo(DocStore(None), skus=20000, seed=3)
    assert counts["variants"] > 19000
    assert time.monotonic() - started < 15


def test_demo_catalogue_is_deterministic_and_consistent() -> None:
    first = demo_catalogue(300, 7)
    assert first == demo_catalogue(300, 7)
    assert first != demo_catalogue(300, 8)
    assert len(first) == 300 and len({e.sku for e in first}) == 300
    by_sku = {e.sku: e for e in first}
    assert by_sku["ACME-TENT-2P-GREEN"].shopline_sku == "TENT-2P-GRN"
    assert by_sku["JETBOIL-MINI-01"].shopline_sku == "STOVE-MINI"
    assert not by_sku["GIFT-CARD-25"].known_to_stokly and by_sku["GIFT-CARD-25"].gift_card
    assert not by_sku["ACME-CHAIR-LITE"].listed_on_shopline
    assert any(not e.known_to_stokly for e in first[8:])
    for entry in first:
        assert ean13(entry.barcode[:12]) == entry.barcode and len(entry.barcode) == 13
        assert entry.price.count(".") == 1 and len(entry.price.split(".")[1]) == 2
        assert entry.vat_title in {"VAT 20%", "VAT 5%", "VAT 0%"}


def test_storefront_places_orders() -> None:
    app = _app(None)
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
            seeded = client.get("/_sandbox/summary").json()["order"]
            placed = run_storefront(server.url, orders_per_minute=6000, count=5, seed=3)
            assert placed == 5
            assert client.get("/_sandbox/summary").json()["order"] == seeded + 5
    finally:
        app.state.shopline.close()


def test_an_emptied_store_stays_empty_after_a_restart(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.state.shopline.reset(seed=False)
    app.state.shopline.close()
    again = _app(tmp_path)
    try:
        assert again.state.shopline.store.count("product") == 0
    finally:
        again.state.shopline.close()


def test_pending_webhook_resumes_after_a_restart_with_the_same_id(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.plan["orders/create"] = [500]
    app = _app(tmp_path, webhook_retry_scale=100.0)
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        client.post(
            f"{SHOPLINE_PREFIX}/webhooks.json",
            headers=AUTH,
            json={"webhook": {"address": webhook_receiver.url, "topic": "orders/create"}},
        )
        client.post("/_sandbox/orders", json={"lines": [{"sku": "STOVE-MINI"}]})
        first = webhook_receiver.wait_for(lambda r: True)[0]
    app.state.shopline.close()
    time.sleep(0.1)
    # The retry is due in 500 s: bring it forward in the file, then restart the sandbox.
    store = DocStore(tmp_path / "shopline.sqlite3")
    (delivery,) = store.list("delivery")
    delivery["next_at"] = time.time()
    store.update("delivery", delivery["id"], delivery)
    store.close()

    again = _app(tmp_path)
    try:
        retried = webhook_receiver.wait_for(lambda r: True, count=2)[1]
        assert retried.headers["x-shopline-webhook-id"] == first.headers["x-shopline-webhook-id"]
        assert retried.body == first.body
    finally:
        again.state.shopline.close()
