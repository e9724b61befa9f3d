"""translate_order: SHOPLINE orders in, Stokly v2 sale order payloads out, under demo.yaml."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stokline.config import load_mapping
from stokline.sync.orders.translate import (
    OrderUntranslatable,
    StoklyCatalogue,
    order_fingerprint,
    translate_order,
)

ROOT = Path(__file__).resolve().parents[3]
MAPPING = load_mapping(ROOT / "mappings/demo.yaml")
CHANNEL = MAPPING.connections.stokly.channel_id
ITEMS = {
    "ACME-STOVE-1B": "item-stove",
    "ACME-TENT-2P-GREEN": "item-tent",
    "Trail-Pack-35L": "item-pack",
}
LOCATIONS = {"Leeds DC": "loc-leeds", "York Store": "loc-york", "Bristol DC": "loc-bristol"}
CATALOGUE = StoklyCatalogue.build(MAPPING, ITEMS.items(), LOCATIONS.items())
ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address1": "1 Park Row",
    "address2": None,
    "city": "Leeds",
    "province": "West Yorkshire",
    "country": "United Kingdom",
    "country_code": "GB",
    "zip": "LS1 5AB",
}


def line(sku: str, quantity: int, price: str, tax: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": extra.pop("id", "417"),
        "sku": sku,
        "quantity": quantity,
        "price": price,
        "location_id": "7001",
        "requires_shipping": True,
        "tax_lines": [{"title": "VAT 20%", "rate": "0.2", "price": tax, "type": "product_tax"}],
        **extra,
    }


def order(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "21050224312121887324667162",
        "name": "#1001",
        "currency": "GBP",
        "created_at": "2026-11-27T09:00:00+00:00",
        "financial_status": "paid",
        "status": "open",
        "taxes_included": True,
        "order_source": "web",
        "buyer_note": "",
        "locations": [{"location_id": "7001", "type": "productLocation"}],
        "line_items": [line("ACME-STOVE-1B", 2, "24.00", "8.00")],
        "shipping_lines": [
            {
                "title": "Royal Mail Tracked 48",
                "code": "royal-mail-48",
                "price": "3.99",
                "tax_lines": [{"title": "VAT 20%", "rate": "0.2", "price": "0.67"}],
            }
        ],
        "shipping_address": ADDRESS,
        "payment_details": [
            {"gateway": "shopline_payments", "pay_amount": "51.99", "pay_status": "paid"}
        ],
        "payment_gateway_names": ["shopline_payments"],
    }
    base.update(changes)
    return base


def item(reference: str, quantity: int, unit: str, unit_tax: str, **over: str) -> dict[str, Any]:
    line_price = Decimal(unit) * quantity
    expected = {
        "type": "item",
        "referenceId": reference,
        "quantity": quantity,
        "displayPrice": Decimal(unit),
        "displayTax": Decimal(unit_tax),
        "displayDiscount": Decimal("0.00"),
        "displayLinePrice": line_price,
        "displayLineTax": Decimal(unit_tax) * quantity,
        "displayLineDiscount": Decimal("0.00"),
        "displayLineTotal": line_price,
        "fulfilmentType": "delivery",
    }
    expected.update({k: Decimal(v) for k, v in over.items()})
    return expected


BASE_PAYLOAD = {
    "stage": "order",
    "createdAt": "2026-11-27T09:00:00+00:00",
    "currency": "GBP",
    "sourceType": "other",
    "sourceId": CHANNEL,
    "sourceReferenceId": "21050224312121887324667162",
    "customerReference": "SL1001",
    "tags": ["shopline", "web"],
    "notes": "",
    "locationId": "loc-leeds",
    "items": [item("item-stove", 2, "24.00", "4.00")],
    "payments": [{"method": 4, "amount": Decimal("51.99")}],
    "shipping": {
        "name": {"forename": "Ada", "surname": "Lovelace"},
        "address": {
            "line1": "1 Park Row",
            "line2": "",
            "city": "Leeds",
            "region": "West Yorkshire",
            "country": "GB",
            "postcode": "LS1 5AB",
        },
        "option": "RM48",
        "cost": Decimal("3.99"),
        "tax": Decimal("0.67"),
    },
}


def expect(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(BASE_PAYLOAD)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    return payload


TABLE = [
    ("a paid order with VAT-inclusive prices", order(), expect()),
    (
        "an override and a case-only SKU difference",
        order(
            line_items=[
                line("tent-2p-grn", 1, "199.00", "33.17", id="417"),
                line("TRAIL-PACK-35L", 1, "65.00", "10.83", id="418"),
            ],
            payment_details=[{"gateway": "paypal", "pay_amount": "267.99", "pay_status": "paid"}],
        ),
        expect(
            items=[
                item("item-tent", 1, "199.00", "33.17"),
                item("item-pack", 1, "65.00", "10.83"),
            ],
            payments=[{"method": 5, "amount": Decimal("267.99")}],
        ),
    ),
    (
        "a gift card line is left out, the payment stays what was paid",
        order(
            line_items=[
                line("ACME-STOVE-1B", 2, "24.00", "8.00"),
                line("GIFT-CARD-25", 1, "25.00", "0.00", id="418", tax_lines=[]),
            ],
            payment_details=[
                {"gateway": "shopline_payments", "pay_amount": "76.99", "pay_status": "paid"}
            ],
        ),
        expect(payments=[{"method": 4, "amount": Decimal("76.99")}]),
    ),
    (
        "click & collect goes to Bristol with the collection option",
        order(
            locations=[{"location_id": "7002", "type": "pickupLocation"}],
            line_items=[line("ACME-STOVE-1B", 2, "24.00", "8.00", location_id="7002")],
            shipping_lines=[{"title": "Click & Collect Bristol", "price": "0.00", "tax_lines": []}],
        ),
        expect(
            locationId="loc-bristol",
            shipping={"option": "COLLECT-BRS", "cost": Decimal("0.00"), "tax": Decimal("0.00")},
            customerReference="SL1001",
        ),
    ),
    (
        "prices without tax get the tax added; discounts are kept per line",
        order(
            taxes_included=False,
            line_items=[
                line(
                    "ACME-STOVE-1B",
                    2,
                    "20.00",
                    "8.00",
                    discount_allocations=[{"amount": "4.00"}],
                )
            ],
        ),
        expect(
            items=[
                item(
                    "item-stove",
                    2,
                    "24.00",
                    "4.00",
                    displayDiscount="2.00",
                    displayLineDiscount="4.00",
                    displayLineTotal="44.00",
                )
            ],
            shipping={"cost": Decimal("4.66")},
        ),
    ),
    (
        "no payment details: the gateway and the amount paid",
        order(
            payment_details=[],
            payment_gateway_names=["klarna"],
            total_price="51.99",
            total_outstanding="0.00",
        ),
        expect(payments=[{"method": 6, "amount": Decimal("51.99")}]),
    ),
]


@pytest.mark.parametrize(("name", "shopline", "payload"), TABLE, ids=[t[0] for t in TABLE])
def test_translate_order(name: str, shopline: dict[str, Any], payload: dict[str, Any]) -> None:
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert draft.payload == payload
    assert draft.importable


def test_money_stays_decimal_and_the_customer_is_added_last() -> None:
    draft = translate_order(MAPPING, order(), CATALOGUE)
    amounts = [v for line in draft.payload["items"] for k, v in line.items() if k != "quantity"]
    assert all(isinstance(v, Decimal | str) for v in amounts)
    assert "customer" not in draft.payload
    assert draft.payload_for("cust-1")["customer"] == {"customerId": "cust-1"}
    assert draft.total == Decimal("51.99")
    assert draft.summary()["items"] == "ACME-STOVE-1B x2"


def test_gift_card_only_order_has_nothing_to_import() -> None:
    shopline = order(line_items=[line("GIFT-CARD-25", 1, "25.00", "0.00", tax_lines=[])])
    draft = translate_order(MAPPING, shopline, CATALOGUE)
    assert not draft.importable
    assert draft.excluded == ("GIFT-CARD-25 x1",)


def test_every_problem_of_an_order_is_named_once() -> None:
    shopline = order(
        line_items=[
            line("NOPE-404", 1, "10.00", "1.67"),
            line("ACME-STOVE-1B", 1, "24.00", "4.00", id="418", location_id="9999"),
        ],
        payment_details=[{"gateway": "bitcoin", "pay_amount": "37.99", "pay_status": "paid"}],
    )
    shopline["line_items"][1]["tax_lines"][0]["rate"] = "0.21"
    with pytest.raises(OrderUntranslatable) as info:
        translate_order(MAPPING, shopline, CATALOGUE)
    codes = [p.code for p in info.value.problems]
    assert codes == ["unmapped_sku", "unknown_location", "tax_mismatch", "unmapped_gateway"]
    assert info.value.code == "unmapped_sku"
    for fragment in ("NOPE-404", "9999", "0.21", "bitcoin"):
        assert fragment in info.value.message


def test_a_fulfil_from_location_stokly_lacks_is_an_unknown_location() -> None:
    catalogue = StoklyCatalogue.build(MAPPING, ITEMS.items(), [("York Store", "loc-york")])
    with pytest.raises(OrderUntranslatable) as info:
        translate_order(MAPPING, order(), catalogue)
    assert info.value.code == "unknown_location"
    assert "Leeds DC" in info.value.message


def test_fingerprint_sees_edits_not_representation() -> None:
    base = order_fingerprint(order())
    assert order_fingerprint(order(note=None)) == base
    priced = order(line_items=[line("ACME-STOVE-1B", 2, Decimal("24.00"), "8.00")])
    assert order_fingerprint(priced) == base
    more = order_fingerprint(order(line_items=[line("ACME-STOVE-1B", 3, "24.00", "12.00")]))
    assert more["lines"] != base["lines"] and more["delivery"] == base["delivery"]
    moved = order_fingerprint(order(shipping_address={**ADDRESS, "address1": "2 Park Row"}))
    assert moved["delivery"] != base["delivery"] and moved["lines"] == base["lines"]
