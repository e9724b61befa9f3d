"""What a stock pass reads, and when: SHOPLINE's levels alongside Stokly on a full pass.

SHOPLINE lists levels only by inventory item (50 a request), so a full pass over a large
catalogue spends most of its SHOPLINE requests on them. They need only SHOPLINE's variants, so
the full pass starts them as soon as the variants are known, while Stokly (another API, another
rate limit) is still being read; the event path reads the levels of its few items after its plan.
Both seams are the HTTP transports in front of the in-process sandboxes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from stokline.connectors import ConnectorError
from stokline.sync.clients import open_clients
from stokline.sync.stock.read import StockPlanRead, read_plan, read_shown
from tests.sync.conftest import World

TENT = "ACME-TENT-2P-ORANGE"
LEVELS = "/inventory_levels.json"
RECORDS = "/v1/inventory-records"

Gate = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


class Seam(httpx.AsyncBaseTransport):
    """A sandbox behind a seam that logs each request and lets a test hold or answer it."""

    def __init__(self, app: Any, log: list[str], gate: Gate | None = None) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.log = log
        self.gate = gate
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.log.append(f"start {request.url.path}")
        answer = await self.gate(request) if self.gate is not None else None
        if answer is None:
            answer = await self.inner.handle_async_request(request)
        self.log.append(f"end {request.url.path}")
        return answer


def level_requests(seam: Seam) -> list[list[str]]:
    """The inventory item ids of each levels request SHOPLINE received."""
    return [
        r.url.params["inventory_item_ids"].split(",")
        for r in seam.requests
        if r.url.path.endswith(LEVELS)
    ]


def read(
    world: World,
    *,
    shopline_gate: Gate | None = None,
    stokly_gate: Gate | None = None,
    **options: Any,
) -> tuple[StockPlanRead, dict[tuple[str, str], int | None], Seam, list[str]]:
    """``read_plan`` with ``options``, then `read_shown` of its plan: the old, sequential way."""
    log: list[str] = []
    shop = Seam(world.shopline_app, log, shopline_gate)
    stok = Seam(world.stokly_app, log, stokly_gate)

    async def scenario() -> tuple[StockPlanRead, dict[tuple[str, str], int | None]]:
        async with open_clients(
            world.mapping, lift_limits=True, shopline_transport=shop, stokly_transport=stok
        ) as (shopline, stokly):
            got = await read_plan(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store, **options
            )
            after = await read_shown(shopline, got.plan.levels)
            return got, after

    got, after = asyncio.run(scenario())
    return got, after, shop, log


def test_a_full_pass_shows_what_read_shown_reads_after_the_plan(world: World) -> None:
    got, after, _, _ = read(world, shown=True)
    assert got.plan.levels and got.shown is not None
    assert got.shown == after
    assert set(got.shown) == {lv.key for lv in got.plan.levels}


def test_without_shown_nothing_of_shoplines_levels_is_read(world: World) -> None:
    got, _, shop, _ = read(world)
    assert got.shown is None
    assert len(level_requests(shop)) == 1  # only the test's own read_shown afterwards


def test_levels_are_read_while_stokly_is_still_being_read(world: World) -> None:
    """Stokly's stock records are held until SHOPLINE has been asked for its levels."""
    asked = asyncio.Event()

    async def shopline_gate(request: httpx.Request) -> None:
        if request.url.path.endswith(LEVELS):
            asked.set()

    async def stokly_gate(request: httpx.Request) -> None:
        if request.url.path == RECORDS:
            await asyncio.wait_for(asked.wait(), timeout=10)  # sequential reads time out here

    got, after, _, log = read(
        world, shown=True, shopline_gate=shopline_gate, stokly_gate=stokly_gate
    )
    assert got.shown == after
    first_levels = next(
        i for i, e in enumerate(log) if e.startswith("start") and e.endswith(LEVELS)
    )
    assert first_levels < log.index(f"end {RECORDS}")


def test_the_event_path_reads_only_the_levels_of_its_items(world: World) -> None:
    got, after, shop, _ = read(world, shown=True, skus={TENT})
    items = {lv.inventory_item_id for lv in got.plan.levels}
    assert len(items) == 1 and {lv.stokly_sku for lv in got.plan.levels} == {TENT}
    asked = level_requests(shop)
    assert asked == [sorted(items)] * 2  # the pass's read, and the test's read_shown
    assert got.shown == after


def test_a_failed_stokly_read_stops_shoplines_level_reads(world: World) -> None:
    asked = asyncio.Event()
    stopped: list[str] = []

    async def shopline_gate(request: httpx.Request) -> None:
        if request.url.path.endswith(LEVELS):
            asked.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stopped.append(request.url.params["inventory_item_ids"])
                raise

    async def stokly_gate(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == RECORDS:
            await asyncio.wait_for(asked.wait(), timeout=10)
            return httpx.Response(400, json={"message": "bad filter"}, request=request)
        return None

    log: list[str] = []
    shop = Seam(world.shopline_app, log, shopline_gate)
    stok = Seam(world.stokly_app, log, stokly_gate)

    async def scenario() -> None:
        async with open_clients(
            world.mapping, lift_limits=True, shopline_transport=shop, stokly_transport=stok
        ) as (shopline, stokly):
            with pytest.raises(ConnectorError):
                await read_plan(
                    world.mapping, shopline=shopline, stokly=stokly, store=world.store, shown=True
                )
            # Stopped by the time the failure is raised, not left running in the background.
            assert stopped
            assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())
