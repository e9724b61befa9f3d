"""A customer is created in Stokly at most once, whatever the spelling of their email or phone.

Stokly's records are typed by people and other channels; SHOPLINE may hold the same buyer twice
(its own matching is exact). Each example is one buyer: maybe already in Stokly under some
spelling, then placing one to three orders on SHOPLINE under other spellings; after the orders
sync, Stokly holds exactly one customer for them, and every order is linked to it.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stokline.sync.orders.identity import normalise_email, normalise_phone
from tests.properties.strategies import (
    email_spellings,
    examples,
    shopline_phone_spellings,
    uk_mobile_spellings,
)
from tests.sync.conftest import World

SOCKS = "CRAG-SOCKS-75-M"
_buyers = itertools.count(1)


def _stokly_customer(world: World, **fields: Any) -> str:
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
    return customer_id


def _customers_of(world: World, email: str, e164: str) -> set[str]:
    return {
        c["customerId"]
        for c in world.stokly_state.customers
        if normalise_email(c.get("email")) == email
        or normalise_phone(c.get("phone"), None, "GB") == e164
    }


@settings(max_examples=examples(8))
@given(data=st.data())
def test_one_buyer_is_one_stokly_customer(shared_world: World, data: st.DataObject) -> None:
    n = next(_buyers)
    email = f"sam.keyed{n:06d}@example.com"
    national = f"7700{n:06d}"
    e164 = f"+44{national}"
    # Stokly may know the buyer already, by email, phone or both, spelt as a person typed it.
    known = data.draw(st.sampled_from(("none", "email", "phone", "both")), label="in Stokly")
    stored: dict[str, str] = {}
    if known in ("email", "both"):
        stored["email"] = data.draw(email_spellings(email), label="Stokly email")
    if known in ("phone", "both"):
        stored["phone"] = data.draw(uk_mobile_spellings(national), label="Stokly phone")
    existing = _stokly_customer(shared_world, **stored) if stored else None

    orders = []
    for _ in range(data.draw(st.integers(1, 3), label="orders")):
        # Each order carries the phone, and the email unless the buyer checked out by phone;
        # the first order of a buyer unknown to Stokly keeps the email so the buyer is one.
        phone_only = bool(orders) and data.draw(st.booleans(), label="phone only")
        buyer: dict[str, Any] = {"first_name": "Sam", "last_name": "Keyed"}
        buyer.update(data.draw(shopline_phone_spellings(national), label="SHOPLINE phone"))
        if not phone_only:
            buyer["email"] = data.draw(email_spellings(email), label="SHOPLINE email").strip()
        orders.append(shared_world.place((SOCKS, 1), customer=buyer))
    report = shared_world.run()

    assert report.ok, report
    ids = _customers_of(shared_world, email, e164)
    assert len(ids) == 1, f"buyer {email} / {e164} is {len(ids)} Stokly customers: {ids}"
    if existing is not None:
        assert ids == {existing}
    linked = {sale["customerId"] for o in orders for sale in shared_world.sale_orders(o["id"])}
    assert linked == ids
