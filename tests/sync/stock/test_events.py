"""The event path's reading of the Stokly change feed: at least once, cursor stored after the push.

Stock moves through the Stokly sandbox's warehouse controls, the feed is the sandbox's change
feed, and SHOPLINE writes are counted at the transport seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from stokline.sync.clients import open_clients
from stokline.sync.stock.events import CURSOR_NAME, CURSOR_SYNC, StockMovements
from stokline.sync.stock.sync import sync_stock
from tests.sync.conftest import World

from .test_sync import BRISTOL, SOCKS, TENT, Stock, stock

CLIENT = "demo-outdoor"


def with_clients(s: Stock, work: Callable[..., Coroutine[Any, Any, Any]]) -> Any:
    async def scenario() -> Any:
        async with open_clients(
            s.world.mapping,
            lift_limits=True,
            shopline_transport=s.shopline,
            stokly_transport=s.world.faults,
        ) as (shopline, stokly):
            return await work(shopline, stokly)

    s.shopline.writes.clear()
    return asyncio.run(scenario())


def poll(s: Stock) -> Any:
    return with_clients(s, lambda _, stokly: StockMovements(CLIENT, stokly, s.world.store).poll())


def stored_cursor(world: World) -> str | None:
    return world.store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME)


def settle(s: Stock) -> None:
    """A full pass, then the feed read up to now: nothing is pending anywhere."""
    s.run()
    batch = poll(s)
    if batch is not None:
        s.world.store.cursors.set(CLIENT, CURSOR_SYNC, batch.cursor, CURSOR_NAME)
    assert poll(s) is None


def test_a_goods_receipt_is_handed_over_until_it_was_pushed(world: World) -> None:
    s = stock(world)
    settle(s)
    cursor = stored_cursor(world)
    before = s.level(SOCKS, BRISTOL)
    s.move("goods-receipt", "Bristol DC", SOCKS, 6)

    batch = poll(s)
    assert batch is not None and {sku.casefold() for sku in batch.skus} == {SOCKS.casefold()}
    assert batch.since == cursor and int(batch.cursor) > int(cursor or 0)
    assert stored_cursor(world) == cursor  # not pushed yet: a crash now replays it

    again = poll(s)
    assert again is not None and again.skus == batch.skus and again.cursor == batch.cursor

    async def push(shopline: Any, stokly: Any) -> Any:
        report = await sync_stock(
            world.mapping,
            shopline=shopline,
            stokly=stokly,
            store=world.store,
            skus=set(batch.skus),
            check_drift=False,
            trigger="event",
        )
        StockMovements(CLIENT, stokly, world.store).done(batch)
        return report

    report = with_clients(s, push)
    assert report.ok and report.pushed == 1
    assert s.shopline.writes == [
        {
            "kind": "adjust",
            "inventory_item_id": s.inventory_item(SOCKS),
            "location_id": BRISTOL,
            "available_adjustment": 6,
        }
    ]
    assert s.level(SOCKS, BRISTOL) == before + 6
    assert s.level(SOCKS, BRISTOL) == s.stokly_sellable(SOCKS, ["Bristol DC"], buffer=0)
    assert stored_cursor(world) == batch.cursor
    assert poll(s) is None


def test_events_of_other_kinds_move_the_cursor_on_by_themselves(world: World) -> None:
    s = stock(world)
    settle(s)
    cursor = stored_cursor(world)
    world.place((TENT, 1), customer={"email": "events@example.com"})
    world.run()  # the orders sync imports it: Stokly records a sale order, not a stock movement
    assert poll(s) is None
    assert int(stored_cursor(world) or 0) > int(cursor or 0)


def test_a_client_without_a_cursor_starts_at_the_beginning_of_the_feed(world: World) -> None:
    s = stock(world)
    s.move("adjust", "Leeds DC", TENT, 2)
    assert stored_cursor(world) is None
    batch = poll(s)
    assert batch is not None and batch.since is None
    assert TENT.casefold() in {sku.casefold() for sku in batch.skus}


def test_a_later_run_takes_over_following_and_an_earlier_one_does_not(world: World) -> None:
    feed = StockMovements(CLIENT, None, world.store)  # type: ignore[arg-type]  # no feed read here
    ten = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert feed.follow("run-a", ten) and feed.still_following("run-a")

    assert feed.follow("run-b", ten + timedelta(minutes=10))
    assert not feed.still_following("run-a") and feed.still_following("run-b")

    # A run scheduled before the follower (it started late) leaves the feed to the later one.
    assert not feed.follow("run-late", ten + timedelta(minutes=5))
    assert feed.still_following("run-b") and not feed.still_following("run-late")
    assert feed.follow("run-b", ten + timedelta(minutes=10))  # registering again is harmless
