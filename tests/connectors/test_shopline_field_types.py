"""Four SHOPLINE fields through the client, in each form SHOPLINE's sources give them.

An order's ``customer.addresses`` (an object, or a list), ``pay_amount``/``settle_pay_amount`` (a
number, or a numeric string) and a variant's ``weight`` (a string, or a number) come out of the
client as one type each: a list of addresses, exact Decimals. First from scripted answers at the
transport seam, then a whole order and variant through the SHOPLINE sandbox and back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import ShoplineClient
from stokline.connectors.shopline.models import Customer, Order, Variant
from stokline.sandbox.shopline.app import create_app as create_shopline

from .conftest import API
from .fakes import FakeClock, StrictTransport

ORDER_ID = "21050224312121887324667162"
JSON = {"content-type": "application/json"}  # the bodies below are written out, numbers as sent

# The same order twice: as SHOPLINE's official SDK reads an order (one address object, amounts
# as numbers), and as other answers have it (a list of addresses, amounts as strings).
AS_THE_ORDER_MODEL = f"""{{"orders": [{{"id": "{ORDER_ID}", "name": "#1001",
  "customer": {{"id": "42", "addresses": {{"address1": "2 Mill Lane", "city": "York"}}}},
  "payment_details": [{{"gateway": "paypal", "pay_amount": 304.95,
                        "settle_currency": "GBP", "settle_pay_amount": 304.95}}]}}]}}"""
AS_OTHER_ANSWERS = f"""{{"orders": [{{"id": "{ORDER_ID}", "name": "#1001",
  "customer": {{"id": "42", "addresses": [{{"address1": "2 Mill Lane", "city": "York"}}]}},
  "payment_details": [{{"gateway": "paypal", "pay_amount": "304.95",
                        "settle_currency": "GBP", "settle_pay_amount": "304.95"}}]}}]}}"""


@pytest.mark.parametrize("text", [AS_THE_ORDER_MODEL, AS_OTHER_ANSWERS])
def test_an_order_reads_the_same_in_either_form(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock, text: str
) -> None:
    transport.expect("GET", f"{API}/orders.json", params={"ids": ORDER_ID}, text=text, headers=JSON)
    order = clock.run(shopline.get_order(ORDER_ID))
    assert order is not None and order.customer is not None
    assert [(a.address1, a.city) for a in order.customer.addresses] == [("2 Mill Lane", "York")]
    [detail] = order.payment_details
    assert (detail.pay_amount, detail.settle_pay_amount) == (Decimal("304.95"), Decimal("304.95"))
    assert type(detail.pay_amount) is Decimal and type(detail.settle_pay_amount) is Decimal


@pytest.mark.parametrize("weight", ['"0.23"', "0.23"])
def test_a_variant_weight_reads_the_same_as_a_string_or_a_number(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock, weight: str
) -> None:
    text = f'{{"variant": {{"id": "7", "sku": "TENT", "weight": {weight}, "weight_unit": "kg"}}}}'
    transport.expect("GET", f"{API}/products/variants/7.json", text=text, headers=JSON)
    variant = clock.run(shopline.get_variant("7"))
    assert variant.weight == Decimal("0.23") and type(variant.weight) is Decimal


# -- a whole order and variant, through the sandbox and back -----------------------------------

TOKEN = "sandbox-shopline-token-abcdef"


@pytest.fixture
def sandbox() -> Iterator[httpx.AsyncBaseTransport]:
    app = create_shopline(access_token=TOKEN, app_secret="app-secret", skus=30, rate_per_s=None)
    state = app.state.shopline.state
    for _, level in state.store.scan("inventory_level"):  # checkout never refuses for stock
        state.set_level({**level, "available": 1000})
    yield httpx.ASGITransport(app=app)
    app.state.shopline.close()


def client(transport: httpx.AsyncBaseTransport) -> ShoplineClient:
    return ShoplineClient("http://127.0.0.1:8801", SecretStr(TOKEN), transport=transport)


async def _control(transport: httpx.AsyncBaseTransport, path: str, body: dict) -> dict:
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        response = await http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_whole_order_round_trips_through_the_client(
    sandbox: httpx.AsyncBaseTransport,
) -> None:
    address = {"address1": "2 Mill Lane", "city": "York", "zip": "YO1 7HH", "country_code": "GB"}

    async def scenario() -> tuple[Customer, dict, Order, Order]:
        async with client(sandbox) as shopline:
            customer = await shopline.create_customer(
                {"email": "ines@example.com", "addresses": [address]}
            )
            placed = await _control(
                sandbox,
                "/_sandbox/orders",
                {
                    "lines": [{"sku": "ACME-TENT-2P-ORANGE", "quantity": 2}],
                    "customer": {"email": "ines@example.com"},
                    "gateway": "paypal",
                },
            )
            order = await shopline.get_order(placed["order"]["id"])
            assert order is not None
            again = Order.model_validate(order.model_dump())
        return customer, placed["order"], order, again

    customer, placed, order, again = asyncio.run(scenario())
    assert order.customer is not None and order.customer.id == customer.id
    [read] = order.customer.addresses
    assert (read.address1, read.city, read.zip, read.country_code) == tuple(address.values())
    [detail] = order.payment_details
    total = Decimal(placed["total_price"])
    assert detail.gateway == "paypal" and detail.settle_currency == "GBP"
    assert (detail.pay_amount, detail.settle_pay_amount) == (total, total)
    assert again == order  # the internal form reads back as itself


def test_a_variant_weight_written_and_read_back_through_the_client(
    sandbox: httpx.AsyncBaseTransport,
) -> None:
    async def scenario() -> tuple[Variant, Variant, Variant]:
        async with client(sandbox) as shopline:
            products = [p async for p in shopline.iter_products()]
            [seeded] = [v for p in products for v in p.variants if v.sku == "STOVE-MINI"]
            written = await shopline.update_variant(
                seeded.id, {"weight": Decimal("0.5"), "weight_unit": "kg"}
            )
            read = await shopline.get_variant(seeded.id)
        return seeded, written, read

    seeded, written, read = asyncio.run(scenario())
    assert seeded.weight is not None and seeded.weight > 0 and seeded.weight_unit == "g"
    assert (written.weight, written.weight_unit) == (Decimal("0.5"), "kg")
    assert read == written and Variant.model_validate(read.model_dump()) == read
