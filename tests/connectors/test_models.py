"""Models: tolerant of extra fields, strict about ours; money is Decimal, never float."""

from __future__ import annotations

import json
from decimal import Decimal

import pydantic
import pytest

from stokline.connectors._http import encode_json, parse_retry_after
from stokline.connectors.shopline.models import Customer, Location, Order, PaymentDetail, Variant
from stokline.connectors.stokly.models import InventoryRecord, Item


def test_unknown_fields_are_kept_and_known_ones_typed() -> None:
    order = Order.model_validate(
        {
            "id": "21050224312121887324667162",
            "current_total_price": "8.00",
            "brand_new_field": {"x": 1},
            "line_items": [{"id": "417", "quantity": 2, "price": "4.00", "sku": "TENT"}],
        }
    )
    assert order.model_extra == {"brand_new_field": {"x": 1}}
    assert order.current_total_price == Decimal("8.00")
    assert order.line_items[0].price == Decimal("4.00")


def test_ids_must_be_strings() -> None:
    with pytest.raises(pydantic.ValidationError, match="valid string"):
        Order.model_validate({"id": 21050224312121887324667162})


@pytest.mark.parametrize("value", [8.0, True])
def test_money_refuses_floats_and_booleans(value: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="money"):
        Order.model_validate({"id": "1", "total_tax": value})


def test_stokly_numbers_decode_to_exact_decimals() -> None:
    data = json.loads(
        '{"itemId": "i", "locationId": "l", "onHand": 0.1, "quarantined": 0.2}', parse_float=Decimal
    )
    record = InventoryRecord.model_validate(data)
    assert record.onHand + record.quarantined == Decimal("0.3")


def test_location_is_default_string_quirk() -> None:
    assert Location.model_validate({"id": "1", "is_default": "true"}).default is True
    assert Location.model_validate({"id": "1", "is_default": "false"}).default is False


def test_item_active_flag() -> None:
    assert Item.model_validate({"itemId": "i", "sku": "S", "status": 1}).active is False


@pytest.mark.parametrize(
    ("body", "decimals", "expected"),
    [
        ({"p": Decimal("8.00")}, "string", b'{"p":"8.00"}'),
        ({"p": Decimal("49.99")}, "number", b'{"p":49.99}'),
        ({"p": Decimal("3.00")}, "number", b'{"p":3}'),
        ({"p": Decimal("-0.10")}, "number", b'{"p":-0.1}'),
    ],
)
def test_request_money_encoding(body: dict[str, Decimal], decimals: str, expected: bytes) -> None:
    assert encode_json(body, decimals=decimals) == expected  # type: ignore[arg-type]


def test_money_that_a_json_number_cannot_carry_exactly_is_refused() -> None:
    with pytest.raises(ValueError, match="exact JSON number"):
        encode_json({"p": Decimal("0.12345678901234567890")}, decimals="number")


def test_secrets_cannot_be_serialised_into_bodies() -> None:
    with pytest.raises(TypeError, match="secret"):
        encode_json({"token": pydantic.SecretStr("x")}, decimals="string")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("nan", None),
        ("Thu, 01 Jan 2027 00:00:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1798761600.0  # 2027-01-01T00:00:00Z
    assert parse_retry_after(header, now) == expected


# -- fields whose JSON type SHOPLINE's sources give differently: both forms, one internal type --

ADDRESS = {"address1": "2 Mill Lane", "city": "York", "zip": "YO1 7HH", "country_code": "GB"}


@pytest.mark.parametrize(
    ("addresses", "cities"),
    [
        (ADDRESS, ["York"]),  # an order's customer: one object
        ([ADDRESS, {**ADDRESS, "city": "Leeds"}], ["York", "Leeds"]),  # the customers API
        (None, []),
        ({}, []),
        ([], []),
    ],
)
def test_customer_addresses_an_object_or_a_list_are_a_list(
    addresses: object, cities: list[str]
) -> None:
    order = Order.model_validate({"id": "1", "customer": {"id": "c", "addresses": addresses}})
    assert order.customer is not None
    assert [a.city for a in order.customer.addresses] == cities
    assert Customer.model_validate({"id": "c", "addresses": addresses}).addresses == (
        order.customer.addresses
    )


def test_customer_addresses_of_another_shape_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="addresses"):
        Customer.model_validate({"id": "c", "addresses": "2 Mill Lane, York"})


def test_payment_amounts_a_number_or_a_numeric_string_are_exact_decimals() -> None:
    body = (
        '{"id": "1", "payment_details": ['
        '{"pay_amount": 0.1, "settle_pay_amount": "0.10"},'
        '{"pay_amount": "0.2", "settle_pay_amount": 0.2},'
        '{"pay_amount": 304.95, "settle_pay_amount": 8}]}'
    )
    order = Order.model_validate(json.loads(body, parse_float=Decimal))
    first, second, third = order.payment_details
    assert first.pay_amount + second.pay_amount == Decimal("0.3")  # no binary float error
    assert first.settle_pay_amount + second.settle_pay_amount == Decimal("0.3")
    assert (third.pay_amount, third.settle_pay_amount) == (Decimal("304.95"), Decimal(8))
    amounts = [d.pay_amount for d in order.payment_details] + [
        d.settle_pay_amount for d in order.payment_details
    ]
    assert all(type(a) is Decimal for a in amounts)


@pytest.mark.parametrize("value", ["eight", 8.5, True])
def test_payment_amounts_that_are_not_exact_numbers_are_refused(value: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="settle_pay_amount"):
        PaymentDetail.model_validate({"settle_pay_amount": value})


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        ("0.23", Decimal("0.23")),
        (Decimal("0.23"), Decimal("0.23")),  # a JSON number, decoded exactly
        (370, Decimal(370)),
        ("370", Decimal(370)),
        ("", None),
        (None, None),
    ],
)
def test_variant_weight_a_string_or_a_number_is_a_decimal(
    weight: object, expected: Decimal | None
) -> None:
    variant = Variant.model_validate({"id": "1", "weight": weight, "weight_unit": "kg"})
    assert variant.weight == expected and variant.weight_unit == "kg"
    assert expected is None or type(variant.weight) is Decimal


def test_variant_weight_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="weight"):
        Variant.model_validate({"id": "1", "weight": "heavy"})
