"""translate_shipment and find_fulfilment: Stokly shipments in, SHOPLINE fulfillments out, demo.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stokline.config import load_mapping
from stokline.mapping.translate import Untranslatable
from stokline.sync.fulfilment.translate import (
    MAX_TRACKING_ENTRIES,
    find_fulfilment,
    shipping_method_for,
    tracking_info_list,
    tracking_key,
    translate_shipment,
)

ROOT = Path(__file__).resolve().parents[3]
MAPPING = load_mapping(ROOT / "mappings/demo.yaml")
RM_URL = "https://www.royalmail.com/track-your-item#/tracking-results/{}"


def order(*lines: dict[str, Any], shipping: str = "Royal Mail Tracked 48", **extra: Any) -> dict:
    return {
        "id": "21050224312121887324667162",
        "name": "#1001",
        "line_items": list(lines),
        "shipping_lines": [{"title": shipping}],
        **extra,
    }


def line(line_id: str, sku: str, quantity: int, fulfillable: int | None = None) -> dict:
    return {
        "id": line_id,
        "sku": sku,
        "quantity": quantity,
        "fulfillable_quantity": quantity if fulfillable is None else fulfillable,
    }


def shipment(*items: tuple[str, int], tracking: tuple[str, ...] = (), **extra: Any) -> dict:
    return {
        "shipmentId": "ship-1",
        "saleOrderId": "so-1",
        "carrier": "royal-mail",
        "trackingNumbers": list(tracking),
        "status": "dispatched",
        "items": [
            {"lineId": f"sl-{n}", "itemSku": sku, "quantity": qty}
            for n, (sku, qty) in enumerate(items)
        ],
        **extra,
    }


def test_a_shipment_maps_to_line_items_by_sku_under_the_mappings_rules() -> None:
    # TENT-2P-GRN is overridden to ACME-TENT-2P-GREEN; matching ignores case.
    shop = order(line("11", "TENT-2P-GRN", 1), line("12", "acme-stove-1b", 2), line("13", "X", 1))
    request = translate_shipment(
        MAPPING,
        shipment(("ACME-TENT-2P-GREEN", 1), ("ACME-STOVE-1B", 2), tracking=("RM1GB",)),
        shop,
    )
    assert request.line_items == [{"id": "11", "quantity": 1}, {"id": "12", "quantity": 2}]
    assert request.tracking == (
        {
            "tracking_number": "RM1GB",
            "tracking_company": "Royal Mail",
            "tracking_url": RM_URL.format("RM1GB"),
        },
    )
    assert request.notes == ()
    assert request.summary()["lines"] == "TENT-2P-GRN x1, acme-stove-1b x2"


def test_a_partial_shipment_takes_only_what_was_shipped() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 3), line("12", "TRAIL-PACK-35L", 1))
    request = translate_shipment(MAPPING, shipment(("ACME-STOVE-1B", 1)), shop)
    assert request.line_items == [{"id": "11", "quantity": 1}]
    assert request.tracking == ()


def test_one_sku_on_two_lines_fills_them_in_order_never_beyond_what_is_left() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 2, fulfillable=1), line("12", "ACME-STOVE-1B", 2))
    request = translate_shipment(MAPPING, shipment(("ACME-STOVE-1B", 3)), shop)
    assert request.line_items == [{"id": "11", "quantity": 1}, {"id": "12", "quantity": 2}]
    assert request.notes == ()


def test_quantities_never_exceed_what_shopline_still_has_to_fulfil() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 3, fulfillable=1))
    request = translate_shipment(MAPPING, shipment(("ACME-STOVE-1B", 3)), shop)
    assert request.line_items == [{"id": "11", "quantity": 1}]
    assert request.notes == ("ACME-STOVE-1B: 3 shipped, SHOPLINE had 1 left to fulfil",)


def test_nothing_left_to_fulfil_is_an_empty_request_not_an_error() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 2, fulfillable=0))
    request = translate_shipment(MAPPING, shipment(("ACME-STOVE-1B", 2)), shop)
    assert request.empty and request.line_items == []


def test_a_shipped_sku_the_order_does_not_have_names_every_such_sku() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 1))
    with pytest.raises(Untranslatable) as caught:
        translate_shipment(
            MAPPING, shipment(("ACME-STOVE-1B", 1), ("NOPE-1", 2), ("NOPE-2", 1)), shop
        )
    assert caught.value.code == "unmapped_sku"
    assert "NOPE-1 x2, NOPE-2 x1" in caught.value.message
    assert "#1001" in caught.value.message


def test_a_shipment_line_without_a_sku_cannot_be_matched() -> None:
    bad = shipment(("ACME-STOVE-1B", 1))
    bad["items"][0]["itemSku"] = None
    with pytest.raises(Untranslatable, match="carries no SKU"):
        translate_shipment(MAPPING, bad, order(line("11", "ACME-STOVE-1B", 1)))


def test_never_sync_lines_of_the_order_are_left_alone() -> None:
    shop = order(line("10", "GIFT-CARD-50", 1), line("11", "ACME-STOVE-1B", 1))
    request = translate_shipment(MAPPING, shipment(("ACME-STOVE-1B", 1)), shop)
    assert request.line_items == [{"id": "11", "quantity": 1}]


def test_several_tracking_numbers_each_get_their_own_entry_and_url() -> None:
    entries = tracking_info_list(
        MAPPING,
        shipment(("ACME-STOVE-1B", 1), tracking=("RM1GB", "RM2GB", "RM1GB", " ")),
        order(line("11", "ACME-STOVE-1B", 1)),
    )
    assert [e["tracking_number"] for e in entries] == ["RM1GB", "RM2GB"]  # repeats and blanks out
    assert [e["tracking_url"] for e in entries] == [RM_URL.format("RM1GB"), RM_URL.format("RM2GB")]


def test_the_carrier_that_took_the_parcel_names_it_not_the_one_the_buyer_chose() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 1), shipping="Royal Mail Tracked 48")
    dpd = shipment(("ACME-STOVE-1B", 1), tracking=("15501",), carrier="dpd")
    [entry] = tracking_info_list(MAPPING, dpd, shop)
    assert entry == {
        "tracking_number": "15501",
        "tracking_company": "DPD",
        "tracking_url": "https://track.dpd.co.uk/parcels/15501",
    }
    assert shipping_method_for(MAPPING, shop, None).stokly_option == "RM48"


def test_a_carrier_the_mapping_does_not_know_keeps_stoklys_name_and_url() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 1))
    odd = shipment(
        ("ACME-STOVE-1B", 1),
        tracking=("EVRI1",),
        carrier="evri",
        trackingUrl="https://evri.example/track/EVRI1",
    )
    assert tracking_info_list(MAPPING, odd, shop) == [
        {
            "tracking_number": "EVRI1",
            "tracking_company": "evri",
            "tracking_url": "https://evri.example/track/EVRI1",
        }
    ]


def test_a_method_without_a_url_template_keeps_stoklys_url_and_names_the_company() -> None:
    shop = order(line("11", "ACME-STOVE-1B", 1), shipping="Click & Collect Bristol")
    collect = shipment(("ACME-STOVE-1B", 1), tracking=("C1",), carrier="collection")
    assert tracking_info_list(MAPPING, collect, shop) == [
        {"tracking_number": "C1", "tracking_company": "Collection"}
    ]


def test_more_tracking_numbers_than_shopline_keeps_are_cut_and_noted() -> None:
    numbers = tuple(f"RM{n}GB" for n in range(12))
    request = translate_shipment(
        MAPPING,
        shipment(("ACME-STOVE-1B", 1), tracking=numbers),
        order(line("11", "ACME-STOVE-1B", 1)),
    )
    assert len(request.tracking) == MAX_TRACKING_ENTRIES
    assert request.notes == ("12 tracking numbers; SHOPLINE keeps the first 10",)


def test_a_tracking_url_template_that_fails_is_a_template_exception(tmp_path: Path) -> None:
    text = (
        (ROOT / "mappings/demo.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "tracking-results/{{ tracking_number }}", "tracking-results/{{ order.no_such_field }}"
        )
    )
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    broken = load_mapping(path)
    with pytest.raises(Untranslatable) as caught:
        translate_shipment(
            broken,
            shipment(("ACME-STOVE-1B", 1), tracking=("RM1GB",)),
            order(line("11", "ACME-STOVE-1B", 1)),
        )
    assert caught.value.code == "template_failed"


def test_tracking_keys_compare_what_the_buyer_sees() -> None:
    ours = [{"tracking_number": "RM1GB", "tracking_company": "Royal Mail"}]
    theirs = [{"tracking_number": "RM1GB", "tracking_company": "Royal Mail", "tracking_url": None}]
    assert tracking_key(ours) == tracking_key(theirs)
    assert tracking_key(ours) != tracking_key([{"tracking_number": "RM2GB"}])


# -- recognising a fulfillment that already stands for the shipment ------------------------------


def fulfillment(fid: str, *lines: tuple[str, int], tracking: tuple[str, ...] = (), **extra: Any):
    return {
        "id": fid,
        "status": "success",
        "tracking_info_list": [{"tracking_number": t} for t in tracking],
        "line_items": [{"id": lid, "fulfillment_quantity": qty} for lid, qty in lines],
        **extra,
    }


SHOP = order(line("11", "ACME-STOVE-1B", 2), line("12", "TENT-2P-GRN", 1))


def test_a_fulfillment_with_the_shipments_tracking_numbers_is_its_own() -> None:
    mine = shipment(("ACME-STOVE-1B", 1), tracking=("RM2GB", "RM1GB"))
    other = fulfillment("f1", ("11", 1), tracking=("RM9GB",))
    same = fulfillment("f2", ("11", 1), tracking=("RM1GB", "RM2GB"))
    found = find_fulfilment(MAPPING, mine, SHOP, [other, same], by="tracking")
    assert found is same


def test_without_tracking_numbers_only_the_same_quantities_per_sku_match() -> None:
    mine = shipment(("ACME-STOVE-1B", 1), ("ACME-TENT-2P-GREEN", 1))
    assert (
        find_fulfilment(MAPPING, mine, SHOP, [fulfillment("f1", ("11", 1))], by="tracking") is None
    )
    partial = fulfillment("f1", ("11", 1))
    more = fulfillment("f2", ("11", 2), ("12", 1))
    exact = fulfillment("f3", ("12", 1), ("11", 1))
    assert find_fulfilment(MAPPING, mine, SHOP, [partial, more, exact], by="lines") is exact


def test_taken_and_cancelled_fulfillments_are_never_matched() -> None:
    mine = shipment(("ACME-STOVE-1B", 1), tracking=("RM1GB",))
    cancelled = fulfillment("f1", ("11", 1), tracking=("RM1GB",), status="cancelled")
    linked = fulfillment("f2", ("11", 1), tracking=("RM1GB",))
    free = [cancelled, linked]
    assert find_fulfilment(MAPPING, mine, SHOP, free, {"f2"}, by="tracking") is None
    assert find_fulfilment(MAPPING, mine, SHOP, free, {"f2"}, by="lines") is None
    assert find_fulfilment(MAPPING, mine, SHOP, free, by="lines") is linked
