"""The SHOPLINE order's money, priced by the pure pricing module, adds up to the penny."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stokline.sandbox.shopline.pricing import PricingError, goods_discounts, price_order
from stokline.sandbox.shopline.shapes import ORDER_MIX, draw_order, pricing_spec

TENT = {"price": "189.00", "_vat_title": "VAT 20%"}
SOCKS = {"price": "14.00", "_vat_title": "VAT 20%"}
GAS = {"price": "6.00", "_vat_title": "VAT 5%"}
MAP = {"price": "11.00", "_vat_title": "VAT 0%"}


def d(value: str) -> Decimal:
    return Decimal(value)


def line_total(priced: dict) -> Decimal:
    return sum((d(li["price"]) * li["quantity"] for li in priced["line_items"]), Decimal(0))


def allocations(line: dict) -> Decimal:
    return sum((d(a["amount"]) for a in line.get("discount_allocations") or []), Decimal(0))


def assert_adds_up(priced: dict, *, placed: bool = False) -> None:
    """Every identity SHOPLINE's money fields keep, to the penny.

    ``placed``: an order the sandbox holds, whose payments and refunds moved
    ``total_outstanding`` and ``current_total_price`` away from ``total_price``.
    """
    ship = priced["shipping_lines"][0]
    charged = d(ship["discounted_price"])
    total = d(priced["total_price"])
    tax = d(priced["total_tax"])
    if priced["taxes_included"]:
        assert total == line_total(priced) - goods_discounts(priced) + charged
        assert total == line_total(priced) - d(priced["total_discounts"]) + d(ship["price"])
    else:
        assert total == line_total(priced) - goods_discounts(priced) + charged + tax
    line_tax = sum(
        (d(t["price"]) for li in priced["line_items"] for t in li["tax_lines"]), Decimal(0)
    )
    ship_tax = sum((d(t["price"]) for t in ship["tax_lines"]), Decimal(0))
    assert tax == line_tax + ship_tax
    assert tax == sum((d(t["price"]) for t in priced["tax_lines"]), Decimal(0))
    allocated = sum((allocations(li) for li in priced["line_items"]), Decimal(0))
    assert d(priced["subtotal_price"]) + goods_discounts(priced) == line_total(priced)
    assert goods_discounts(priced) >= allocated
    if not placed:
        assert priced["current_total_price"] == priced["total_price"]
        assert priced["total_outstanding"] == priced["total_price"]
    assert d(priced["total_price_set"]["shop_money"]["amount"]) == total
    assert total >= 0
    for index in (
        a["discount_application_index"]
        for li in priced["line_items"]
        for a in li.get("discount_allocations") or []
    ):
        assert priced["discount_applications"][index]["target_type"] == "line_item"


def test_full_price_uk_order_contains_vat_and_adds_up() -> None:
    priced = price_order(
        {"line_items": [{"quantity": 1}, {"quantity": 2}], "shipping_price": "3.95"},
        [TENT, SOCKS],
    )
    assert priced["total_price"] == "220.95"  # 189 + 28 + 3.95
    assert priced["subtotal_price"] == "217.00"
    assert priced["total_discounts"] == "0.00"
    assert [li["tax_lines"][0]["price"] for li in priced["line_items"]] == ["31.50", "4.67"]
    assert priced["shipping_lines"][0]["tax_lines"][0]["price"] == "0.66"
    assert priced["total_tax"] == "36.83"
    assert priced["discount_codes"] == [] and priced["discount_applications"] == []
    assert_adds_up(priced)


def test_line_discount_is_allocated_to_its_line_and_vat_is_on_the_discounted_amount() -> None:
    priced = price_order(
        {
            "line_items": [{"quantity": 1, "discount": "5.00"}, {"quantity": 1}],
            "shipping_price": "3.95",
        },
        [SOCKS, MAP],
    )
    socks, paper = priced["line_items"]
    assert socks["discount_allocations"][0]["amount"] == "5.00"
    assert priced["discount_applications"][0]["type"] == "manual"
    assert paper["discount_allocations"] == []
    assert socks["tax_lines"][0]["price"] == "1.50"  # VAT in 9.00, not in 14.00
    assert priced["total_discounts"] == "5.00"
    assert priced["total_price"] == "23.95"
    assert_adds_up(priced)


def test_percentage_code_is_allocated_across_lines_and_listed_as_a_code() -> None:
    priced = price_order(
        {
            "line_items": [{"quantity": 1}, {"quantity": 3}],
            "discount_code": {"code": "SPRING10", "type": "percentage", "value": "10"},
            "shipping_price": "3.95",
        },
        [TENT, GAS],
    )
    tent, gas = priced["line_items"]
    assert tent["discount_allocations"][0]["amount"] == "18.90"
    assert gas["discount_allocations"][0]["amount"] == "1.80"
    assert priced["discount_codes"] == [
        {"code": "SPRING10", "amount": "20.70", "type": "percentage"}
    ]
    assert gas["tax_lines"][0] == {**gas["tax_lines"][0], "title": "VAT 5%", "price": "0.77"}
    assert {t["title"] for t in priced["tax_lines"]} == {"VAT 20%", "VAT 5%"}
    assert_adds_up(priced)


def test_fixed_code_allocations_sum_to_the_code_exactly() -> None:
    priced = price_order(
        {
            "line_items": [{"quantity": 1}, {"quantity": 1}, {"quantity": 1}],
            "discount_code": {"code": "TENOFF", "type": "fixed_amount", "value": "10.00"},
        },
        [SOCKS, SOCKS, MAP],
    )
    shares = [allocations(li) for li in priced["line_items"]]
    assert sum(shares) == Decimal("10.00")
    assert priced["discount_codes"][0]["amount"] == "10.00"
    assert_adds_up(priced)


def test_order_level_discount_is_in_totals_but_on_no_line() -> None:
    priced = price_order(
        {"line_items": [{"quantity": 1}], "order_discount": "7.50", "shipping_price": "3.95"},
        [TENT],
    )
    assert priced["line_items"][0]["discount_allocations"] == []
    assert priced["total_discounts"] == "7.50"
    assert priced["discount_applications"][0]["target_selection"] == "all"
    assert priced["total_price"] == "185.45"
    assert priced["line_items"][0]["tax_lines"][0]["price"] == "31.50"
    assert_adds_up(priced)


def test_free_shipping_keeps_the_list_price_and_charges_zero() -> None:
    priced = price_order(
        {
            "line_items": [{"quantity": 1}],
            "shipping_price": "3.95",
            "shipping_discounted_price": "0.00",
            "shipping_code": "FREEDEL",
        },
        [SOCKS],
    )
    ship = priced["shipping_lines"][0]
    assert (ship["price"], ship["discounted_price"]) == ("3.95", "0.00")
    assert ship["tax_lines"][0]["price"] == "0.00"
    assert ship["discount_allocations"][0]["amount"] == "3.95"
    assert priced["discount_codes"] == [{"code": "FREEDEL", "amount": "3.95", "type": "shipping"}]
    assert priced["total_discounts"] == "3.95"
    assert priced["total_price"] == "14.00"
    assert_adds_up(priced)


def test_taxes_excluded_adds_tax_on_top_of_the_discounted_amount() -> None:
    priced = price_order(
        {
            "taxes_included": False,
            "line_items": [{"quantity": 2, "discount": "2.00"}, {"quantity": 1}],
            "shipping_price": "5.00",
        },
        [{"price": "10.00", "_vat_title": "VAT 20%"}, GAS],
    )
    assert [li["tax_lines"][0]["price"] for li in priced["line_items"]] == ["3.60", "0.30"]
    assert priced["total_tax"] == "4.90"  # 3.60 + 0.30 + 1.00 shipping
    assert priced["total_price"] == "33.90"  # 18 + 6 + 5 + 4.90
    assert priced["taxes_included"] is False
    assert_adds_up(priced)


def test_line_tax_line_and_price_overrides_are_honoured() -> None:
    priced = price_order(
        {
            "line_items": [
                {"quantity": 1, "price": "50.00", "tax_line": {"title": "VAT 5%", "rate": "0.05"}}
            ]
        },
        [TENT],
    )
    line = priced["line_items"][0]
    assert line["price"] == "50.00"
    assert line["tax_lines"][0]["title"] == "VAT 5%"
    assert line["tax_lines"][0]["price"] == "2.38"


@pytest.mark.parametrize(
    "spec",
    [
        {"line_items": []},
        {"line_items": [{"quantity": 0}]},
        {"line_items": [{"quantity": 1, "discount": "20.00"}]},
        {"line_items": [{"quantity": 1}], "order_discount": "15.00"},
        {
            "line_items": [{"quantity": 1}],
            "shipping_price": "3.95",
            "shipping_discounted_price": "5",
        },
        {"line_items": [{"quantity": 1}], "discount_code": {"type": "bogus", "value": "1"}},
    ],
)
def test_specs_that_cannot_be_priced_are_refused(spec: dict) -> None:
    variants = [SOCKS] * len(spec["line_items"])
    with pytest.raises(PricingError):
        price_order(spec, variants)


CATALOGUE = {
    "TENT": TENT,
    "SOCKS-M": SOCKS,
    "MUG": {"price": "9.00", "_vat_title": "VAT 20%"},
    "GAS-230": GAS,
    "MAP-OL7": MAP,
    "PACK": {"price": "85.99", "_vat_title": "VAT 20%"},
    "ODD": {"price": "0.99", "_vat_title": "VAT 20%"},
}
TITLES = {sku: v["_vat_title"] for sku, v in CATALOGUE.items()}


@given(st.randoms(use_true_random=False), st.booleans())
def test_every_drawn_shape_adds_up_to_the_penny(rng: random.Random, excluded: bool) -> None:
    mix = {**ORDER_MIX, "taxes_excluded": 0.5 if excluded else 0.0}
    body = draw_order(rng, list(CATALOGUE), tax_titles=TITLES, mix=mix)
    variants = [CATALOGUE[line["sku"]] for line in body["lines"]]
    try:
        priced = price_order(pricing_spec(body), variants)
    except PricingError as exc:  # only a discount larger than a cheap basket may be refused
        assert exc.field in ("order_discount", "line_items.discount")
        return
    assert_adds_up(priced)


@given(st.randoms(use_true_random=False))
def test_heavily_discounted_shapes_add_up(rng: random.Random) -> None:
    mix = {k: 1.0 for k in ("line_discount", "discount_code", "free_shipping", "multi_rate")}
    body = draw_order(rng, ["TENT", "PACK", "GAS-230", "MAP-OL7"], tax_titles=TITLES, mix=mix)
    priced = price_order(pricing_spec(body), [CATALOGUE[x["sku"]] for x in body["lines"]])
    assert_adds_up(priced)
    assert d(priced["total_discounts"]) > 0


def test_drawn_mix_contains_every_shape() -> None:
    rng = random.Random(3)
    seen: set[str] = set()
    for _ in range(400):
        seen.update(draw_order(rng, list(CATALOGUE), tax_titles=TITLES)["shapes"])
    expected = {k for k, v in ORDER_MIX.items() if v > 0}
    assert expected <= seen
