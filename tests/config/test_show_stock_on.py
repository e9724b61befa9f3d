"""`skus.show_stock_on`: which SHOPLINE variant shows a Stokly item's stock when several share it.

The single broken entries are in the corpus (``tests/corpus/mappings/*show-stock-on*``); here a
valid setting loads as the stock sync reads it, and several mistakes come out in one pass.
"""

from __future__ import annotations

from pathlib import Path

from stokline.config import check_text
from stokline.config.models import StockShownOn

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")
NEVER_SYNC = '  never_sync: ["GIFT-CARD-*"]\n'


def choosing(*entries: str) -> str:
    assert MINIMAL.count(NEVER_SYNC) == 1
    block = "  show_stock_on:\n" + "".join(f"    - {e}\n" for e in entries)
    return MINIMAL.replace(NEVER_SYNC, block + NEVER_SYNC)


def test_a_variant_chosen_by_sku_or_by_id_loads_as_written():
    result = check_text(
        choosing(
            "{stokly_sku: ACME-TENT-2P, shopline_sku: tent-2p-grn}",  # the override, any case
            '{stokly_sku: JETBOIL-01, shopline_variant_id: "50012345"}',
            "{stokly_sku: CRAG-SOCKS, shopline_sku: crag-socks}",  # matches under the rule
        ),
        "acme.yaml",
    )
    assert result.problems == []
    assert result.mapping is not None
    assert result.mapping.skus.show_stock_on == (
        StockShownOn(stokly_sku="ACME-TENT-2P", shopline_sku="tent-2p-grn"),
        StockShownOn(stokly_sku="JETBOIL-01", shopline_variant_id="50012345"),
        StockShownOn(stokly_sku="CRAG-SOCKS", shopline_sku="crag-socks"),
    )


def test_without_the_setting_there_is_no_choice():
    result = check_text(MINIMAL, "acme.yaml")
    assert result.mapping is not None and result.mapping.skus.show_stock_on == ()


def test_every_mistake_in_the_setting_is_reported_in_one_pass():
    result = check_text(
        choosing(
            "{stokly_sku: ACME-TENT-2P, shopline_sku: TENT-2P-GRN}",
            "{stokly_sku: Acme-Tent-2P, shopline_sku: ACME-TENT-2P}",  # the same item again
            "{stokly_sku: JETBOIL-01, shopline_variant_id: 50012345}",  # not a string
            "{stokly_sku: CRAG-SOCKS, shopline_sku: GIFT-CARD-10}",  # never synced
            "{stokly_sku: PEG-01, shopline_sku: STOVE-MINI}",  # overridden to another item
        ),
        "acme.yaml",
    )
    assert [(p.line, p.pointer) for p in result.problems] == [
        (33, "/skus/show_stock_on/1/stokly_sku"),
        (34, "/skus/show_stock_on/2/shopline_variant_id"),
        (35, "/skus/show_stock_on/3/shopline_sku"),
        (36, "/skus/show_stock_on/4/shopline_sku"),
    ]
    first, number, never, elsewhere = (p.format() for p in result.problems)
    assert "Stokly SKU 'Acme-Tent-2P' already has a variant chosen (line 32)" in first
    assert 'expected a string, got a number (50012345); quote it: "50012345"' in number
    assert "'GIFT-CARD-10' is never synced (skus.never_sync)" in never
    assert "'STOVE-MINI' is overridden to 'JETBOIL-01' (line 30)" in elsewhere
