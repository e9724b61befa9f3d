"""The flash sale of benchmarks/bench_flash_sale.py, reduced: stepped, so its outcome does not
depend on timing, with a checkout landing inside every stock pass.

Both sandboxes run in this process; the storefront, the till, the orders sync, the stock event
path and full passes take turns (`benchmarks.flash_sale`, ``stepped``). Oversold units are
counted from both channels' ledger and checked against Stokly's own figures after every order
is imported, so the count does not rest on the benchmark's bookkeeping alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.flash_sale import Checkout, Config, Outcome, TillSale, attribute, run_flash_sale
from stokline.envfile import load_env_file

ROOT = Path(__file__).resolve().parents[2]
REDUCED = Config(skus=10, stock=(3, 6), buyers=2, stepped=True, inject="write")


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env: dict[str, str] = {}
    load_env_file(ROOT / ".env.demo", environ=env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _sound(outcome: Outcome) -> None:
    """What holds of any sale, however it was written: the measurement itself."""
    units = sum(outcome.stock.values())
    sold = sum(outcome.shopline_sold.values()) + sum(outcome.in_store_sold.values())
    assert sold - units == outcome.oversold_units
    # Every unit the ledger calls oversold is one Stokly could not allocate, and no other.
    assert outcome.stokly_oversold == outcome.oversold
    assert outcome.oversold_inside_window + outcome.oversold_by_sync == outcome.oversold_units
    # Every till sale reached SHOPLINE through a pass, and SHOPLINE sells nothing at the end.
    assert outcome.not_reflected == 0
    assert len(outcome.latencies) == sum(outcome.in_store_sold.values()) > 0
    assert all(level <= 0 for level in outcome.shopline_left.values())
    assert not outcome.pass_errors


def test_the_difference_push_oversells_nothing_a_checkout_between_read_and_write_would(
    tmp_path: Path, credentials: dict[str, str]
) -> None:
    started = time.monotonic()
    baseline = run_flash_sale("set", REDUCED, tmp_path / "set", credentials)
    difference = run_flash_sale("difference", REDUCED, tmp_path / "difference", credentials)
    _sound(baseline)
    _sound(difference)
    # The baseline shows the race is really run: an absolute set gives the checkout's unit back.
    assert baseline.oversold_by_sync > 0
    assert baseline.phantom_writes > 0
    # The difference push keeps it: no oversold unit is the sync's, no write showed too much.
    assert difference.oversold_by_sync == 0, difference.caused
    assert difference.phantom_writes == 0, difference.phantoms
    # Sales inside the event path's latency are tolerated, and counted.
    assert difference.oversold_units == difference.oversold_inside_window
    assert time.monotonic() - started < 60


def test_the_stepped_sale_is_the_same_every_time(
    tmp_path: Path, credentials: dict[str, str]
) -> None:
    first = run_flash_sale("difference", REDUCED, tmp_path / "first", credentials)
    again = run_flash_sale("difference", REDUCED, tmp_path / "again", credentials)
    for outcome in (first, again):
        _sound(outcome)
    keys = ("shopline_sold", "in_store_sold", "oversold", "oversold_inside_window", "passes")
    assert {k: getattr(first, k) for k in keys} == {k: getattr(again, k) for k in keys}


def test_a_checkout_between_the_order_read_and_the_level_read_is_not_sold_twice(
    tmp_path: Path, credentials: dict[str, str]
) -> None:
    config = Config(skus=10, stock=(3, 6), buyers=2, stepped=True, inject="read")
    outcome = run_flash_sale("difference", config, tmp_path / "read", credentials)
    _sound(outcome)
    assert outcome.oversold_by_sync == 0, outcome.caused


# -- attribution, on timelines written by hand -----------------------------------------------


def test_a_checkout_before_the_till_sale_reached_shopline_is_inside_the_latency() -> None:
    stock = {"A": 2}
    checkouts = [Checkout("A", 1.0, 1.1), Checkout("A", 3.0, 3.1)]
    till = [TillSale("A", 2.0, 2.1)]
    oversold, inside, caused = attribute(stock, checkouts, till, {0: 4.0}, window_s=15.0)
    assert oversold == {"A": 1}
    assert (inside, caused) == (1, [])


def test_a_checkout_after_shopline_was_told_is_the_syncs() -> None:
    stock = {"A": 2}
    checkouts = [Checkout("A", 1.0, 1.1), Checkout("A", 5.0, 5.1)]
    till = [TillSale("A", 2.0, 2.1)]
    oversold, inside, caused = attribute(stock, checkouts, till, {0: 4.0}, window_s=15.0)
    assert oversold == {"A": 1}
    assert inside == 0
    assert [row["checkout_s"] for row in caused] == [[5.0, 5.1]]


def test_a_movement_slower_than_the_stated_latency_tolerates_nothing() -> None:
    stock = {"A": 1}
    checkouts = [Checkout("A", 20.0, 20.1)]
    till = [TillSale("A", 2.0, 2.1)]
    _, inside, caused = attribute(stock, checkouts, till, {0: None}, window_s=15.0)
    assert (inside, len(caused)) == (0, 1)
    _, inside, caused = attribute(stock, checkouts, till, {0: None}, window_s=30.0)
    assert (inside, len(caused)) == (1, 0)


def test_a_checkout_within_the_stock_is_not_oversold() -> None:
    stock = {"A": 2}
    checkouts = [Checkout("A", 3.0, 3.1)]
    till = [TillSale("A", 2.0, 2.1)]
    oversold, inside, caused = attribute(stock, checkouts, till, {0: 9.0}, window_s=15.0)
    assert (oversold, inside, caused) == ({}, 0, [])
