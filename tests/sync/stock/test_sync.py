"""The stock sync end to end against both sandboxes: delta-only pushes, arithmetic, drift, faults.

Writes are counted at the transport seam (every ``POST inventory_levels/adjust.json`` or
``set.json`` SHOPLINE accepts), and expected levels are derived from the Stokly sandbox's own state, not from our
report, so the arithmetic is checked against a second, independent sum.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient
from pydantic import SecretStr

from stokline.config import Mapping
from stokline.connectors import ConnectorError, RetryPolicy, ShoplineClient, StoklyClient
from stokline.sandbox.common import DroppedConnection
from stokline.sandbox.stokly.domain import allocations
from stokline.sync.clients import LIFTED, CountingPacer, open_clients
from stokline.sync.stock.events import changes_since
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import sync_stock
from tests.sync.conftest import CLIENT_ID, CLIENT_SECRET, TOKEN, World

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
UNKNOWN = "ACME-HAMMOCK-XL-RED"  # sold in SHOPLINE, unknown to Stokly
ONLINE, BRISTOL = "7001", "7002"
WRITES = {"adjust": "/inventory_levels/adjust.json", "set": "/inventory_levels/set.json"}
LEVELS = "/inventory_levels.json"
DRIFT_EVERY = timedelta(hours=1)  # the demo mapping's syncs.stock.drift_every (the default)


class CountingShopline(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox behind a seam that records every level write it accepts.

    Each write is its JSON body with ``kind`` ("adjust" or "set") added. ``before_write``, when
    set, runs once just before the first write is forwarded (a checkout landing between the
    pass's read and its write); ``lose_answers`` writes are forwarded, and then their answers
    lost as a timeout would lose them. ``level_reads`` holds the inventory item ids of each
    ``GET inventory_levels.json`` SHOPLINE answered.
    """

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.writes: list[dict[str, Any]] = []
        self.level_reads: list[list[str]] = []
        self.before_write: Callable[[httpx.AsyncBaseTransport], Awaitable[None]] | None = None
        self.lose_answers = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = next((k for k in WRITES if request.url.path.endswith(WRITES[k])), None)
        if kind is not None and self.before_write is not None:
            hook, self.before_write = self.before_write, None
            await hook(self.inner)
        try:
            response = await self.inner.handle_async_request(request)
        except DroppedConnection as exc:
            # In-process the sandbox's dropped connection surfaces as its own exception; over a
            # socket the client sees a protocol error, so that is what it gets here.
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        answered = response.status_code == 200
        if request.method == "GET" and request.url.path.endswith(LEVELS) and answered:
            ids = request.url.params.get("inventory_item_ids") or ""
            self.level_reads.append([i for i in ids.split(",") if i])
        if kind is not None and response.status_code == 200:
            self.writes.append({"kind": kind, **json.loads(request.content)})
            if self.lose_answers:
                self.lose_answers -= 1
                await response.aclose()
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


class Stock:
    """Drives the stock sync in a `World`, and reads both sandboxes to check what it did.

    Each pass starts at ``now``, which only `wait` moves on: the time between passes sizes the
    drift slice a full pass reads.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.shopline = CountingShopline(world.shopline_app)
        self.stokly_api = TestClient(world.stokly_app)
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def wait(self, span: timedelta) -> None:
        self.now += span

    def items_read(self) -> set[str]:
        """The inventory items whose levels the last pass read."""
        return {item for request in self.shopline.level_reads for item in request}

    def run(self, mapping: Mapping | None = None, **options: Any) -> StockReport:
        mapping = mapping or self.world.mapping

        async def scenario() -> StockReport:
            async with open_clients(
                mapping,
                lift_limits=True,
                shopline_transport=self.shopline,
                stokly_transport=self.world.faults,
            ) as (shopline, stokly):
                return await sync_stock(
                    mapping,
                    shopline=shopline,
                    stokly=stokly,
                    store=self.world.store,
                    clock=lambda: self.now,
                    **options,
                )

        self.shopline.writes.clear()
        self.shopline.level_reads.clear()
        return asyncio.run(scenario())

    def move(self, kind: str, location: str, sku: str, quantity: int) -> None:
        body = {"location": location, "items": [{"sku": sku, "quantity": quantity}]}
        response = self.stokly_api.post(f"/_sandbox/{kind}", json=body)
        assert response.status_code == 200, response.text

    # -- SHOPLINE -------------------------------------------------------------------------------

    def inventory_item(self, sku: str) -> str:
        for _, product in self.world.shopline_app.state.shopline.store.scan("product"):
            for variant in product["variants"]:
                if (variant.get("sku") or "").casefold() == sku.casefold():
                    return str(variant["inventory_item_id"])
        raise AssertionError(f"no SHOPLINE variant {sku}")

    def levels(self) -> dict[tuple[str, str], int]:
        store = self.world.shopline_app.state.shopline.store
        return {
            (str(lv["inventory_item_id"]), str(lv["location_id"])): lv["available"]
            for _, lv in store.scan("inventory_level")
        }

    def level(self, sku: str, location: str) -> int:
        return self.levels()[(self.inventory_item(sku), location)]

    def admin_sets(self, sku: str, location: str, available: int) -> None:
        """A merchant typing a number into SHOPLINE's admin (no sync involved)."""
        store = self.world.shopline_app.state.shopline.store
        key = f"{self.inventory_item(sku)}:{location}"
        store.update(
            "inventory_level", key, {**store.get("inventory_level", key), "available": available}
        )

    # -- Stokly, summed independently ------------------------------------------------------------

    def stokly_sellable(self, sku: str, names: list[str], buffer: int, unimported: int = 0) -> int:
        state = self.world.stokly_state
        item_id = next(i["itemId"] for i in state.items if i["sku"].casefold() == sku.casefold())
        ids = {loc["locationId"] for loc in state.locations if loc["name"] in names}
        total = Decimal(0)
        for rec in state.inventory:
            if rec["itemId"] == item_id and rec["locationId"] in ids:
                total += Decimal(rec["onHand"]) - Decimal(rec["quarantined"])
        reserved: dict[str | None, Decimal] = defaultdict(Decimal)
        for row in allocations(state):
            if row["itemId"] == item_id:
                reserved[row["locationId"]] += Decimal(row["allocated"])
        total -= sum((reserved[i] for i in ids), Decimal(0)) + reserved[None]
        return max(0, math.floor(total - buffer - unimported))


def stock(world: World, *, import_seeded: bool = True) -> Stock:
    """A `Stock` driver; the seeded paid SHOPLINE orders are imported into Stokly first (so the
    independent sum need not know about orders waiting for import) unless ``import_seeded`` is
    false."""
    if import_seeded:
        world.run()
    return Stock(world)


def test_a_second_pass_over_an_unchanged_catalogue_writes_nothing(world: World) -> None:
    s = stock(world)
    progress: list[tuple[int, int]] = []
    first = s.run(progress=lambda done, total: progress.append((done, total)))
    assert first.ok and first.pushed == len(s.shopline.writes) > 0
    assert progress[-1] == (first.pushed, first.pushed)
    assert first.levels_computed == first.pushed  # the fixture put 10,000 everywhere
    assert len(world.store.levels.all("demo-outdoor")) == first.levels_computed

    second = s.run()
    assert s.shopline.writes == []
    assert second.ok and second.pushed == 0 and second.levels_changed == 0
    assert second.levels_computed == first.levels_computed
    assert 0 < second.api_calls < first.api_calls  # reads only


def test_one_adjustment_in_stokly_costs_exactly_one_write(world: World) -> None:
    s = stock(world)
    s.run()
    before = s.level(SOCKS, BRISTOL)
    s.move("adjust", "Bristol DC", SOCKS, 3)
    report = s.run()
    assert s.shopline.writes == [
        {
            "kind": "adjust",
            "inventory_item_id": s.inventory_item(SOCKS),
            "location_id": BRISTOL,
            "available_adjustment": s.stokly_sellable(SOCKS, ["Bristol DC"], buffer=0) - before,
        }
    ]
    assert s.level(SOCKS, BRISTOL) == s.stokly_sellable(SOCKS, ["Bristol DC"], buffer=0)
    assert s.level(SOCKS, BRISTOL) >= before
    assert report.pushed == report.levels_changed == 1


def test_buffers_and_the_many_to_one_location_mapping_are_applied(world: World) -> None:
    s = stock(world)
    s.move("goods-receipt", "Leeds DC", TENT, 20)
    s.move("goods-receipt", "York Store", TENT, 7)
    s.move("quarantine", "Leeds DC", TENT, 3)
    s.run()
    online = s.stokly_sellable(TENT, ["Leeds DC", "York Store"], buffer=2)
    assert online > 0
    assert s.level(TENT, ONLINE) == online
    assert s.level(TENT, BRISTOL) == s.stokly_sellable(TENT, ["Bristol DC"], buffer=0)

    s.move("goods-receipt", "York Store", TENT, 5)  # York counts towards 7001 only
    s.run()
    assert s.level(TENT, ONLINE) == online + 5
    assert [w["location_id"] for w in s.shopline.writes] == [ONLINE]


def test_paid_orders_not_yet_in_stokly_are_subtracted(world: World) -> None:
    s = stock(world)
    s.run()
    before = s.level(TENT, ONLINE)
    assert before == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2) >= 2
    world.place((TENT, 2), customer={"email": "ada@example.com"})
    waiting = s.run()
    assert s.level(TENT, ONLINE) == before - 2
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2, 2)
    assert waiting.ok

    world.run()  # the orders sync imports it: Stokly now allocates the two tents
    imported = s.run()
    assert s.level(TENT, ONLINE) == before - 2
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)
    assert imported.pushed == 0 and s.shopline.writes == []


def test_a_paid_order_refunded_in_part_while_waiting_for_import_is_subtracted(
    world: World,
) -> None:
    # The orders sync imports the units paid and not refunded, so until then the stock sync
    # subtracts exactly those: the level does not move when the import allocates them.
    s = stock(world)
    s.run()
    before = s.level(TENT, ONLINE)
    order = world.place((TENT, 3), customer={"email": "ada@example.com"})
    line = order["line_items"][0]["id"]
    body = {"lines": [{"line_item_id": line, "quantity": 1}]}
    refunded = world.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=body)
    assert refunded.status_code == 200, refunded.text
    s.run()
    assert s.level(TENT, ONLINE) == before - 2

    world.run()  # two tents imported: Stokly allocates them, the level stays put
    imported = s.run()
    assert s.level(TENT, ONLINE) == before - 2
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)
    assert imported.pushed == 0


def test_a_level_changed_in_shopline_admin_is_set_back_and_audited(world: World) -> None:
    s = stock(world)
    s.run()
    right = s.level(SOCKS, ONLINE)
    s.admin_sets(SOCKS, ONLINE, right + 50)
    s.wait(DRIFT_EVERY)  # every level is read again by now

    blind = s.run(check_drift=False)
    assert blind.pushed == 0 and s.level(SOCKS, ONLINE) == right + 50
    assert [row["sku"] for row in blind.oversell_risk] == [SOCKS]

    report = s.run()
    assert report.drift_corrected == 1 and report.pushed == 1
    assert s.level(SOCKS, ONLINE) == right
    [audit] = world.store.audit.list("demo-outdoor", f"{s.inventory_item(SOCKS)}:{ONLINE}")
    assert audit.action == "correct_stock_drift"
    assert audit.details["found"] == right + 50 and audit.details["set"] == right


def test_unknown_and_excluded_skus_are_never_pushed(world: World) -> None:
    s = stock(world, import_seeded=False)
    report = s.run()
    unknown_item = s.inventory_item(UNKNOWN)
    assert unknown_item not in {w["inventory_item_id"] for w in s.shopline.writes}
    [row] = report.exceptions
    assert row["code"] == "unknown_shopline_sku" and row["team"] == "ecommerce"
    assert UNKNOWN in row["message"]
    [record] = world.store.exceptions.list(client="demo-outdoor", status="open")
    assert record.code == "unknown_shopline_sku" and record.entity_kind == "variant"
    assert report.skipped_excluded > 0
    pushed_skus = set()
    for _, product in world.shopline_app.state.shopline.store.scan("product"):
        for variant in product["variants"]:
            if str(variant["inventory_item_id"]) in {
                w["inventory_item_id"] for w in s.shopline.writes
            }:
                pushed_skus.add(variant["sku"])
    assert not any(sku.upper().startswith(("GIFT-CARD-", "SAMPLE-")) for sku in pushed_skus)

    override = f"    - {{shopline_sku: {UNKNOWN}, stokly_sku: {TENT}}}\n"
    fixed = world.mapping_with(
        lambda text: text.replace("  overrides:\n", "  overrides:\n" + override, 1)
    )
    healed = s.run(fixed)
    assert unknown_item in {w["inventory_item_id"] for w in s.shopline.writes}
    assert [(r["code"], r["status"]) for r in healed.exceptions] == [
        ("sku_collision", "open"),  # the override shares TENT's stock with TENT's own variant
        ("unknown_shopline_sku", "resolved"),
    ]
    assert world.store.exceptions.get(record.id).status == "resolved"


def test_a_location_with_sync_off_is_left_alone(world: World) -> None:
    s = stock(world)
    off = s.world.mapping_with(
        lambda text: text.replace("stock: {sync: true, buffer: 0}", "stock: {sync: false}")
    )
    report = s.run(off)
    assert report.pushed > 0
    assert {w["location_id"] for w in s.shopline.writes} == {ONLINE}
    assert s.level(SOCKS, BRISTOL) == 10_000


def test_the_event_path_pushes_only_the_skus_that_moved(world: World) -> None:
    s = stock(world)
    s.run()

    async def feed(cursor: str | None) -> tuple[set[str], str]:
        async with open_clients(world.mapping, lift_limits=True, stokly_transport=world.faults) as (
            _,
            stokly,
        ):
            own = world.mapping.connections.stokly.channel_id
            found = await changes_since(stokly, cursor, own)
            assert not found.items  # stock movements change no item's catalogue data
            return found.skus, found.cursor

    _, cursor = asyncio.run(feed(None))
    s.move("goods-receipt", "Bristol DC", TENT, 4)
    s.move("goods-receipt", "Bristol DC", SOCKS, 4)
    moved, later = asyncio.run(feed(cursor))
    assert {m.casefold() for m in moved} == {TENT.casefold(), SOCKS.casefold()}
    assert int(later) > int(cursor)
    assert asyncio.run(feed(later)) == (set(), later)

    only_tent = s.run(skus={TENT}, trigger="event")
    assert [w["inventory_item_id"] for w in s.shopline.writes] == [s.inventory_item(TENT)]
    assert only_tent.trigger == "event" and only_tent.exceptions == []
    assert only_tent.levels_computed == 2  # one variant at two locations
    assert s.level(TENT, BRISTOL) == s.stokly_sellable(TENT, ["Bristol DC"], 0)

    rest = s.run()
    assert [w["inventory_item_id"] for w in s.shopline.writes] == [s.inventory_item(SOCKS)]
    assert rest.pushed == 1


def test_a_dry_run_writes_nothing_and_lists_what_would_change(world: World) -> None:
    s = stock(world, import_seeded=False)
    before = s.levels()
    report = s.run(dry_run=True)
    assert s.shopline.writes == [] and s.levels() == before
    assert report.dry_run and report.pushed == 0
    assert len(report.would_push) == report.levels_computed > 0
    assert world.store.levels.all("demo-outdoor") == {}
    assert world.store.exceptions.list(client="demo-outdoor") == []
    assert {"metric": "would push", "value": len(report.would_push)} in report.summary_rows()


def test_under_the_hostile_profile_repeated_passes_converge_on_sellable(world: World) -> None:
    s = stock(world)
    faults = {"profile": "hostile", "timeout_s": 0.05, "latency_ms": [0, 5], "retry_after_s": 0.02}
    assert s.world.shop.put("/_sandbox/faults", json=faults).status_code == 200
    s.move("goods-receipt", "Leeds DC", TENT, 9)
    fast = RetryPolicy(max_attempts=2, max_elapsed=1.0, backoff_base=0.01, backoff_max=0.02)
    conn = world.mapping.connections

    async def one_pass() -> StockReport | None:
        shopline = ShoplineClient(
            conn.shopline.url,
            SecretStr(TOKEN),
            api_version=conn.shopline.api_version,
            pacer=CountingPacer(LIFTED),
            retry=fast,
            timeout=1.0,
            transport=s.shopline,
        )
        stokly = StoklyClient(
            conn.stokly.base_url,
            account_key=conn.stokly.account_key,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            pacer=CountingPacer(LIFTED),
            transport=world.faults,
        )
        try:
            return await sync_stock(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store
            )
        except ConnectorError:
            return None  # a read that failed: the next pass starts over
        finally:
            await shopline.aclose()
            await stokly.aclose()

    reports = []
    for _ in range(25):
        report = asyncio.run(one_pass())
        reports.append(report)
        if report is not None and report.ok and report.levels_changed == 0:
            break
    assert any(r is None or r.failed for r in reports), "the hostile profile never bit"
    assert reports[-1] is not None and reports[-1].ok and reports[-1].pushed == 0

    assert s.world.shop.put("/_sandbox/faults", json={"profile": "none"}).status_code == 200
    # Forget what was pushed: a dry run then lists every SHOPLINE level unequal to sellable.
    levels = world.store.levels
    levels.forget("demo-outdoor", list(levels.all("demo-outdoor")))
    verdict = s.run(dry_run=True)
    assert verdict.levels_computed > 0 and verdict.would_push == []
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)


# -- pushing by difference ------------------------------------------------------------------------


def checkout(sku: str, quantity: int) -> Callable[[httpx.AsyncBaseTransport], Awaitable[None]]:
    """A storefront order, placed through the sandbox's control API from inside the seam."""

    async def place(inner: httpx.AsyncBaseTransport) -> None:
        body = {"lines": [{"sku": sku, "quantity": quantity}]}
        request = httpx.Request("POST", "http://shopline/_sandbox/orders", json=body)
        response = await inner.handle_async_request(request)
        await response.aread()
        assert response.status_code == 200, response.text

    return place


def test_a_checkout_between_the_passs_read_and_its_write_is_kept(world: World) -> None:
    s = stock(world)
    s.run()
    s.move("goods-receipt", "Leeds DC", TENT, 5)
    read = s.level(TENT, ONLINE)
    s.shopline.before_write = checkout(TENT, 1)  # SHOPLINE sells one after the pass read 7001

    report = s.run()
    sellable = s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)
    assert s.shopline.writes == [
        {
            "kind": "adjust",
            "inventory_item_id": s.inventory_item(TENT),
            "location_id": ONLINE,
            "available_adjustment": sellable - read,
        }
    ]
    assert s.level(TENT, ONLINE) == sellable - 1  # the sale survived the push
    assert report.ok and report.pushed == 1 and report.pushed_absolute == 0

    # The order waits for import: the next pass's target takes it off and SHOPLINE already
    # shows that, so nothing is written; once imported, Stokly allocates it and nothing moves.
    after = s.run()
    assert s.shopline.writes == [] and after.ok and after.levels_changed == 1
    assert s.level(TENT, ONLINE) == sellable - 1
    world.run()
    assert s.run().pushed == 0 and s.shopline.writes == []
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)


def test_a_level_the_pass_could_not_read_is_set(world: World) -> None:
    s = stock(world)
    s.run()
    store = world.shopline_app.state.shopline.store
    assert store.delete("inventory_level", f"{s.inventory_item(TENT)}:{BRISTOL}")
    s.move("goods-receipt", "Bristol DC", SOCKS, 2)
    socks = s.level(SOCKS, BRISTOL)
    # The pass pushed TENT at 7002 before and remembers it: forget it, as after a reconnect.
    world.store.levels.forget("demo-outdoor", [(s.inventory_item(TENT), BRISTOL)])

    report = s.run()
    assert sorted(s.shopline.writes, key=lambda w: w["kind"]) == [
        {
            "kind": "adjust",
            "inventory_item_id": s.inventory_item(SOCKS),
            "location_id": BRISTOL,
            "available_adjustment": s.stokly_sellable(SOCKS, ["Bristol DC"], 0) - socks,
        },
        {
            "kind": "set",
            "inventory_item_id": s.inventory_item(TENT),
            "location_id": BRISTOL,
            "available": s.stokly_sellable(TENT, ["Bristol DC"], 0),
        },
    ]
    assert report.ok and report.pushed == 2 and report.pushed_absolute == 1
    assert s.level(TENT, BRISTOL) == s.stokly_sellable(TENT, ["Bristol DC"], 0)


def test_a_lost_adjust_answer_is_not_recorded_and_never_applied_twice(world: World) -> None:
    s = stock(world)
    s.run()
    key = (s.inventory_item(SOCKS), BRISTOL)
    before = world.store.levels.all("demo-outdoor")[key]
    s.move("goods-receipt", "Bristol DC", SOCKS, 4)
    s.shopline.lose_answers = 1  # SHOPLINE applies the adjust; its answer never arrives

    lost = s.run()
    sellable = s.stokly_sellable(SOCKS, ["Bristol DC"], 0)
    assert [w["kind"] for w in s.shopline.writes] == ["adjust"]  # sent once, never resent
    assert s.level(SOCKS, BRISTOL) == sellable == before + 4
    assert not lost.ok and lost.failed == 1 and lost.pushed == 0
    assert key not in world.store.levels.all("demo-outdoor")  # not recorded as pushed

    # The next pass reads the level afresh, finds it right and writes nothing: no second +4.
    again = s.run()
    assert s.shopline.writes == [] and again.ok and again.pushed == 0
    assert s.level(SOCKS, BRISTOL) == sellable
    assert world.store.levels.all("demo-outdoor")[key] == sellable

    # A lost answer also unsettles what was pushed before it: when Stokly then goes back to
    # that value, the level SHOPLINE shows is still compared with it, drift check or not.
    s.move("goods-receipt", "Bristol DC", SOCKS, 4)
    s.shopline.lose_answers = 1
    assert s.run().failed == 1 and s.level(SOCKS, BRISTOL) == sellable + 4
    s.move("adjust", "Bristol DC", SOCKS, -4)
    back = s.run(check_drift=False)
    assert back.ok and [w["available_adjustment"] for w in s.shopline.writes] == [-4]
    assert s.level(SOCKS, BRISTOL) == sellable == s.stokly_sellable(SOCKS, ["Bristol DC"], 0)


def test_a_pass_writes_once_per_changed_level_and_by_difference(world: World) -> None:
    s = stock(world)
    s.run()
    for sku in (TENT, SOCKS):
        for location in ("Leeds DC", "York Store", "Bristol DC"):
            s.move("goods-receipt", location, sku, 3)
    report = s.run()
    assert report.ok and report.levels_changed == 4  # two SKUs at two SHOPLINE locations
    assert len(s.shopline.writes) / report.levels_changed == 1.00
    assert [w["kind"] for w in s.shopline.writes] == ["adjust"] * 4
    assert {w["available_adjustment"] for w in s.shopline.writes} == {3, 6}
    assert s.run().pushed == 0 and s.shopline.writes == []


# -- variants no Stokly item backs any more -------------------------------------------------------


def key(write: dict[str, Any]) -> tuple[str, str]:
    return (write["inventory_item_id"], write["location_id"])


def test_a_variant_whose_item_is_gone_or_colliding_goes_to_zero(world: World) -> None:
    s = stock(world)
    report_only = world.mapping_with(
        lambda text: text.replace("on_removed: archive", "on_removed: report")
    )
    s.run(report_only)
    state = world.stokly_state
    items = {i["sku"]: i for i in state.items}
    sold = {
        v["sku"]
        for _, p in world.shopline_app.state.shopline.store.scan("product")
        for v in p["variants"]
        if v.get("sku")
    }
    third = next(
        sku
        for sku, i in sorted(items.items())
        if sku in sold and sku not in (TENT, SOCKS) and i.get("format") != 2
    )
    assert s.level(third, ONLINE) > 0 and s.level(TENT, BRISTOL) > 0
    state.save_item({**items[TENT], "status": 1})  # deleted
    state.save_item({**items[third], "isSold": False})  # deactivated
    twin = {**items[SOCKS], "itemId": state.new_id(), "sku": SOCKS.lower()}
    state.save_item(twin)  # a second Stokly item matching SOCKS under case-insensitive rules

    shown = s.levels()
    report = s.run(report_only)
    assert report.ok
    for sku in (TENT, SOCKS, third):
        for location in (ONLINE, BRISTOL):
            assert s.level(sku, location) == 0, (sku, location)
    gone = {(s.inventory_item(k), loc) for k in (TENT, SOCKS, third) for loc in (ONLINE, BRISTOL)}
    assert {(w["inventory_item_id"], w["location_id"]) for w in s.shopline.writes} == {
        key for key in gone if shown[key] != 0
    }
    assert all(w["available_adjustment"] == -shown[key(w)] for w in s.shopline.writes)
    rows = {row["entity"].split(" ")[1]: row for row in report.exceptions}
    assert rows[SOCKS]["code"] == "sku_collision"
    assert rows[TENT]["code"] == rows[third]["code"] == "unknown_shopline_sku"
    assert all("set to 0" in rows[k]["message"] for k in (TENT, SOCKS, third))
    assert s.run(report_only).pushed == 0 and s.shopline.writes == []  # zero stays quiet

    # Once Stokly has the item again, its level comes back and the exception is resolved.
    state.save_item({**items[TENT], "status": 0})
    back = s.run(report_only)
    assert s.level(TENT, BRISTOL) == s.stokly_sellable(TENT, ["Bristol DC"], 0) > 0
    assert ("unknown_shopline_sku", "resolved") in {
        (r["code"], r["status"]) for r in back.exceptions if TENT in r["entity"]
    }


def test_a_variant_the_catalogue_archives_is_left_to_it_but_a_collision_is_not(
    world: World,
) -> None:
    s = stock(world)  # the demo mapping archives products whose Stokly items are gone
    s.run()
    state = world.stokly_state
    items = {i["sku"]: i for i in state.items}
    before = s.level(TENT, ONLINE)
    state.save_item({**items[TENT], "status": 1})
    state.save_item({**items[SOCKS], "itemId": state.new_id(), "sku": SOCKS.lower()})

    report = s.run()
    assert s.level(TENT, ONLINE) == before  # the catalogue sync archives its product
    assert {w["inventory_item_id"] for w in s.shopline.writes} == {s.inventory_item(SOCKS)}
    assert s.level(SOCKS, ONLINE) == s.level(SOCKS, BRISTOL) == 0
    rows = {row["entity"].split(" ")[1]: row for row in report.exceptions}
    assert "set to 0" not in rows[TENT]["message"] and "set to 0" in rows[SOCKS]["message"]


# -- one Stokly item, one sellable figure ---------------------------------------------------------


def test_one_stokly_item_shows_its_stock_on_one_variant_only(world: World) -> None:
    s = stock(world)
    s.run()
    override = f"    - {{shopline_sku: {UNKNOWN}, stokly_sku: {TENT}}}\n"
    both = world.mapping_with(
        lambda text: text.replace("  overrides:\n", "  overrides:\n" + override, 1)
    )
    report = s.run(both)
    assert report.ok
    # TENT's own variant (its SKU is the Stokly SKU exactly) shows the figure; the override 0.
    # (Paid orders of the hammock waiting for import now count against the tent.)
    waiting = sum(
        line["quantity"]
        for _, order in world.shopline_app.state.shopline.store.scan("order")
        if order.get("financial_status") == "paid" and not order.get("cancelled_at")
        for line in order["line_items"]
        if line.get("sku") == UNKNOWN
    )
    online = s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2, unimported=waiting)
    assert s.level(TENT, ONLINE) == online > 0
    assert s.level(TENT, BRISTOL) == s.stokly_sellable(TENT, ["Bristol DC"], 0) > 0
    assert s.level(UNKNOWN, ONLINE) == s.level(UNKNOWN, BRISTOL) == 0
    [shared] = [r for r in report.exceptions if r["code"] == "sku_collision"]
    assert TENT in shared["entity"] and UNKNOWN in shared["message"]
    assert f"shown on {TENT}" in shared["message"]
    [record] = world.store.exceptions.list(
        client="demo-outdoor", entity_kind="stokly_sku_shared", status="open"
    )
    assert {v["sku"] for v in record.payload["variants"]} == {TENT, UNKNOWN}

    again = s.run(both)  # quiet, and still one exception
    assert again.pushed == 0 and s.shopline.writes == []
    assert len(world.store.exceptions.list(client="demo-outdoor", code="sku_collision")) == 1

    # Without the override one variant sells TENT again: the exception closes by itself.
    alone = s.run()
    assert ("sku_collision", "resolved") in {(r["code"], r["status"]) for r in alone.exceptions}
    assert world.store.exceptions.get(record.id).status == "resolved"
    assert s.level(TENT, ONLINE) == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2) > online


def test_the_mapping_chooses_which_variant_shows_a_shared_item(world: World) -> None:
    s = stock(world)
    s.run()
    override = f"    - {{shopline_sku: {UNKNOWN}, stokly_sku: {TENT}}}\n"

    def sharing(choice: str) -> Mapping:
        """The tent sold by its own variant and by the hammock's (an override), and
        ``skus.show_stock_on`` naming ``choice`` for it."""
        entry = f"  show_stock_on:\n    - {{stokly_sku: {TENT}, {choice}}}\n"
        return world.mapping_with(
            lambda text: text.replace("  overrides:\n", "  overrides:\n" + override, 1).replace(
                "  never_sync:", entry + "  never_sync:", 1
            )
        )

    hammock = sharing(f"shopline_sku: {UNKNOWN}")
    # Orders of either variant import onto the tent, whichever shows its stock.
    orders = [
        world.place((sku, 1), customer={"email": "camper@example.com"}) for sku in (TENT, UNKNOWN)
    ]
    world.run(hammock)
    tent = next(i for i in world.stokly_state.items if i["sku"] == TENT)
    for order in orders:
        [sale] = world.sale_orders(order["id"])
        assert [line["referenceId"] for line in sale["items"]] == [tent["itemId"]]

    report = s.run(hammock)
    assert report.ok
    # The hammock's variant shows the tent's sellable figure at each location, the tent's own 0.
    # (The seeded paid order of the hammock, refused before the override, still waits for
    # import: it counts against the tent at the default location.)
    waiting = sum(
        line["quantity"]
        for _, order in world.shopline_app.state.shopline.store.scan("order")
        if order.get("financial_status") == "paid" and not order.get("cancelled_at")
        if not world.sale_orders(order["id"])
        for line in order["line_items"]
        if line.get("sku") in (TENT, UNKNOWN)
    )
    online = s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2, unimported=waiting)
    bristol = s.stokly_sellable(TENT, ["Bristol DC"], 0)
    assert s.level(UNKNOWN, ONLINE) == online > 0 and s.level(UNKNOWN, BRISTOL) == bristol > 0
    assert s.level(TENT, ONLINE) == s.level(TENT, BRISTOL) == 0
    [shared] = [r for r in report.exceptions if r["code"] == "sku_collision"]
    assert f"shown on {UNKNOWN}" in shared["message"]
    assert "(as skus.show_stock_on chooses)" in shared["message"]

    # A variant id that is none of them (a product since removed): the default, and it says so.
    gone = sharing('shopline_variant_id: "999999"')
    fallback = s.run(gone)
    assert s.level(TENT, ONLINE) == online and s.level(TENT, BRISTOL) == bristol
    assert s.level(UNKNOWN, ONLINE) == s.level(UNKNOWN, BRISTOL) == 0
    [shared] = [r for r in fallback.exceptions if r["code"] == "sku_collision"]
    message = shared["message"]
    assert f"shown on {TENT}" in message
    assert "skus.show_stock_on names variant id 999999 for this item, which is none of" in message
    assert "the default applies: its SKU is the Stokly SKU exactly" in message
    assert "correct the item's entry under skus.show_stock_on" in message
    [record] = world.store.exceptions.list(
        client="demo-outdoor", entity_kind="stokly_sku_shared", status="open"
    )
    assert record.message == message and record.payload["shown_on"] != "999999"
