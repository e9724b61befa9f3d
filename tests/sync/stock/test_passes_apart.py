"""A stock event and a full pass at once: the event never waits for the full pass, and the full
pass never writes its older figure (or its difference) over the event's newer one.

Both passes run in one event loop against the same two sandboxes. The full pass's SHOPLINE
transport holds every write back until the test lets it go, so the event path runs while the
full pass is, provably, still writing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from stokline.config.skus import sku_key
from stokline.sync.clients import open_clients
from stokline.sync.stock.claims import CLAIM_SIZE, LEASE, Claims
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import sync_stock
from stokline.sync.stock.translate import DesiredLevel
from tests.sync.conftest import World
from tests.sync.stock.test_sync import BRISTOL, WRITES, CountingShopline, stock

CLIENT = "demo-outdoor"


class HeldWrites(CountingShopline):
    """SHOPLINE for the full pass: its level writes wait for ``go``; ``writing`` says one came."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.go = asyncio.Event()
        self.writing = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if any(request.url.path.endswith(path) for path in WRITES.values()):
            self.writing.set()
            await self.go.wait()
        return await super().handle_async_request(request)


def test_an_event_during_a_full_pass_is_pushed_at_once_and_not_overwritten(world: World) -> None:
    s = stock(world)
    s.run()
    levels = s.levels()

    def sold_at_bristol(sku: str) -> bool:
        try:
            return (s.inventory_item(sku), BRISTOL) in levels
        except AssertionError:  # not sold in SHOPLINE
            return False

    items = world.stokly_state.items
    skus = sorted(i["sku"] for i in items if i.get("format") != 2 and sold_at_bristol(i["sku"]))
    # Every level of those SKUs changes (Leeds DC feeds 7001, Bristol DC 7002): the full pass
    # has more to write than the two claims it holds at once.
    assert 2 * len(skus) > 2 * CLAIM_SIZE
    for sku in skus:
        s.move("goods-receipt", "Bristol DC", sku, 5)
        s.move("goods-receipt", "Leeds DC", sku, 5)
    mapping = world.mapping

    async def scenario() -> tuple[StockReport, StockReport, str, bool, int]:
        held = HeldWrites(world.shopline_app)
        async with (
            open_clients(
                mapping, lift_limits=True, shopline_transport=held, stokly_transport=world.faults
            ) as (shopline, stokly),
            open_clients(
                mapping,
                lift_limits=True,
                shopline_transport=s.shopline,
                stokly_transport=world.faults,
            ) as (event_shopline, event_stokly),
        ):
            full = asyncio.ensure_future(
                sync_stock(mapping, shopline=shopline, stokly=stokly, store=world.store)
            )
            await held.writing.wait()
            # A SKU whose levels the full pass has not claimed yet: it will write them later.
            holding = world.store.leases.holders(
                CLIENT, LEASE, [sku_key(sku, mapping.skus.match) for sku in skus]
            )
            moved = next(
                sku
                for sku in skus
                if sku_key(sku, mapping.skus.match) not in holding and s.level(sku, BRISTOL) >= 3
            )
            s.move("adjust", "Bristol DC", moved, -3)  # sold in the shop, after the full read
            event = await sync_stock(
                mapping,
                shopline=event_shopline,
                stokly=event_stokly,
                store=world.store,
                trigger="event",
                skus={moved},
            )
            still_writing = not full.done()
            pushed_by_event = s.level(moved, BRISTOL)
            held.go.set()
            return await full, event, moved, still_writing, pushed_by_event

    full, event, moved, still_writing, pushed_by_event = asyncio.run(scenario())
    assert event.ok and event.pushed == 2 and still_writing  # 7001 and 7002, without waiting
    assert event.reconciliation is not None
    sellable = next(
        row.sellable for row in event.reconciliation.comparisons if row.location == BRISTOL
    )
    assert pushed_by_event == sellable
    # The full pass read Stokly before the sale: its figure is 3 too high, and its difference
    # was taken before the event's write. It left the level to the event instead.
    assert s.level(moved, BRISTOL) == sellable
    assert full.ok and full.left_to_others == 2 and full.pushed == full.levels_changed - 2
    assert s.run(dry_run=True).would_push == []  # every level is what Stokly says now
    assert world.store.leases.holders(CLIENT, LEASE, [sku_key(moved, mapping.skus.match)]) == {}


def level(sku: str, location: str = BRISTOL) -> DesiredLevel:
    return DesiredLevel(
        inventory_item_id=f"inv-{sku}",
        location_id=location,
        variant_id=f"var-{sku}",
        shopline_sku=sku,
        stokly_sku=sku,
        available=5,
        on_hand=Decimal(5),
        quarantined=Decimal(0),
        allocated=Decimal(0),
        buffer=0,
        unimported=0,
    )


def test_the_event_path_takes_all_its_skus_or_none_and_the_full_pass_yields(
    world: World,
) -> None:
    tent, socks = level("TENT"), level("SOCKS")
    full = Claims(world.mapping, world.store, "full")
    event = Claims(world.mapping, world.store, "event")
    full.start()

    ours, others = full.claim([tent])
    assert (ours, others) == ([tent], [])
    # The full pass is writing TENT: the event waits, gives up, and holds nothing meanwhile.
    assert asyncio.run(event.hold_all(["TENT", "SOCKS"], wait=0.3)) is False
    keys = [full.sku_key("TENT"), full.sku_key("SOCKS")]
    assert world.store.leases.holders(CLIENT, LEASE, keys) == {keys[0]: full.holder}
    full.give_back([tent])
    assert asyncio.run(event.hold_all(["TENT", "SOCKS"], wait=0.3)) is True

    # Now the event holds both: the full pass leaves them to it, and takes them back after.
    assert full.claim([tent, socks]) == ([], [tent, socks])
    event.release()
    assert full.claim([tent, socks]) == ([tent, socks], [])
    full.give_back([tent, socks])

    # A level another pass recorded since this one began is left to that pass.
    world.store.levels.record(CLIENT, [(socks.inventory_item_id, socks.location_id, 7)])
    assert full.claim([tent, socks]) == ([tent], [socks])
    full.release()
    assert world.store.leases.holders(CLIENT, LEASE, keys) == {}
