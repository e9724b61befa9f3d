"""Two runs of the orders sync at once, on SQLite and PostgreSQL: every order is handled by one.

The runs share the inbox (row claims) and see the same orders in their sweeps (order leases).
Stokly's own state is the judge: one sale order per SHOPLINE order, one create in the audit log.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from stokline.sandbox.stokly.seed import SHOPLINE_CHANNEL_ID
from stokline.sync.orders.report import OrdersReport
from tests.pg import BOTH_BACKENDS
from tests.sync.conftest import World

pytestmark = BOTH_BACKENDS

CLIENT = "demo-outdoor"
SKUS = ["ACME-TENT-2P-ORANGE", "CRAG-SOCKS-75-M", "SUMMIT-MAT-81-WIDE", "MOOR-TENT-1P-31-GREY"]


def creates_of(world: World, order_id: str) -> int:
    entries = world.store.audit.list(CLIENT, f"{SHOPLINE_CHANNEL_ID}:{order_id}")
    return sum(1 for e in entries if e.action == "create_sale_order")


def test_two_concurrent_runs_process_each_webhook_once_and_create_each_order_once(
    world: World,
) -> None:
    orders = [
        # One buyer per order: these orders are about the inbox, not customer matching.
        world.place((SKUS[i % len(SKUS)], 1), customer={"email": f"buyer{i}@example.com"})
        for i in range(10)
    ]
    for order in orders:
        assert asyncio.run(world.deliver(order, "orders/paid", f"wh-{order['id']}")) == 200

    # Stokly answers creates slowly, so the two runs are certainly in flight together.
    async def slow(payload: dict[str, Any], forward: Any) -> httpx.Response:
        await asyncio.sleep(0.3)
        return await forward()

    world.faults.on_create = slow
    before = len(world.stokly_state.saleorders)
    reports: dict[str, OrdersReport] = {}
    spans: dict[str, tuple[float, float]] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        try:
            barrier.wait()
            started = time.monotonic()
            reports[name] = world.run(trigger=name)
            spans[name] = (started, time.monotonic())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("webhook", "schedule")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == [] and len(reports) == 2
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), "not concurrent"
    assert all(r.ok and not r.errors for r in reports.values())

    # Each order: one sale order in Stokly, created once; the pair of runs imported it once.
    assert world.stokly_summary()["duplicateSaleOrders"] == []
    for order in orders:
        assert len(world.sale_orders(order["id"])) == 1, order["id"]
        assert creates_of(world, order["id"]) == 1
    # (the sandbox's seed has paid orders of its own: the sweeps import those too, once each)
    imported = sum(r.imported for r in reports.values())
    assert imported == len(world.stokly_state.saleorders) - before >= len(orders)
    # Each webhook event was claimed by one run, once. It is done, unless the other run's sweep
    # had leased its order first: then it went back to the inbox untouched, for the next run.
    events = {e.webhook_id: e for e in _all_events(world)}
    returned = []
    for order in orders:
        event = events[f"wh-{order['id']}"]
        assert event.attempts == 1 and event.status in ("done", "pending"), event
        if event.status == "pending":
            returned.append(event.webhook_id)
    # No lease outlives its run.
    assert world.store.leases.holders(CLIENT, "order", [o["id"] for o in orders]) == {}

    world.faults.on_create = None
    after = world.run()
    assert after.imported == 0
    for order in orders:
        assert len(world.sale_orders(order["id"])) == 1
    # The next run finishes what went back, and creates nothing for it.
    events = {e.webhook_id: e for e in _all_events(world)}
    for order in orders:
        event = events[f"wh-{order['id']}"]
        expected = 2 if event.webhook_id in returned else 1
        assert (event.status, event.attempts) == ("done", expected), event


def _all_events(world: World) -> list[Any]:
    from sqlalchemy import select

    from stokline.store.inbox import InboxEvent
    from stokline.store.tables import inbox

    with world.store.engine.connect() as conn:
        return [InboxEvent.from_row(r) for r in conn.execute(select(inbox))]


def test_an_order_another_run_holds_is_left_to_it_and_its_event_goes_back(world: World) -> None:
    order = world.place((SKUS[1], 1), customer={"email": "held@example.com"})
    asyncio.run(world.deliver(order, "orders/paid", "wh-held-1"))
    assert world.store.leases.acquire(CLIENT, "order", [order["id"]], "another-run") == {
        order["id"]
    }

    report = world.run()
    assert world.sale_orders(order["id"]) == []  # the other run's to create
    assert report.ok and order["id"] not in {r["shopline_id"] for r in report.changes}
    [event] = [e for e in _all_events(world) if e.webhook_id == "wh-held-1"]
    assert event.status == "pending"  # handed back for the next run
    cursor = datetime.fromisoformat(world.store.cursors.get(CLIENT, "orders"))
    assert cursor <= datetime.fromisoformat(order["updated_at"])  # the sweep still covers it

    world.store.leases.release("another-run")  # that run ended without creating it
    world.run()
    assert len(world.sale_orders(order["id"])) == 1
    [event] = [e for e in _all_events(world) if e.webhook_id == "wh-held-1"]
    assert event.status == "done"
