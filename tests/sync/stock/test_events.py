"""The event path's reading of the Stokly change feed: at least once, cursor stored after the push.

Stock moves through the Stokly sandbox's warehouse controls, the feed is the sandbox's change
feed, and SHOPLINE writes are counted at the transport seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

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
    own = s.world.mapping.connections.stokly.channel_id
    return with_clients(
        s, lambda _, stokly: StockMovements(CLIENT, stokly, s.world.store, own).poll()
    )


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


# -- sale orders of other channels ------------------------------------------------------------------


def ebay_channel(world: World) -> str:
    own = world.mapping.connections.stokly.channel_id
    return next(c["channelId"] for c in world.stokly_state.channels if c["channelId"] != own)


def test_another_channels_sale_order_reaches_shopline_through_the_event_path(
    world: World,
) -> None:
    # A trade order for socks taken in Stokly: its allocation lowers the sellable figure with no
    # stock movement at all. The feed names the order; the event path reads its lines.
    s = stock(world)
    s.move("goods-receipt", "Bristol DC", SOCKS, 5)
    settle(s)
    own = world.mapping.connections.stokly.channel_id
    item_id = next(i["itemId"] for i in world.stokly_state.items if i["sku"] == SOCKS)
    bristol = next(
        loc["locationId"] for loc in world.stokly_state.locations if loc["name"] == "Bristol DC"
    )
    before = s.level(SOCKS, BRISTOL)

    async def order_elsewhere(_: Any, stokly: Any) -> Any:
        created = await stokly.create_sale_order(
            {
                "currency": "GBP",
                "sourceId": ebay_channel(world),
                "locationId": bristol,
                "items": [{"referenceId": item_id, "quantity": 2}],
            }
        )
        return created.id

    order_id = with_clients(s, order_elsewhere)

    async def follow(shopline: Any, stokly: Any) -> Any:
        feed = StockMovements(CLIENT, stokly, world.store, own)
        batch = await feed.poll()
        assert batch is not None and set(batch.skus) == {SOCKS}
        report = await sync_stock(
            world.mapping,
            shopline=shopline,
            stokly=stokly,
            store=world.store,
            skus=set(batch.skus),
            trigger="event",
        )
        feed.done(batch)
        return report

    assert with_clients(s, follow).pushed == 1
    assert s.level(SOCKS, BRISTOL) == before - 2 == s.stokly_sellable(SOCKS, ["Bristol DC"], 0)

    # Removed, the order gives the socks back: the event path hears that too.
    async def remove(_: Any, stokly: Any) -> None:
        await stokly.patch_sale_order(order_id, {"stage": "removed"})

    with_clients(s, remove)
    assert with_clients(s, follow).pushed == 1
    assert s.level(SOCKS, BRISTOL) == before


def test_the_clients_own_sale_orders_cost_the_event_path_no_reads(world: World) -> None:
    # Orders imported from SHOPLINE were subtracted as awaiting import before: their import
    # moves no level, so the event path neither reads them nor hands their SKUs on.
    s = stock(world)
    settle(s)
    world.place((TENT, 1), customer={"email": "ada@example.com"})
    world.run()  # imported: saleorder.created on the client's own channel
    own = world.mapping.connections.stokly.channel_id
    wire = CountingStokly(world.faults)

    async def follow() -> Any:
        async with open_clients(
            world.mapping, lift_limits=True, stokly_transport=wire, shopline_transport=s.shopline
        ) as (_, stokly):
            return await StockMovements(CLIENT, stokly, world.store, own).poll()

    assert asyncio.run(follow()) is None
    assert [p for p in wire.paths if "/saleorders" in p] == []  # not one sale order read


class CountingStokly(httpx.AsyncBaseTransport):
    """Stokly, with the path of every request sent to it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)
