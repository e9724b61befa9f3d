"""A stock pass ends within its time budget however long SHOPLINE hangs, and the levels it did
not push are pushed by the next pass.

SHOPLINE is the in-process sandbox behind a seam that makes level writes hang until the client's
timeout (as the hostile fault profile's hanging requests do); time is a virtual clock shared by
both clients and the seam, so 30-second hangs cost nothing and every figure is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.sync.clients import LIFTED, CountingPacer
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import sync_stock
from tests.connectors.fakes import FakeClock
from tests.sync.conftest import CLIENT_ID, CLIENT_SECRET, TOKEN, World

WRITES = ("/inventory_levels/adjust.json", "/inventory_levels/set.json")
TIMEOUT = 30.0  # the clients' request timeout: a hanging write is given up after it
EVERY = 120.0  # the test mapping's syncs.stock.every: 2 minutes
BUDGET = EVERY - TIMEOUT  # no request is started after 90 s


class HangingWrites(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox; while ``hanging``, a level write never reaches it and its answer
    never comes: after `TIMEOUT` (virtual) seconds the client's timeout gives up on it."""

    def __init__(self, app: Any, clock: FakeClock) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.clock = clock
        self.hanging = False
        self.writes_sent: list[float] = []  # when each level write left the client
        self.writes_applied = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(WRITES):
            self.writes_sent.append(self.clock.now)
            if self.hanging:
                await self.clock.sleep(TIMEOUT)
                raise httpx.ReadTimeout("timed out", request=request)
            self.writes_applied += 1
        return await self.inner.handle_async_request(request)


def two_minute_schedule(world: World) -> Mapping:
    return world.mapping_with(lambda text: text.replace("    every: 5m\n", "    every: 2m\n", 1))


def run_pass(world: World, mapping: Mapping, seam: HangingWrites, clock: FakeClock) -> StockReport:
    shop, stok = mapping.connections.shopline, mapping.connections.stokly
    shopline = ShoplineClient(
        shop.url,
        SecretStr(TOKEN),
        api_version=shop.api_version,
        pacer=CountingPacer(LIFTED, clock),
        max_concurrency=8,
        timeout=TIMEOUT,
        transport=seam,
        clock=clock,
    )
    stokly = StoklyClient(
        stok.base_url,
        account_key=stok.account_key,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        pacer=CountingPacer(LIFTED, clock),
        transport=world.faults,
        clock=clock,
    )

    async def one() -> StockReport:
        async with shopline, stokly:
            return await sync_stock(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=world.store,
                clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            )

    return clock.run(one())


def test_a_pass_against_hanging_writes_ends_within_its_schedule_and_the_next_pushes_the_rest(
    world: World,
) -> None:
    world.run()  # the seeded paid orders imported first: stock, not orders, is tested here
    mapping = two_minute_schedule(world)
    clock = FakeClock()
    seam = HangingWrites(world.shopline_app, clock)

    seam.hanging = True
    start = clock.now
    cut = run_pass(world, mapping, seam, clock)
    elapsed = clock.now - start

    # Eight writes at a time, each hanging 30 s: the waves sent at 0, 30 and 60 s were given up
    # at 90 s, and none was started after that. Without a budget the pass took 8 waves: 240 s.
    assert elapsed <= EVERY
    assert all(sent - start < BUDGET for sent in seam.writes_sent)
    levels = cut.levels_changed
    assert levels > 3 * 8 and len(seam.writes_sent) == 3 * 8 and seam.writes_applied == 0
    assert not cut.ok and cut.pushed == 0 and cut.failed == levels
    assert cut.out_of_time  # the flow leaves it to the next scheduled pass, no retry at once
    not_sent = levels - len(seam.writes_sent)
    assert cut.errors[0] == (
        f"the stock pass's time budget of {BUDGET:g} s ran out: {not_sent} level(s) not pushed;"
        " the next pass pushes them"
    )
    assert world.store.levels.all("demo-outdoor") == {}  # nothing recorded as pushed

    # SHOPLINE answers again: the next pass pushes every level, each written once.
    seam.hanging = False
    seam.writes_sent.clear()
    after = run_pass(world, mapping, seam, clock)
    assert after.ok and after.pushed == levels == seam.writes_applied and not after.out_of_time
    quiet = run_pass(world, mapping, seam, clock)
    assert quiet.ok and quiet.pushed == 0 and seam.writes_applied == levels
