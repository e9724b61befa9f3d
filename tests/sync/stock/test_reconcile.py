"""Stock reconciliation against both sandboxes: Stokly sellable beside SHOPLINE available.

Expected sellable levels are summed independently from the Stokly sandbox's own state (the
`Stock` driver of test_stock_sync), and "writes nothing" is checked on the wire and in the store.
"""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal

from stokline.sync.clients import open_clients
from stokline.sync.stock.reconcile import (
    COLUMNS,
    StockReconciliation,
    compare_levels,
    reconcile_stock,
)
from stokline.sync.stock.translate import DesiredLevel
from tests.sync.conftest import World

from .test_sync import BRISTOL, DRIFT_EVERY, ONLINE, SOCKS, TENT, Stock, stock


def reconcile(s: Stock) -> StockReconciliation:
    async def scenario() -> StockReconciliation:
        async with open_clients(
            s.world.mapping,
            lift_limits=True,
            shopline_transport=s.shopline,
            stokly_transport=s.world.faults,
        ) as (shopline, stokly):
            return await reconcile_stock(
                s.world.mapping, shopline=shopline, stokly=stokly, store=s.world.store
            )

    s.shopline.writes.clear()
    return asyncio.run(scenario())


def row_of(result: StockReconciliation, sku: str, location: str) -> dict:
    [row] = [
        r
        for r in result.rows()
        if r["shopline_sku"].casefold() == sku.casefold() and r["location"] == location
    ]
    return row


def test_levels_are_compared_with_stoklys_sellable_and_nothing_is_written(world: World) -> None:
    s = stock(world)
    before_levels = s.levels()
    before_store = world.store_rows()
    result = reconcile(s)

    assert s.shopline.writes == [] and s.levels() == before_levels
    assert world.store_rows() == before_store  # no pushed level, no exception, no audit row
    assert result.errors == [] and result.api_calls > 0
    assert result.compared > 0 and result.unmatched == 1  # the SKU Stokly does not know
    socks = row_of(result, SOCKS, BRISTOL)
    assert list(socks) == list(COLUMNS)
    assert socks["stokly_sellable"] == s.stokly_sellable(SOCKS, ["Bristol DC"], buffer=0)
    assert socks["shopline_available"] == s.level(SOCKS, BRISTOL) == 10_000
    assert socks["difference"] == 10_000 - socks["stokly_sellable"]
    tent = row_of(result, TENT, ONLINE)
    assert tent["stokly_sellable"] == s.stokly_sellable(TENT, ["Leeds DC", "York Store"], 2)
    # The fixture put 10,000 everywhere: every level is at oversell risk, largest excess first.
    assert result.oversell_risk == result.differences == result.compared
    differences = [r["difference"] for r in result.rows()]
    assert differences == sorted(differences, reverse=True)
    assert result.units_at_risk == sum(differences)
    assert result.oversell_risk_remaining == result.oversell_risk  # a reconcile sets nothing
    assert f"{result.compared} level(s) compared" in result.headline()


def test_after_a_pass_only_what_changed_in_shopline_differs(world: World) -> None:
    s = stock(world)
    s.run()
    assert reconcile(s).differences == 0

    right = s.level(SOCKS, ONLINE)
    s.admin_sets(SOCKS, ONLINE, right + 7)  # SHOPLINE now sells 7 socks Stokly does not have
    s.admin_sets(TENT, BRISTOL, 0)  # and under-sells tents
    result = reconcile(s)
    assert (result.differences, result.oversell_risk, result.units_at_risk) == (2, 1, 7)
    first, second = result.rows(only_differences=True)
    assert (first["shopline_sku"], first["location"]) == (SOCKS, ONLINE)
    assert first["difference"] == 7 and first["oversell_risk"] == "yes"
    assert (second["shopline_sku"], second["location"]) == (TENT, BRISTOL)
    assert second["difference"] == -second["stokly_sellable"]
    assert second["oversell_risk"] == "no"
    assert len(result.rows()) == result.compared
    assert result.rows(limit=1) == [first]


def test_a_level_shopline_does_not_have_is_a_difference_without_risk(world: World) -> None:
    s = stock(world)
    s.run()
    store = world.shopline_app.state.shopline.store
    store.delete("inventory_level", f"{s.inventory_item(SOCKS)}:{BRISTOL}")
    result = reconcile(s)
    assert (result.differences, result.missing, result.oversell_risk) == (1, 1, 0)
    [row] = result.rows(only_differences=True)
    assert row["shopline_available"] is None and row["difference"] is None
    assert "not stocked in SHOPLINE" in result.headline()


def test_a_pass_says_what_it_read_and_what_it_set_right(world: World) -> None:
    s = stock(world)
    s.run()
    s.admin_sets(SOCKS, ONLINE, s.level(SOCKS, ONLINE) + 3)
    s.wait(DRIFT_EVERY)  # every level is read again by now

    dry = s.run(dry_run=True)
    assert dry.reconciliation is not None
    assert dry.reconciliation.oversell_risk == dry.reconciliation.oversell_risk_remaining == 1

    live = s.run()
    found = live.reconciliation
    assert found is not None and live.drift_corrected == 1
    assert (found.differences, found.oversell_risk, found.oversell_risk_remaining) == (1, 1, 0)
    assert found.corrected == {(s.inventory_item(SOCKS), ONLINE)}
    assert found.differences_remaining == 0


def level(sku: str, location: str, available: int) -> DesiredLevel:
    zero = Decimal(0)
    return DesiredLevel(
        f"ii-{sku}", location, f"v-{sku}", sku, sku, available, zero, zero, zero, 0, 0
    )


def test_the_csv_has_every_row_and_no_cell_a_spreadsheet_would_run() -> None:
    levels = [level("=HYPERLINK(1)", "7001", 3), level("MUG", "7001", 5), level("CUP", "7002", 1)]
    shown = {("ii-=HYPERLINK(1)", "7001"): 3, ("ii-MUG", "7001"): 9}
    result = compare_levels("c", levels, shown)
    out = io.StringIO()
    assert result.write_csv(out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["shopline_sku"], r["difference"], r["oversell_risk"]) for r in rows] == [
        ("MUG", "4", "yes"),
        ("CUP", "", "no"),
        ("'=HYPERLINK(1)", "0", "no"),
    ]
    only = io.StringIO()
    assert result.write_csv(only, only_differences=True) == 2
    assert "HYPERLINK" not in only.getvalue()
