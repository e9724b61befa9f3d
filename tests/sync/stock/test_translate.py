"""Stock arithmetic as a table: the sellable rule, then levels planned under the demo mapping.

The demo maps SHOPLINE 7001 to Leeds DC + York Store with a buffer of 2, and 7002 to Bristol DC
with none; SKUs match case-insensitively, TENT-2P-GRN is overridden to ACME-TENT-2P-GREEN and
GIFT-CARD-* is never synced.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from stokline.config import load_mapping
from stokline.config.models import LocationStock, StockShownOn
from stokline.sync.stock.translate import (
    StockRecord,
    UnimportedLine,
    VariantRef,
    plan_levels,
    sellable,
    shown_on,
)

ROOT = Path(__file__).resolve().parents[3]
MAPPING = load_mapping(ROOT / "mappings/demo.yaml")
D = Decimal


@pytest.mark.parametrize(
    ("figures", "buffer", "unimported", "expected"),
    [
        pytest.param([(10, 0, 0)], 0, 0, 10, id="on hand only"),
        pytest.param([(10, 2, 3)], 0, 0, 5, id="quarantined and allocated"),
        pytest.param([(10, 0, 0), (5, 1, 0)], 2, 0, 12, id="two locations summed, buffer once"),
        pytest.param([(3, 0, 0)], 5, 0, 0, id="buffer above stock: never below zero"),
        pytest.param([(10, 0, 0)], 2, 4, 4, id="paid orders not yet imported"),
        pytest.param([(10, 0, 12), (5, 0, 0)], 0, 0, 3, id="over-allocated location pulls down"),
        pytest.param([(D("7.9"), 0, 0)], 0, 0, 7, id="fractional stock rounds down"),
        pytest.param([(D("2.5"), 0, 0), (D("2.5"), 0, 0)], 0, 0, 5, id="fractions summed first"),
        pytest.param([(D("0.4"), 0, 0)], 0, 0, 0, id="less than one unit"),
        pytest.param([(10, D("0.5"), 0)], 0, 0, 9, id="fractional quarantine"),
        pytest.param([], 0, 0, 0, id="no stock records"),
        pytest.param([(0, 0, 2)], 0, 0, 0, id="allocated with nothing on hand"),
    ],
)
def test_sellable(figures: list, buffer: int, unimported: int, expected: int) -> None:
    assert sellable(figures, buffer=buffer, unimported=unimported) == expected


ITEMS = {"ACME-TENT-2P-GREEN": "i-tent", "CRAG-SOCKS-75-M": "i-socks", "JETBOIL-MINI-01": "i-stove"}
LOCATIONS = {"Leeds DC": "L", "York Store": "Y", "Bristol DC": "B"}
VARIANTS = [
    VariantRef("v-tent", "inv-tent", "TENT-2P-GRN"),  # by override
    VariantRef("v-socks", "inv-socks", "crag-socks-75-m"),  # by case-insensitive match
    VariantRef("v-gift", "inv-gift", "GIFT-CARD-25"),  # never synced
    VariantRef("v-hammock", "inv-hammock", "ACME-HAMMOCK-XL-RED"),  # unknown to Stokly
]
RECORDS = [
    StockRecord("i-tent", "L", D(10), D(1)),
    StockRecord("i-tent", "L", D(4)),  # a second bin at Leeds
    StockRecord("i-tent", "Y", D(6)),
    StockRecord("i-tent", "B", D(5)),
    StockRecord("i-socks", "L", D("3.5")),
    StockRecord("i-socks", "B", D(2)),
]
ALLOCATIONS = [("i-tent", "Y", D(2)), ("i-socks", None, D(1)), ("i-tent", "X", D(9))]
UNIMPORTED = [
    UnimportedLine("acme-tent-2p-green", 1, "7002"),
    UnimportedLine("TENT-2P-GRN", 2, None),  # no location: the default (7001)
    UnimportedLine("CRAG-SOCKS-75-M", 1, "9999"),  # unmapped location: the default too
    UnimportedLine("GIFT-CARD-25", 5, "7001"),
    UnimportedLine("ACME-HAMMOCK-XL-RED", 5, "7001"),
]


def levels(plan) -> dict[tuple[str, str], int]:
    return {level.key: level.available for level in plan.levels}


def test_levels_under_the_demo_mapping() -> None:
    plan = plan_levels(MAPPING, VARIANTS, ITEMS, LOCATIONS, RECORDS, ALLOCATIONS, UNIMPORTED)
    assert levels(plan) == {
        # Leeds 14 − 1 quarantined, York 6 − 2 allocated, − buffer 2, − 2 waiting for import
        ("inv-tent", "7001"): 13,
        # Bristol 5 − 1 waiting for import
        ("inv-tent", "7002"): 4,
        # Leeds 3.5, − 1 allocated without a location, − buffer 2, − 1 waiting: −0.5 → 0
        ("inv-socks", "7001"): 0,
        # Bristol 2, − 1 allocated without a location (counted everywhere)
        ("inv-socks", "7002"): 1,
    }
    [tent] = [lv for lv in plan.levels if lv.key == ("inv-tent", "7001")]
    assert (tent.on_hand, tent.quarantined, tent.allocated) == (D(20), D(1), D(2))
    assert (tent.buffer, tent.unimported, tent.stokly_sku) == (2, 2, "ACME-TENT-2P-GREEN")
    assert [v.sku for v in plan.excluded] == ["GIFT-CARD-25"]
    [(variant, problem)] = plan.unmatched
    assert variant.sku == "ACME-HAMMOCK-XL-RED" and problem.code == "unmapped_sku"


def test_a_location_with_stock_sync_off_gets_no_level() -> None:
    bristol = MAPPING.locations[1].model_copy(update={"stock": LocationStock(sync=False)})
    mapping = MAPPING.model_copy(update={"locations": (MAPPING.locations[0], bristol)})
    plan = plan_levels(mapping, VARIANTS, ITEMS, LOCATIONS, RECORDS, ALLOCATIONS)
    assert {key[1] for key in levels(plan)} == {"7001"}


def test_a_location_stokly_does_not_know_gets_no_partial_sum() -> None:
    partial = {"Leeds DC": "L", "Bristol DC": "B"}  # York Store missing
    plan = plan_levels(MAPPING, VARIANTS, ITEMS, partial, RECORDS, ALLOCATIONS)
    assert {key[1] for key in levels(plan)} == {"7002"}


def test_only_limits_the_plan_to_those_stokly_skus_and_raises_nothing_else() -> None:
    plan = plan_levels(
        MAPPING, VARIANTS, ITEMS, LOCATIONS, RECORDS, ALLOCATIONS, only={"acme-tent-2p-green"}
    )
    assert set(levels(plan)) == {("inv-tent", "7001"), ("inv-tent", "7002")}
    assert plan.unmatched == []


def test_an_item_without_stock_records_is_zero_not_unknown() -> None:
    plan = plan_levels(MAPPING, VARIANTS[:3], {**ITEMS}, LOCATIONS, [], [])
    assert set(levels(plan).values()) == {0} and plan.unmatched == []


def test_a_variant_pushed_to_before_and_unmatched_now_is_planned_at_zero() -> None:
    gone = VariantRef("v-gone", "inv-gone", "ACME-TENT-2P-ORANGE")  # no Stokly item any more
    never = VariantRef("v-new", "inv-new", "ACME-HAMMOCK-XL-RED")  # never sold from Stokly
    locations = {"Leeds DC": "L1", "York Store": "L2", "Bristol DC": "L3"}
    plan = plan_levels(MAPPING, [gone, never], {}, locations, [], [], matched_before={"inv-gone"})
    assert [(lv.variant_id, lv.location_id, lv.available) for lv in plan.levels] == [
        ("v-gone", "7001", 0),
        ("v-gone", "7002", 0),
    ]
    assert plan.zeroed == {"v-gone"}
    assert [v.variant_id for v, _ in plan.unmatched] == ["v-gone", "v-new"]

    archived = plan_levels(
        MAPPING, [gone], {}, locations, [], [], matched_before={"inv-gone"}, removal_archives=True
    )
    assert archived.levels == [] and archived.zeroed == set()


def test_one_stokly_item_is_shown_on_one_variant_the_rest_at_zero() -> None:
    variants = [
        VariantRef("12", "inv-12", "crag-socks-75-m"),  # matches only under case-insensitivity
        VariantRef("30", "inv-30", "CRAG-SOCKS-75-M"),  # the Stokly SKU exactly, same SKU on
        VariantRef("21", "inv-21", "CRAG-SOCKS-75-M"),  # two products: the lower id shows it
        VariantRef("9", "inv-9", "TENT-2P-GRN"),  # override to the tent
        VariantRef("40", "inv-40", "acme-tent-2p-green"),  # no exact match: the first by id
    ]
    plan = plan_levels(MAPPING, variants, ITEMS, LOCATIONS, RECORDS, [], [])
    shown = {(lv.variant_id, lv.location_id): lv.available for lv in plan.levels}
    assert {k: [v.variant_id for v in vs] for k, vs in plan.shared.items()} == {
        "CRAG-SOCKS-75-M": ["21", "12", "30"],
        "ACME-TENT-2P-GREEN": ["9", "40"],
    }
    assert shown[("21", "7002")] == 2 and shown[("9", "7002")] == 5
    assert all(shown[(v, loc)] == 0 for v in ("12", "30", "40") for loc in ("7001", "7002"))


def choosing(*choices: StockShownOn):
    """The demo mapping with ``skus.show_stock_on`` set to ``choices``."""
    skus = MAPPING.skus.model_copy(update={"show_stock_on": choices})
    return MAPPING.model_copy(update={"skus": skus})


SHARED = [
    VariantRef("12", "inv-12", "crag-socks-75-m"),
    VariantRef("30", "inv-30", "CRAG-SOCKS-75-M"),
    VariantRef("21", "inv-21", "CRAG-SOCKS-75-M"),
    VariantRef("9", "inv-9", "TENT-2P-GRN"),
    VariantRef("40", "inv-40", "acme-tent-2p-green"),
]


def test_the_mapping_chooses_which_variant_shows_a_shared_item() -> None:
    mapping = choosing(
        # By SKU, in another case than SHOPLINE's: it is still the variant the rule matches.
        StockShownOn(stokly_sku="acme-tent-2p-green", shopline_sku="ACME-TENT-2P-GREEN"),
        # By id: the same SKU is on two products, and the mapping wants the higher id.
        StockShownOn(stokly_sku="CRAG-SOCKS-75-M", shopline_variant_id="30"),
    )
    plan = plan_levels(mapping, SHARED, ITEMS, LOCATIONS, RECORDS, [], [])
    assert {k: [v.variant_id for v in vs] for k, vs in plan.shared.items()} == {
        "CRAG-SOCKS-75-M": ["30", "12", "21"],
        "ACME-TENT-2P-GREEN": ["40", "9"],
    }
    shown = {(lv.variant_id, lv.location_id): lv.available for lv in plan.levels}
    assert shown[("30", "7002")] == 2 and shown[("40", "7002")] == 5
    assert shown[("40", "7001")] == 17  # Leeds 14 − 1 quarantined, York 6, − buffer 2
    assert all(shown[(v, loc)] == 0 for v in ("12", "21", "9") for loc in ("7001", "7002"))
    why = shown_on("ACME-TENT-2P-GREEN", SHARED[3:], mapping.skus)
    assert why.shown.variant_id == "40" and why.why == "as skus.show_stock_on chooses"


def test_a_choice_that_is_none_of_the_shared_variants_falls_back_to_the_exact_sku() -> None:
    # A product removed from SHOPLINE, or a variant id mistyped: only the run can tell.
    mapping = choosing(StockShownOn(stokly_sku="CRAG-SOCKS-75-M", shopline_variant_id="99"))
    plan = plan_levels(mapping, SHARED[:3], ITEMS, LOCATIONS, RECORDS, [], [])
    assert [v.variant_id for v in plan.shared["CRAG-SOCKS-75-M"]] == ["21", "12", "30"]
    fallback = shown_on("CRAG-SOCKS-75-M", SHARED[:3], mapping.skus)
    assert fallback.why == (
        "skus.show_stock_on names variant id 99 for this item, which is none of these variants,"
        " so the default applies: the lowest id of the 2 variants whose SKU is the Stokly SKU"
        " exactly"
    )
    assert "correct the item's entry under skus.show_stock_on" in fallback.advice
    # Without a choice the default says how to make one.
    default = shown_on("ACME-TENT-2P-GREEN", SHARED[3:], MAPPING.skus)
    assert default.shown.variant_id == "9"
    assert default.why == "the lowest id, as no variant's SKU is the Stokly SKU exactly"
    assert default.advice == (
        "to show it on another variant, name that variant under skus.show_stock_on"
    )
