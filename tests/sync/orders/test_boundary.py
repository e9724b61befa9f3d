"""Webhook bodies are read into the SHOPLINE order model at the boundary, like every API page.

A signed delivery is trusted to come from SHOPLINE, not to be well formed: one whose body does
not fit the order model becomes one ``poison_message`` (its raw body kept in the inbox and named
by the exception, for replay) and the run goes on with the good deliveries around it. Before
this, a signed ``orders/paid`` with ``"line_items": "nope"`` ended every orders run with an
``AttributeError``: the delivery went back to the inbox and blocked every run after it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.sync.conftest import World

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
CLIENT = "demo-outdoor"


def one_sale_order(world: World, order_id: str) -> None:
    assert len(world.sale_orders(order_id)) == 1
    assert world.stokly_summary()["duplicateSaleOrders"] == []


def malformed(order: dict[str, Any], breakage: str) -> dict[str, Any]:
    body = json.loads(json.dumps(order))
    if breakage == "line items a string":
        body["line_items"] = "nope"
    elif breakage == "a line that is a list":
        body["line_items"] = [["not", "a", "line"]]
    elif breakage == "a quantity that is no number":
        body["line_items"][0]["quantity"] = "two"
    elif breakage == "a customer that is a number":
        body["customer"] = 42
    elif breakage == "shipping lines an object":
        body["shipping_lines"] = {"title": "Royal Mail"}
    else:
        raise AssertionError(breakage)
    return body


BREAKAGES = [
    "line items a string",
    "a line that is a list",
    "a quantity that is no number",
    "a customer that is a number",
    "shipping lines an object",
]


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_malformed_signed_delivery_is_one_exception_and_the_good_ones_import(
    world: World, breakage: str
) -> None:
    first = world.place((TENT, 1), customer={"email": "ada@example.com"})
    bad = world.place((SOCKS, 1), customer={"email": "grace@example.org"})
    last = world.place((SOCKS, 2), customer={"email": "tim@example.net"})
    # An id SHOPLINE does not know, so that nothing can stand in for the broken body.
    stray = {**malformed(bad, breakage), "id": "7000000000000000001"}

    async def deliver_all() -> list[int]:
        return [
            await world.deliver(first, "orders/paid", "wh-good-1"),
            await world.deliver(stray, "orders/paid", "wh-bad"),
            await world.deliver(last, "orders/paid", "wh-good-2"),
        ]

    assert asyncio.run(deliver_all()) == [200, 200, 200]
    report = world.run(sweep=False)  # the inbox alone, as the watcher runs it

    one_sale_order(world, first["id"])
    one_sale_order(world, last["id"])
    assert report.ok, report.errors
    [record] = [r for r in world.store.exceptions.list(client=CLIENT) if r.code == "poison_message"]
    assert record.entity_kind == "webhook" and record.entity_id == "wh-bad"
    assert "does not fit a SHOPLINE order" in record.message
    # The raw delivery stays in the inbox, untouched, for replay; the exception points at it.
    kept = world.store.inbox.get(record.payload["inbox_id"])
    assert kept is not None and kept.webhook_id == "wh-bad" and kept.status == "poison"
    assert json.loads(kept.body) == stray and record.payload["topic"] == "orders/paid"

    again = world.run(sweep=False)
    assert again.ok and again.imported == 0 and again.exceptions_opened == 0


def test_a_malformed_delivery_of_a_real_order_still_lets_the_sweep_import_it(
    world: World,
) -> None:
    order = world.place((TENT, 1), customer={"email": "ada@example.com"})
    broken = malformed(order, "line items a string")
    assert asyncio.run(world.deliver(broken, "orders/paid", "wh-bad-real")) == 200
    report = world.run()  # inbox and sweep: SHOPLINE's own copy of the order is well formed
    assert report.ok, report.errors
    one_sale_order(world, order["id"])
    assert [r.entity_id for r in world.store.exceptions.list(client=CLIENT)] == ["wh-bad-real"]
