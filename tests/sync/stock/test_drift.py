"""What a full stock pass reads of SHOPLINE's levels: the items it pushes, and a drift slice.

Reads are counted at the transport seam (every ``GET inventory_levels.json`` SHOPLINE answers,
with the inventory items it asked for); the passes' clock is the driver's, moved on by the test,
so a slice's size follows from the time between passes (`stokline.sync.stock.drift`).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from datetime import datetime, timedelta

from stokline.sync.clients import open_clients
from stokline.sync.stock.drift import CURSOR_NAME, CURSOR_SYNC
from stokline.sync.stock.reconcile import reconcile_stock
from tests.sync.conftest import World

from .test_sync import BRISTOL, DRIFT_EVERY, ONLINE, SOCKS, TENT, UNKNOWN, Stock, stock

CLIENT = "demo-outdoor"
SCHEDULE = timedelta(minutes=5)  # the demo mapping's syncs.stock.every
ROUND = DRIFT_EVERY - SCHEDULE  # one turn of the drift rotation: the next pass may come that late
LEVEL_READ_SIZE = 50  # inventory items SHOPLINE answers for in one request


def sellable_items(s: Stock) -> set[str]:
    """Inventory items of every SHOPLINE variant the demo mapping does not exclude."""
    items = set()
    for _, product in s.world.shopline_app.state.shopline.store.scan("product"):
        for variant in product["variants"]:
            sku = (variant.get("sku") or "").upper()
            if variant.get("inventory_item_id") and not sku.startswith(("GIFT-CARD-", "SAMPLE-")):
                items.add(str(variant["inventory_item_id"]))
    return items


def settled(world: World) -> Stock:
    s = stock(world)
    first = s.run()
    assert first.ok
    return s


def test_the_first_pass_and_one_after_a_lost_cursor_read_every_level(world: World) -> None:
    s = stock(world)
    first = s.run()
    everything = sellable_items(s)
    assert s.items_read() == everything and len(everything) > LEVEL_READ_SIZE // 2
    assert first.reconciliation is not None and first.reconciliation.not_read == 0
    assert first.levels_read == first.levels_computed

    s.wait(timedelta(minutes=5))
    world.store.cursors.set(CLIENT, CURSOR_SYNC, "not a cursor", CURSOR_NAME)
    assert s.run().ok and s.items_read() == everything


def test_a_pass_with_one_changed_item_reads_that_item_and_the_slice_only(world: World) -> None:
    s = settled(world)
    n = len(sellable_items(s))
    s.wait(timedelta(minutes=5))
    s.move("goods-receipt", "Bristol DC", SOCKS, 4)

    report = s.run()
    socks = s.inventory_item(SOCKS)
    assert [(w["kind"], w["inventory_item_id"]) for w in s.shopline.writes] == [("adjust", socks)]
    share = math.ceil(n * 5 / 55)  # 5 minutes of a rotation read round in 55
    read = s.items_read()
    assert socks in read and len(read - {socks}) == share < n // 4
    assert len(s.shopline.level_reads) <= 2  # the slice, alongside Stokly; then SOCKS, if apart
    assert report.levels_read == len(read) * 2  # each item at both synced SHOPLINE locations
    assert report.drift_items_read + report.changed_items_read == len(read)
    found = report.reconciliation
    assert found is not None and found.compared == report.levels_read
    assert found.not_read == report.levels_computed - report.levels_read > 0
    assert f"{found.compared} of {report.levels_computed} level(s) compared" in found.headline()

    s.wait(timedelta(seconds=1))
    quiet = s.run()
    assert quiet.pushed == 0 and len(s.items_read()) == 1  # a second's share, rounded up
    assert quiet.changed_items_read == 0


def read_over_passes(
    s: Stock, gaps: list[int], span: timedelta
) -> tuple[dict[str, list[datetime]], list[datetime]]:
    """Passes ``gaps`` seconds apart (cycled) for ``span``: when each item was read, and when
    each pass ran (the settling pass included)."""
    reads: dict[str, list[datetime]] = {item: [s.now] for item in sellable_items(s)}
    passes = [s.now]
    start = s.now
    for gap in itertools.cycle(gaps):
        if s.now - start >= span:
            break
        s.wait(timedelta(seconds=gap))
        assert s.run().ok
        passes.append(s.now)
        for item in s.items_read():
            reads[item].append(s.now)
    return reads, passes


def test_at_the_schedules_cadence_and_in_between_every_level_is_read_within_drift_every(
    world: World,
) -> None:
    s = settled(world)
    # The 5-minute schedule, with event-triggered and manual passes landing in between.
    rng = random.Random(16)
    gaps = []
    for _ in range(30):
        inside = sorted(rng.sample(range(1, 300), rng.choice([0, 0, 1, 2])))
        gaps += [b - a for a, b in zip([0, *inside], [*inside, 300], strict=True)]
    reads, _ = read_over_passes(s, gaps, 2 * DRIFT_EVERY)
    for times in reads.values():
        times.append(s.now)
        assert max(b - a for a, b in itertools.pairwise(times)) <= DRIFT_EVERY


def test_whatever_the_cadence_a_level_is_read_by_the_first_pass_after_drift_every(
    world: World,
) -> None:
    s = settled(world)
    everything = sellable_items(s)
    reads, passes = read_over_passes(s, [2, 40, 300, 1800, 300, 900, 7, 2400, 60], 3 * DRIFT_EVERY)
    for times in reads.values():
        for before, after in itertools.pairwise(times):
            # No pass in between started drift_every or more after the last read.
            assert not [p for p in passes if before + DRIFT_EVERY <= p < after]
        assert not [p for p in passes if times[-1] + DRIFT_EVERY <= p]

    # A pass after a pause longer than drift_every reads everything.
    s.wait(DRIFT_EVERY + timedelta(minutes=1))
    assert s.run().ok and s.items_read() == everything


def test_a_level_changed_by_hand_in_shopline_is_set_back_within_drift_every(world: World) -> None:
    s = settled(world)
    right = s.level(TENT, BRISTOL)
    s.admin_sets(TENT, BRISTOL, right + 7)
    changed_at = s.now
    corrected = None
    while corrected is None and s.now - changed_at <= DRIFT_EVERY:
        s.wait(timedelta(minutes=5))
        report = s.run()
        assert report.ok
        if report.drift_corrected:
            corrected = s.now
            assert report.drift_corrected == 1
            assert s.shopline.writes == [
                {
                    "kind": "adjust",
                    "inventory_item_id": s.inventory_item(TENT),
                    "location_id": BRISTOL,
                    "available_adjustment": -7,
                }
            ]
            found = report.reconciliation
            assert found is not None and found.oversell_risk == 1
            assert found.oversell_risk_remaining == 0
        else:
            assert s.level(TENT, BRISTOL) == right + 7  # not read yet: left alone
    assert corrected is not None and corrected - changed_at <= DRIFT_EVERY
    assert s.level(TENT, BRISTOL) == right
    [audit] = world.store.audit.list(CLIENT, f"{s.inventory_item(TENT)}:{BRISTOL}")
    assert audit.details == {"sku": TENT, "found": right + 7, "set": right}


def test_a_level_not_read_is_never_taken_for_one_shopline_lacks(world: World) -> None:
    s = settled(world)
    everything = sellable_items(s)
    # A level SHOPLINE does not have, the pass's target unchanged: "not stocked here" only
    # while the pass has read it.
    gone = (s.inventory_item(TENT), ONLINE)
    store = world.shopline_app.state.shopline.store
    assert store.delete("inventory_level", f"{gone[0]}:{gone[1]}")
    for sku in (SOCKS, TENT):
        s.move("goods-receipt", "Bristol DC", sku, 2)

    for _ in range(12):
        s.wait(timedelta(minutes=5))
        report = s.run()
        found = report.reconciliation
        assert found is not None
        assert all(w["kind"] == "adjust" for w in s.shopline.writes)
        assert report.pushed_absolute == 0
        read = s.items_read()
        assert read != everything
        missing = {
            (c.inventory_item_id, c.location) for c in found.comparisons if c.shopline is None
        }
        assert missing == ({gone} if gone[0] in read else set())
        assert ("not stocked in SHOPLINE" in found.headline()) == (gone[0] in read)
    assert s.level(SOCKS, BRISTOL) == s.stokly_sellable(SOCKS, ["Bristol DC"], 0)
    assert gone not in s.levels()  # never set: the target did not change


def test_a_dry_run_or_a_pass_without_drift_check_leaves_the_rotation_where_it_was(
    world: World,
) -> None:
    s = settled(world)
    cursor = world.store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME)
    assert cursor is not None
    s.wait(timedelta(minutes=10))
    s.run(dry_run=True)
    dry = s.items_read()
    s.run(check_drift=False)
    assert s.items_read() == dry
    assert world.store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME) == cursor
    s.run()
    assert s.items_read() == dry
    assert world.store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME) != cursor


def test_reconcile_stock_still_reads_every_level(world: World) -> None:
    s = settled(world)
    s.wait(timedelta(minutes=5))
    s.run()
    assert s.items_read() != sellable_items(s)

    async def scenario() -> None:
        async with open_clients(
            world.mapping,
            lift_limits=True,
            shopline_transport=s.shopline,
            stokly_transport=world.faults,
        ) as (shopline, stokly):
            await reconcile_stock(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store
            )

    s.shopline.level_reads.clear()
    asyncio.run(scenario())
    assert s.items_read() == sellable_items(s) - {s.inventory_item(UNKNOWN)}  # every planned one
