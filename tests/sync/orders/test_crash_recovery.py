"""A killed run's orders are taken by the next run within a minute; a live run's never are.

Claims and leases expire so that a run that died (SIGKILL: nothing released) does not hold its
orders for long; a live run renews what it holds from a heartbeat of its own, so a batch slower
than the expiry keeps its orders. The expiries are shortened here (the module settings the
store reads at every call), so the scenarios take seconds; ``make chaos`` measures the real ones.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from stokline.store import inbox as inbox_module
from stokline.store import leases as leases_module
from stokline.store.heartbeat import Heartbeat
from stokline.sync.orders.report import OrdersReport
from tests.sync.conftest import World

TENT = "ACME-TENT-2P-ORANGE"
CLIENT = "demo-outdoor"
EXPIRY = timedelta(seconds=2)


@pytest.fixture
def short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases_module, "LEASE_TIME", EXPIRY)
    monkeypatch.setattr(leases_module, "HEARTBEAT", timedelta(seconds=0.2))
    monkeypatch.setattr(inbox_module, "CLAIM_EXPIRY", EXPIRY)


def wait_until(condition: Any, seconds: float) -> float:
    """Poll ``condition`` until true; how long it took (fails past ``seconds``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_real_expiries_free_a_killed_runs_work_within_two_minutes() -> None:
    # What a crash costs in waiting, at most: the expiry after the dead run's last beat.
    assert timedelta(minutes=1) >= leases_module.LEASE_TIME
    assert timedelta(minutes=1) >= inbox_module.CLAIM_EXPIRY
    # A live run beats at least three times within an expiry: one missed beat loses nothing.
    assert leases_module.HEARTBEAT * 3 < leases_module.LEASE_TIME


def test_a_heartbeat_keeps_a_lease_past_its_expiry_and_it_expires_once_beats_stop(
    world: World, short: None
) -> None:
    leases = world.store.leases
    assert leases.acquire(CLIENT, "order", ["1"], "live") == {"1"}
    with Heartbeat(lambda: leases.renew("live"), name="live") as beating:
        started = time.monotonic()
        while time.monotonic() - started < EXPIRY.total_seconds() * 2:
            assert leases.acquire(CLIENT, "order", ["1"], "other") == set()
            time.sleep(0.1)
        assert beating.beats >= 5 and beating.failures == 0
    # The holder "dies": no more beats. Its lease is free one expiry later, not before.
    waited = wait_until(lambda: leases.acquire(CLIENT, "order", ["1"], "other") == {"1"}, 10)
    assert waited > EXPIRY.total_seconds() * 0.5


def test_a_killed_runs_deliveries_and_orders_are_imported_once_after_the_expiry(
    world: World, short: None
) -> None:
    order = world.place((TENT, 1), customer={"email": "ada@example.com"})
    assert asyncio.run(world.deliver(order, "orders/paid", "wh-killed")) == 200
    # What a SIGKILLed run leaves behind: its claim on the delivery and its lease on the order,
    # never released and no longer renewed.
    [claimed] = world.store.inbox.claim(CLIENT, "orders:dead-host", 10)
    assert world.store.leases.acquire(CLIENT, "order", [order["id"]], "orders:dead-host:1")
    killed_at = time.monotonic()

    early = world.run()
    assert early.ok and world.sale_orders(order["id"]) == []  # left to its (dead) holder

    def imported() -> bool:
        world.run()
        return len(world.sale_orders(order["id"])) == 1

    recovered = wait_until(imported, 15)
    assert time.monotonic() - killed_at >= EXPIRY.total_seconds() * 0.5
    assert recovered < EXPIRY.total_seconds() + 10
    # The delivery is done by the run that took its claim over; that may be the next one, when
    # the order's lease was found expired a moment before the delivery's claim was.
    world.run()
    assert world.store.inbox.get(claimed.id).status == "done"
    assert len(world.sale_orders(order["id"])) == 1
    assert world.stokly_summary()["duplicateSaleOrders"] == []


def test_a_live_run_slower_than_the_expiry_keeps_its_order_from_a_second_run(
    world: World, short: None
) -> None:
    order = world.place((TENT, 1), customer={"email": "grace@example.org"})
    assert asyncio.run(world.deliver(order, "orders/paid", "wh-slow")) == 200
    second: list[OrdersReport] = []

    async def slow_create(payload: dict[str, Any], forward: Any) -> httpx.Response:
        if not second:
            second.append(OrdersReport(client=CLIENT, trigger="placeholder", dry_run=False))
            # The first run is in the middle of its batch, past the expiry of what it took.
            await asyncio.sleep(EXPIRY.total_seconds() * 2)
            second[0] = await asyncio.to_thread(world.run)  # another worker's run, meanwhile
        return await forward()

    world.faults.on_create = slow_create
    first = world.run()
    world.faults.on_create = None

    assert first.imported >= 1 and first.ok, first.summary_rows()
    assert second[0].trigger == "schedule" and second[0].ok  # it ran, and left the order alone
    assert len(world.sale_orders(order["id"])) == 1
    assert world.stokly_summary()["duplicateSaleOrders"] == []
    assert world.store.inbox.count(CLIENT, "done") == 1


def test_the_inbox_watchers_pass_takes_over_a_dead_runs_swept_order_without_a_sweep(
    world: World, short: None
) -> None:
    # The order reached the run that died through its sweep: no webhook delivery will bring it
    # back. The watcher's inbox-only passes take it over once its lease expires.
    order = world.place((TENT, 1), customer={"email": "tim@example.net"})
    assert world.store.leases.acquire(CLIENT, "order", [order["id"]], "orders:dead-host:2")

    early = world.run(sweep=False)
    assert early.seen == 0 and world.sale_orders(order["id"]) == []

    def imported() -> bool:
        world.run(sweep=False)
        return len(world.sale_orders(order["id"])) == 1

    wait_until(imported, EXPIRY.total_seconds() + 10)
    assert world.store.leases.orphaned(CLIENT, "order") == []
    assert world.store.leases.holders(CLIENT, "order", [order["id"]]) == {}  # released at the end
    world.run()
    assert len(world.sale_orders(order["id"])) == 1
    assert world.stokly_summary()["duplicateSaleOrders"] == []
