"""A webhook's own copy of an order stands in only while SHOPLINE cannot be read.

A signed ``orders/paid`` delivery names an order; SHOPLINE is re-read for it. When SHOPLINE
answers without that order (it is up, the order does not exist there), the delivery is not
imported: it becomes a visible exception and its inbox event is settled. When SHOPLINE cannot be
read at all, the delivery's copy is the next best and is imported. Faults are injected at the
transport seam of the SHOPLINE client only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from stokline.sync.clients import open_clients
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.sync import sync_orders
from tests.sync.conftest import World

CLIENT = "demo-outdoor"
TENT = "ACME-TENT-2P-ORANGE"
UNKNOWN_ID = "7000000000000000002"


class ShoplineDown(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox behind a seam that answers 503 to every order read."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/orders.json"):
            body = json.dumps({"errors": "Service Unavailable"}).encode()
            return httpx.Response(503, headers={"Retry-After": "0"}, content=body)
        return await self.inner.handle_async_request(request)


def run_with(world: World, transport: httpx.AsyncBaseTransport, **options: Any) -> OrdersReport:
    async def scenario() -> OrdersReport:
        async with open_clients(
            world.mapping,
            lift_limits=True,
            shopline_transport=transport,
            stokly_transport=world.faults,
        ) as (shopline, stokly):
            return await sync_orders(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store, **options
            )

    return asyncio.run(scenario())


def test_an_order_shopline_answers_without_is_not_imported_from_its_webhook(
    world: World,
) -> None:
    real = world.place((TENT, 1), customer={"email": "ada@example.com"})
    ghost = {**real, "id": UNKNOWN_ID, "name": "#9999"}
    assert asyncio.run(world.deliver(ghost, "orders/paid", "wh-ghost")) == 200

    report = world.run(sweep=False)  # the inbox alone, as the watcher runs it

    assert world.sale_orders(UNKNOWN_ID) == []
    [record] = world.store.exceptions.list(client=CLIENT, status="open")
    assert record.entity_kind == "order" and record.entity_id == UNKNOWN_ID
    assert record.code == "api_rejected"
    assert f"SHOPLINE has no order {UNKNOWN_ID}" in record.message
    assert record.key_fact == f"SHOPLINE order {UNKNOWN_ID} missing"
    assert [r["code"] for r in report.exceptions] == ["api_rejected"]
    assert world.store.inbox.count(CLIENT, "done") == 1
    assert world.store.inbox.count(CLIENT, "pending") == 0

    again = world.run()  # the sweep replays it: still not there, still one open exception
    assert world.sale_orders(UNKNOWN_ID) == []
    [record] = world.store.exceptions.list(client=CLIENT, status=("open", "retrying"))
    assert record.status == "open" and record.attempts == 2
    assert again.imported >= 1  # the real order, found by the sweep


def test_while_shopline_cannot_be_read_the_webhook_copy_stands_in(world: World) -> None:
    order = world.place((TENT, 1), customer={"email": "grace@example.org"})
    assert asyncio.run(world.deliver(order, "orders/paid", "wh-down")) == 200

    report = run_with(world, ShoplineDown(world.shopline_app), sweep=False)

    assert report.imported == 1, report.errors
    assert len(world.sale_orders(order["id"])) == 1
    assert world.store.exceptions.list(client=CLIENT) == []
    assert world.store.inbox.count(CLIENT, "done") == 1
