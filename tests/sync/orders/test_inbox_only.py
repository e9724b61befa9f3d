"""The inbox-only orders pass the inbox watcher runs (``sync_orders(..., sweep=False)``).

It takes the webhook deliveries and nothing else: no sweep of SHOPLINE, no replay of open
exceptions, and the sweep's cursor stays where it was, so the next sweep still sees every order
updated since. What the inbox's cheap count (`Inbox.claimable`) says matches what a pass takes.
"""

from __future__ import annotations

import asyncio

from stokline.sync.orders.sync import ORDER_TOPICS
from tests.sync.conftest import World

CLIENT = "demo-outdoor"
TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
UNKNOWN = "ACME-HAMMOCK-XL-RED"  # sold in SHOPLINE, unknown to Stokly


def test_an_inbox_only_pass_imports_the_deliveries_and_leaves_the_sweep_alone(
    world: World,
) -> None:
    delivered = world.place((TENT, 1), customer={"email": "inbox.only@example.com"})
    undelivered = world.place((SOCKS, 1), customer={"email": "lost.webhook@example.com"})
    assert asyncio.run(world.deliver(delivered, "orders/paid", "wh-inbox-only-1")) == 200
    assert asyncio.run(world.deliver({"inventory_item_id": "1"}, "products/update", "wh-p")) == 200
    assert world.store.inbox.claimable(CLIENT, topics=ORDER_TOPICS) == 1
    assert world.store.inbox.claimable(CLIENT) == 2

    report = world.run(sweep=False, trigger="webhook")
    assert report.ok and report.seen == 1 and report.imported == 1
    assert len(world.sale_orders(delivered["id"])) == 1
    assert world.sale_orders(undelivered["id"]) == []  # only a sweep finds a lost webhook
    assert world.store.cursors.get(CLIENT, "orders") is None
    assert world.store.inbox.claimable(CLIENT, topics=ORDER_TOPICS) == 0
    assert world.store.inbox.claimable(CLIENT) == 1  # another sync's topic stays for it

    swept = world.run()
    assert swept.imported >= 1
    assert len(world.sale_orders(undelivered["id"])) == 1
    assert len(world.sale_orders(delivered["id"])) == 1
    assert world.store.cursors.get(CLIENT, "orders") is not None


def test_an_inbox_only_pass_with_an_empty_inbox_replays_nothing_and_calls_no_api(
    world: World,
) -> None:
    world.place((UNKNOWN, 1), customer={"email": "hammock@example.com"})
    swept = world.run()
    assert [r["code"] for r in swept.exceptions] == ["unmapped_sku"]
    cursor = world.store.cursors.get(CLIENT, "orders")

    quiet = world.run(sweep=False, trigger="webhook")
    assert quiet.ok and quiet.seen == 0 and quiet.exceptions == []
    assert quiet.api_calls == 0
    assert world.store.cursors.get(CLIENT, "orders") == cursor
    [record] = world.store.exceptions.list(client=CLIENT, entity_kind="order")
    assert record.status == "open"  # not picked up for a replay: that is the sweep's job
