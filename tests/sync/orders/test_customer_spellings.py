"""A Stokly customer is found whatever the spelling of their email or phone, on either side.

Stokly's own records are written by people and other channels: ``Sam.Keyed@Example.com``,
``07700 900777``. A SHOPLINE buyer ``sam.keyed@example.com`` / ``+447700900777`` is that customer
and must be linked to them, never created again. Customers are put into the Stokly sandbox's state
as another channel would have left them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from stokline.sync.orders.identity import normalise_email, normalise_phone
from tests.sync.conftest import World

SOCKS = "CRAG-SOCKS-75-M"


def stokly_customer(world: World, **fields: Any) -> dict[str, Any]:
    customer_id = str(uuid.uuid4())
    doc = {
        "customerId": customer_id,
        "type": 1,
        "name": {"forename": "Sam", "surname": "Keyed"},
        "fullName": "Sam Keyed",
        "email": None,
        "phone": None,
        "billingAddress": None,
        "shippingAddresses": [],
        "tags": [],
        **fields,
    }
    world.stokly_state.customers.add_many([(customer_id, doc)])
    return doc


def sams(world: World) -> list[str]:
    """Stokly customers who are Sam, by either key, whatever the spelling."""
    return [
        c["customerId"]
        for c in world.stokly_state.customers
        if normalise_email(c.get("email")) == "sam.keyed@example.com"
        or normalise_phone(c.get("phone"), None, "GB") == "+447700900777"
    ]


def linked_customer(world: World, order: dict[str, Any]) -> str:
    [sale] = world.sale_orders(order["id"])
    return sale["customerId"]


@pytest.mark.parametrize(
    ("stored", "buyer"),
    [
        ({"email": "Sam.Keyed@Example.com"}, {"email": "sam.keyed@example.com"}),
        ({"email": "sam.keyed@example.com"}, {"email": " Sam.Keyed@EXAMPLE.com"}),
        ({"phone": "07700 900777"}, {"phone": "7700900777", "area_code": "+44"}),
        ({"phone": "07700 900777"}, {"phone": "+447700900777", "area_code": None}),
        ({"phone": "+44 7700 900777"}, {"phone": "07700900777", "area_code": None}),
        ({"phone": "+447700900777"}, {"phone": "07700 900777", "area_code": None}),
    ],
    ids=[
        "email-stored-mixed-case",
        "email-bought-mixed-case",
        "phone-stored-national",
        "phone-bought-e164",
        "phone-stored-international",
        "phone-bought-national",
    ],
)
def test_an_existing_customer_is_linked_whatever_the_spelling(
    world: World, stored: dict[str, str], buyer: dict[str, Any]
) -> None:
    existing = stokly_customer(world, **stored)
    order = world.place((SOCKS, 1), customer={"first_name": "Sam", "last_name": "Keyed", **buyer})
    report = world.run()
    assert linked_customer(world, order) == existing["customerId"]
    assert sams(world) == [existing["customerId"]]
    assert report.ok


def test_email_and_phone_spelt_differently_are_one_customer(world: World) -> None:
    existing = stokly_customer(world, email="Sam.Keyed@Example.com", phone="07700 900777")
    order = world.place(
        (SOCKS, 1),
        customer={"email": "sam.keyed@example.com", "phone": "7700900777", "area_code": "+44"},
    )
    world.run()
    assert linked_customer(world, order) == existing["customerId"]
    assert sams(world) == [existing["customerId"]]


def test_a_similar_but_different_customer_is_not_linked(world: World) -> None:
    other = stokly_customer(world, email="sam.keyed@example.co", phone="07700 900778")
    order = world.place(
        (SOCKS, 1),
        customer={"email": "sam.keyed@example.com", "phone": "7700900777", "area_code": "+44"},
    )
    world.run()
    assert linked_customer(world, order) != other["customerId"]
