"""One Stokly item, one sellable figure: however many SHOPLINE variants resolve to it, and
whichever one the mapping's ``skus.show_stock_on`` names (or a variant that is not there).

Each example draws two to six variants of the demo's tent spelt every way that resolves to it
(its own SKU in any case, with stray spaces, the override ``TENT-2P-GRN``; two products may carry
the same SKU), the tent's stock, quarantine and allocations at every Stokly location, and a
choice: none, one of the variants by id or by SKU, or a variant id that is none of them. Then,
at every synced SHOPLINE location of the plan:

* the levels of the variants add up to the item's sellable figure, summed here from the drawn
  records (never the plan's working), and at most one of them is not 0;
* the same variant shows it everywhere: the chosen one when the choice is among them, else the
  one whose SKU is the Stokly SKU exactly (the lowest id if several), else the lowest id;
* what the ``sku_collision`` exception will say names ``skus.show_stock_on`` only when the
  mapping has a choice for the item, and says the default applies only when that choice is
  none of the variants.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from stokline.config import load_mapping
from stokline.config.models import StockShownOn
from stokline.sync.stock.translate import StockRecord, VariantRef, plan_levels, shown_on
from tests.properties.strategies import examples

ROOT = Path(__file__).resolve().parents[2]
DEMO = load_mapping(ROOT / "mappings/demo.yaml")
TENT = "ACME-TENT-2P-GREEN"
ITEMS = {TENT: "i-tent"}
LOCATIONS = {"Leeds DC": "L", "York Store": "Y", "Bristol DC": "B"}
FEEDS = {loc.shopline_location: loc for loc in DEMO.locations if loc.stock.sync}
SPELLINGS = [TENT, TENT.lower(), "Acme-Tent-2P-Green", f" {TENT}", "TENT-2P-GRN", "tent-2p-grn"]


@st.composite
def shared_tents(draw: st.DrawFn) -> list[VariantRef]:
    ids = draw(st.lists(st.integers(1, 10**6), min_size=2, max_size=6, unique=True))
    return [VariantRef(str(i), f"inv-{i}", draw(st.sampled_from(SPELLINGS))) for i in ids]


def choices(variants: list[VariantRef]) -> st.SearchStrategy[StockShownOn | None]:
    item = st.sampled_from([TENT, TENT.lower()])
    return st.one_of(
        st.none(),
        st.builds(
            StockShownOn,
            stokly_sku=item,
            shopline_variant_id=st.sampled_from([v.variant_id for v in variants] + ["0"]),
        ),
        st.builds(StockShownOn, stokly_sku=item, shopline_sku=st.sampled_from(SPELLINGS)),
    )


quantities = st.integers(0, 40).map(Decimal) | st.decimals(0, 40, places=1)


@settings(max_examples=examples(1))
@given(variants=shared_tents(), data=st.data())
def test_one_stokly_item_shows_one_sellable_figure(
    variants: list[VariantRef], data: st.DataObject
) -> None:
    choice = data.draw(choices(variants), label="choice")
    skus = DEMO.skus.model_copy(update={"show_stock_on": (choice,) if choice else ()})
    mapping = DEMO.model_copy(update={"skus": skus})
    records, allocated = [], {}
    for location in LOCATIONS.values():
        on_hand, quarantined = data.draw(quantities), data.draw(quantities)
        records.append(StockRecord("i-tent", location, on_hand, min(on_hand, quarantined)))
        allocated[location] = data.draw(quantities)
    allocations = [("i-tent", loc, quantity) for loc, quantity in allocated.items()]

    plan = plan_levels(mapping, variants, ITEMS, LOCATIONS, records, allocations)

    assert plan.unmatched == [] and plan.excluded == []
    shown_by: set[str] = set()
    for shopline_location, location in FEEDS.items():
        ids = {LOCATIONS[name] for name in location.stokly_locations}
        total = sum(
            (
                r.on_hand - r.quarantined - allocated[r.location_id]
                for r in records
                if r.location_id in ids
            ),
            Decimal(0),
        )
        figure = max(0, math.floor(total - location.stock.buffer))
        here = {
            lv.variant_id: lv.available for lv in plan.levels if lv.location_id == shopline_location
        }
        assert set(here) == {v.variant_id for v in variants}
        assert sum(here.values()) == figure
        assert sum(1 for n in here.values() if n) == (1 if figure > 0 else 0)
        if figure > 0:
            shown_by |= {vid for vid, n in here.items() if n}
    [first, *_] = plan.shared[TENT]
    assert shown_by <= {first.variant_id}

    by_id = sorted(variants, key=lambda v: int(v.variant_id))
    exact = [v for v in by_id if v.sku == TENT]
    named: list[VariantRef] = []
    if choice is not None and choice.shopline_variant_id is not None:
        named = [v for v in by_id if v.variant_id == choice.shopline_variant_id]
    elif choice is not None:
        named = [v for v in by_id if v.sku == choice.shopline_sku] or [
            v
            for v in by_id
            if v.sku.strip().casefold() == (choice.shopline_sku or "").strip().casefold()
        ]
    expected = (named or exact or by_id)[0]
    assert first == expected
    event("chosen" if named else "default, the choice missing" if choice else "default")

    why = shown_on(TENT, variants, mapping.skus)
    assert why.shown == first
    assert ("skus.show_stock_on" in why.why) == (choice is not None)
    assert ("the default applies" in why.why) == (choice is not None and not named)
