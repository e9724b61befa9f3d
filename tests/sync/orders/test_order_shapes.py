"""Order shapes beyond a full-price order: discounts, free delivery, refunds, omitted keys.

Each test is a regression test of a defect of issue 15, built as the SHOPLINE order dict the
sync hands to `translate_order` (a model dump: keys SHOPLINE omitted are None).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stokline.connectors.shopline.models import Order
from stokline.sync.orders import translate as translation
from stokline.sync.orders.translate import order_fingerprint, translate_order
from tests.sync.orders.test_translate import CATALOGUE, MAPPING, line, order

STOVE = "ACME-STOVE-1B"
PACK = "Trail-Pack-35L"


def total_of(payload: dict[str, Any]) -> Decimal:
    goods = sum((i["displayLineTotal"] for i in payload["items"]), Decimal(0))
    return goods + payload.get("shipping", {}).get("cost", Decimal(0))


def as_synced(shopline: dict[str, Any]) -> dict[str, Any]:
    """The order as the sync hands it over: read into the model, dumped (money as Decimal)."""
    return Order.model_validate(shopline).model_dump()


def paid(amount: str) -> list[dict[str, Any]]:
    return [{"gateway": "shopline_payments", "pay_amount": amount, "pay_status": "paid"}]


# -- defect 2: a free-delivery discount ------------------------------------------------------


def test_a_shipping_line_discounted_to_zero_costs_nothing_in_stokly() -> None:
    shopline = order(
        line_items=[line(STOVE, 1, "149.00", "24.83")],
        shipping_lines=[
            {
                "title": "Royal Mail Tracked 48",
                "code": "royal-mail-48",
                "price": "3.95",
                "discounted_price": "0.00",
                "tax_lines": [],
            }
        ],
        total_discounts="3.95",
        payment_details=paid("149.00"),
    )
    draft = translate_order(MAPPING, as_synced(shopline), CATALOGUE)
    assert draft.payload["shipping"]["cost"] == Decimal("0.00")
    assert draft.total == Decimal("149.00") == total_of(draft.payload)


def test_a_discounted_shipping_price_is_the_one_charged() -> None:
    shopline = order(
        shipping_lines=[
            {"title": "Royal Mail Tracked 48", "price": "3.99", "discounted_price": "1.99"}
        ]
    )
    draft = translate_order(MAPPING, as_synced(shopline), CATALOGUE)
    assert draft.payload["shipping"]["cost"] == Decimal("1.99")


# -- defect 6: a line without requires_shipping ----------------------------------------------


@pytest.mark.parametrize("omitted", ["absent", "null"])
def test_a_line_that_does_not_say_whether_it_ships_is_delivered(omitted: str) -> None:
    bare = line(STOVE, 2, "24.00", "8.00")
    if omitted == "absent":
        del bare["requires_shipping"]
    else:
        bare["requires_shipping"] = None
    shopline = order(line_items=[bare], shipping_lines=[])
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert [i["fulfilmentType"] for i in draft.payload["items"]] == ["delivery"]


def test_a_line_omitting_requires_shipping_is_delivered_through_the_model() -> None:
    bare = line(STOVE, 2, "24.00", "8.00")
    del bare["requires_shipping"]
    draft = translate_order(MAPPING, as_synced(order(line_items=[bare])), CATALOGUE)
    assert [i["fulfilmentType"] for i in draft.payload["items"]] == ["delivery"]


def test_a_line_that_says_it_does_not_ship_is_collected() -> None:
    shopline = order(line_items=[line(STOVE, 1, "24.00", "4.00", requires_shipping=False)])
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert [i["fulfilmentType"] for i in draft.payload["items"]] == ["collection"]


# -- defect 3: an order-level discount no line carries --------------------------------------


def two_lines() -> list[dict[str, Any]]:
    return [line(STOVE, 1, "60.00", "10.00"), line(PACK, 1, "40.00", "6.67", id="418")]


NO_SHIPPING = {"title": "Royal Mail Tracked 48", "price": "0.00", "tax_lines": []}


def test_an_unallocated_order_discount_is_spread_over_the_lines() -> None:
    shopline = order(
        line_items=two_lines(),
        shipping_lines=[NO_SHIPPING],
        total_discounts="10.00",
        payment_details=paid("90.00"),
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    items = draft.payload["items"]
    assert [i["displayLineDiscount"] for i in items] == [Decimal("6.00"), Decimal("4.00")]
    assert [i["displayLineTotal"] for i in items] == [Decimal("54.00"), Decimal("36.00")]
    assert draft.total == Decimal("90.00") == total_of(draft.payload)
    assert draft.total == sum((p["amount"] for p in draft.payload["payments"]), Decimal(0))


def test_an_order_discount_is_spread_to_the_penny() -> None:
    lines = [line(STOVE, 1, "10.00", "1.67"), line(PACK, 1, "10.00", "1.67", id="418")]
    lines.append(line("ACME-TENT-2P-GREEN", 1, "10.00", "1.67", id="419"))
    shopline = order(line_items=lines, shipping_lines=[NO_SHIPPING], total_discounts="10.00")
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    discounts = [i["displayLineDiscount"] for i in draft.payload["items"]]
    assert discounts == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    assert draft.total == Decimal("20.00")


def test_line_and_shipping_discounts_are_not_spread_again() -> None:
    lines = two_lines()
    lines[0]["discount_allocations"] = [{"amount": "5.00"}]
    shopline = order(
        line_items=lines,
        shipping_lines=[
            {"title": "Royal Mail Tracked 48", "price": "3.95", "discounted_price": "0.00"}
        ],
        total_discounts="18.95",  # 5.00 on a line, 3.95 of shipping, 10.00 on the order
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    items = draft.payload["items"]
    # The 10.00 follows the lines' own totals (55.00 and 40.00).
    assert [i["displayLineDiscount"] for i in items] == [Decimal("10.79"), Decimal("4.21")]
    assert draft.total == Decimal("100.00") - Decimal("15.00")


@pytest.mark.parametrize(
    ("application", "expected"),
    [
        ({"value_type": "fixed_amount", "value": "10.00"}, Decimal("90.00")),
        ({"value_type": "percentage", "value": "10.0"}, Decimal("90.00")),
        ({"value_type": "percentage", "value": "15", "target_type": "shipping_line"}, None),
    ],
    ids=["fixed", "percentage", "shipping-only"],
)
def test_a_discount_application_without_allocations_is_spread(
    application: dict[str, Any], expected: Decimal | None
) -> None:
    applied = {
        "type": "discount_code",
        "code": "WINTER10",
        "target_type": "line_item",
        "target_selection": "all",
        "allocation_method": "across",
        **application,
    }
    shopline = order(
        line_items=two_lines(),
        shipping_lines=[NO_SHIPPING],
        total_discounts=None,
        discount_applications=[applied],
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert draft.total == (expected if expected is not None else Decimal("100.00"))


# -- defect 1: lines refunded before import --------------------------------------------------


def refund(*items: tuple[str, int, str]) -> dict[str, Any]:
    return {
        "id": "r-1",
        "refund_line_items": [
            {"line_item_id": li, "quantity": qty, "restock_type": restock}
            for li, qty, restock in items
        ],
        "order_adjustments": [],
        "transactions": [],
    }


def test_a_line_refunded_in_full_before_import_is_left_out_and_listed() -> None:
    shopline = order(
        financial_status="partially_refunded",
        line_items=two_lines(),
        refunds=[refund(("418", 1, "cancel"))],
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert [i["referenceId"] for i in draft.payload["items"]] == ["item-stove"]
    assert draft.refunded == (f"{PACK} x1",)
    assert "refunded" in draft.summary()["excluded"]
    assert draft.importable


def test_units_refunded_before_import_are_not_shipped() -> None:
    shopline = order(
        financial_status="partially_refunded",
        line_items=[line(STOVE, 3, "24.00", "12.00", discount_allocations=[{"amount": "6.00"}])],
        refunds=[refund(("417", 1, "no_restock")), refund(("417", 1, "cancel"))],
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    [stove] = draft.payload["items"]
    assert stove["quantity"] == 1
    assert stove["displayLinePrice"] == Decimal("24.00")
    assert stove["displayLineDiscount"] == Decimal("2.00")
    assert stove["displayLineTax"] == Decimal("4.00")
    assert stove["displayLineTotal"] == Decimal("22.00")
    assert draft.refunded == (f"{STOVE} x2",)


def test_without_refunds_the_fulfillable_quantity_is_what_ships() -> None:
    lines = two_lines()
    lines[0]["quantity"] = 2
    lines[0]["price"] = "30.00"
    lines[0]["fulfillable_quantity"] = 1
    lines[1]["fulfillable_quantity"] = 0
    shopline = order(financial_status="partially_refunded", line_items=lines)
    assert "refunds" not in shopline
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert [(i["referenceId"], i["quantity"]) for i in draft.payload["items"]] == [
        ("item-stove", 1)
    ]
    assert draft.payload["items"][0]["displayLineTotal"] == Decimal("30.00")
    assert draft.refunded == (f"{STOVE} x1", f"{PACK} x1")


def test_an_order_whose_lines_were_all_refunded_has_nothing_to_import() -> None:
    shopline = order(
        financial_status="partially_refunded",
        refunds=[refund(("417", 2, "cancel"))],
    )
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert not draft.importable
    assert draft.refunded == (f"{STOVE} x2",)


def test_refunds_and_fulfillable_quantity_both_count() -> None:
    shopline = order(
        line_items=[line(STOVE, 3, "24.00", "12.00", fulfillable_quantity=3)],
        refunds=[refund(("417", 1, "no_restock"))],  # SHOPLINE left fulfillable as it was
    )
    assert translation.shippable_quantities(shopline) == {"417": 2}
    shopline["line_items"][0]["fulfillable_quantity"] = 1
    assert translation.shippable_quantities(shopline) == {"417": 1}


def test_the_fingerprint_sees_a_refund_of_lines() -> None:
    before = order_fingerprint(order(refunds=[]))
    after = order_fingerprint(order(refunds=[refund(("417", 1, "cancel"))]))
    assert after["lines"] == before["lines"]
    assert after["refunds"] != before["refunds"]
    assert order_fingerprint(order())["refunds"] == before["refunds"]


# -- defect 5: fields SHOPLINE omits ---------------------------------------------------------


def test_a_template_reading_a_field_shopline_omitted_renders_it_as_none() -> None:
    shopline = order()
    for omitted in ("buyer_note", "order_source"):
        del shopline[omitted]
    draft = translate_order(MAPPING, as_synced(shopline), CATALOGUE)
    assert draft.payload["notes"] == ""
    assert draft.payload["tags"] == ["shopline", "web"]


# -- after the import: what Stokly must not ship --------------------------------------------


def test_refunded_units_still_to_ship_from_the_refunds() -> None:
    shopline = order(
        line_items=[line(STOVE, 3, "24.00", "12.00"), line(PACK, 1, "40.00", "6.67", id="418")],
        refunds=[refund(("417", 2, "no_restock"))],
    )
    same = {STOVE: STOVE, PACK: PACK}.get
    # Nothing dispatched: the two refunded stoves must not ship.
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 3, 0), (PACK, 1, 0)], same) == {
        STOVE: 2
    }
    # Two stoves went out already: one refunded unit may still be in the warehouse.
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 3, 2)], same) == {STOVE: 1}
    # All dispatched: the refund is a return.
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 3, 3)], same) == {}
    # Imported after the refund (one stove on the sale order): nothing to stop.
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 1, 0)], same) == {}


def test_refunded_units_still_to_ship_from_the_fulfillable_quantity() -> None:
    shopline = order(line_items=[line(STOVE, 3, "24.00", "12.00", fulfillable_quantity=1)])
    same = {STOVE: STOVE}.get
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 3, 0)], same) == {STOVE: 2}
    # Two shipped by Stokly (SHOPLINE may not know yet): SHOPLINE expects one, one waits.
    assert translation.refunded_still_to_ship(shopline, [(STOVE, 3, 2)], same) == {}


def test_phone_spellings_cover_how_people_write_a_number() -> None:
    from stokline.sync.orders.identity import normalise_phone, phone_spellings

    spellings = phone_spellings("+447700900777")
    assert {"+447700900777", "+44 7700 900777", "07700 900777", "07700900777"} <= set(spellings)
    assert {normalise_phone(s, None, "GB") for s in spellings} == {"+447700900777"}
