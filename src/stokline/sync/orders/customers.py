"""The Stokly customer of each order in a batch: found by email or phone, or created once.

All look-ups of a batch are a few calls (emails exactly and as substrings, phones in the ways
people write them), compared normalised (`stokline.sync.orders.identity`). Orders that need a new customer are
grouped by identity first — two orders sharing an email or a phone are one buyer, also when one
of them has only the phone — so each new buyer is created exactly once, concurrently with the
others.
"""

from __future__ import annotations

import asyncio
import functools
import operator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from typing import Any

from stokline.config import Mapping
from stokline.connectors import ConnectorError, StoklyClient
from stokline.connectors.stokly.filters import contains
from stokline.mapping.translate import Untranslatable
from stokline.sync.orders.identity import (
    Identity,
    decide_customer,
    identity_of,
    normalise_email,
    normalise_phone,
    phone_spellings,
)
from stokline.sync.orders.translate import stokly_address

__all__ = ["CustomerPlan", "NewCustomer", "buyer_identity", "plan_customers"]

# Emails per substring search: each is one term of an OR in the filter (and the URL).
_CONTAINS_BATCH = 20


@dataclass
class NewCustomer:
    """A buyer Stokly does not know yet; ``customer_id`` once created."""

    body: dict[str, Any]
    keys: set[tuple[str, str]] = field(default_factory=set)
    orders: list[str] = field(default_factory=list)
    customer_id: str | None = None
    error: ConnectorError | None = None


@dataclass
class CustomerPlan:
    """Per order id: an existing customer id, a `NewCustomer`, None (no customer) or a problem."""

    existing: dict[str, str | None] = field(default_factory=dict)
    new: dict[str, NewCustomer] = field(default_factory=dict)
    problems: dict[str, Untranslatable] = field(default_factory=dict)

    def groups(self) -> list[NewCustomer]:
        return list({id(c): c for c in self.new.values()}.values())


def buyer_identity(mapping: Mapping, order: AbcMapping[str, Any]) -> Identity:
    """The buyer's normalised email and E.164 phone, from the order's customer or the order."""
    customer = order.get("customer") or {}
    email = customer.get("email") or order.get("email")
    if customer.get("phone"):
        phone, area = customer["phone"], customer.get("area_code")
    else:
        phone, area = order.get("phone"), None
    return identity_of(mapping, email, phone, area)


def _new_body(order: AbcMapping[str, Any], identity: Identity) -> dict[str, Any]:
    customer = order.get("customer") or {}
    address = order.get("billing_address") or order.get("shipping_address") or {}
    forename = customer.get("first_name") or address.get("first_name") or ""
    surname = customer.get("last_name") or address.get("last_name") or ""
    body: dict[str, Any] = {
        "name": {"forename": forename, "surname": surname},
        "fullName": f"{forename} {surname}".strip() or None,
        "type": 1,
        "email": identity.email,
        "phone": identity.phone,
    }
    if address:
        body["billingAddress"] = stokly_address(address)
    if order.get("shipping_address"):
        body["shippingAddresses"] = [stokly_address(order["shipping_address"])]
    return {k: v for k, v in body.items() if v is not None}


async def _stokly_matches(
    mapping: Mapping, stokly: StoklyClient, emails: list[str], phones: list[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Stokly customer ids by normalised email and by E.164 phone, for the buyers' own.

    Stokly's search is exact, and its records are spelt as people typed them. Emails are searched
    as they are and with a substring search (case-insensitive in Stokly's filter language [I]),
    phones in each way a person writes the number (`phone_spellings`); every customer found is
    then compared by its normalised value, so a match never depends on how either side spelt it.
    """
    region = mapping.customers.phone_region
    by_email: dict[str, list[str]] = {}
    by_phone: dict[str, list[str]] = {}
    if emails:
        found = {c.customerId: c for c in await stokly.find_customers_by_email(emails)}
        for start in range(0, len(emails), _CONTAINS_BATCH):
            batch = emails[start : start + _CONTAINS_BATCH]
            wanted = functools.reduce(operator.or_, (contains("email", e) for e in batch))
            async for c in stokly.iter_customers(filter=wanted):
                found.setdefault(c.customerId, c)
        for c in found.values():
            if (key := normalise_email(c.email)) is not None:
                by_email.setdefault(key, []).append(c.customerId)
    if phones:
        spellings = list(dict.fromkeys(s for p in phones for s in phone_spellings(p)))
        for c in await stokly.find_customers_by_phone(spellings):
            if (key := normalise_phone(c.phone, None, region)) is not None:
                ids = by_phone.setdefault(key, [])
                if c.customerId not in ids:
                    ids.append(c.customerId)
    return by_email, by_phone


async def plan_customers(
    mapping: Mapping, stokly: StoklyClient, orders: list[AbcMapping[str, Any]]
) -> CustomerPlan:
    """Decide every order's customer with one email and one phone look-up (per 100 values)."""
    plan = CustomerPlan()
    wanted = set(mapping.customers.identity)
    identities = {str(o["id"]): buyer_identity(mapping, o) for o in orders}
    emails = sorted({i.email for i in identities.values() if i.email and "email" in wanted})
    phones = sorted({i.phone for i in identities.values() if i.phone and "phone" in wanted})
    by_email, by_phone = await _stokly_matches(mapping, stokly, emails, phones)
    pending: dict[tuple[str, str], NewCustomer] = {}
    for order in orders:
        order_id = str(order["id"])
        identity = identities[order_id]
        matches = {
            "email": by_email.get(identity.email or "", []),
            "phone": by_phone.get(identity.phone or "", []),
        }
        try:
            decision = decide_customer(mapping, identity, matches)
        except Untranslatable as exc:
            plan.problems[order_id] = exc
            continue
        if decision.action == "link":
            plan.existing[order_id] = decision.customer_id
        elif decision.action == "none":
            plan.existing[order_id] = None
        else:
            keys = set(identity.keys(mapping.customers.identity))
            group = next((pending[k] for k in keys if k in pending), None)
            if group is None:
                group = NewCustomer(_new_body(order, identity))
            group.keys |= keys
            group.orders.append(order_id)
            for key in keys:
                pending[key] = group
            plan.new[order_id] = group
    return plan


async def create_customers(stokly: StoklyClient, groups: list[NewCustomer]) -> None:
    """Create each new buyer once, concurrently; a failure stays on its group."""

    async def create(group: NewCustomer) -> None:
        try:
            group.customer_id = (await stokly.create_customer(group.body)).id
        except ConnectorError as exc:
            group.error = exc

    await asyncio.gather(*(create(g) for g in groups))
