"""An order refunded after its import: refunded goods are never silently shipped.

Stokly's API cannot change or cancel the lines of an existing sale order (the sandbox emulates
what is known of it: ``PATCH`` takes tags, notes, references, the stage and the location). So a
refund after import that takes back units Stokly has yet to ship is an ``order_changed``
exception saying which units to cancel; a refund of everything, before any work on the order,
removes the sale order (as a cancellation does, ``on_cancelled: apply``); a refund of what was
already dispatched is a return (the payments sync's credit note), not a change to ship.
The SHOPLINE sandbox is driven as the merchant would (its refund control call), the Stokly
sandbox's warehouse through its control API.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.sync.conftest import World

CLIENT = "demo-outdoor"
TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"


def refund(
    world: World, order: dict[str, Any], *lines: tuple[str, int], returned: bool = False
) -> None:
    by_sku = {li["sku"]: li["id"] for li in order["line_items"]}
    kind = (
        {"type": "Returned", "restock_type": "return"} if returned else {"restock_type": "cancel"}
    )
    body = {"lines": [{"line_item_id": by_sku[sku], "quantity": qty, **kind} for sku, qty in lines]}
    response = world.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=body)
    assert response.status_code == 200, response.text


def dispatch(world: World, order: dict[str, Any]) -> None:
    warehouse = TestClient(world.stokly_app)
    response = warehouse.post("/_sandbox/dispatch", json={"sourceReferenceId": order["id"]})
    assert response.status_code == 200, response.text


def sale_order(world: World, order: dict[str, Any]) -> dict[str, Any]:
    [sale] = world.sale_orders(order["id"])
    return sale


def changes_of(world: World, order: dict[str, Any]) -> list[Any]:
    return [
        r
        for r in world.store.exceptions.list(client=CLIENT, code="order_changed")
        if r.entity_id == order["id"]
    ]


def test_a_refund_of_units_not_yet_shipped_is_reported_with_what_to_cancel(
    world: World,
) -> None:
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})
    world.run()
    assert sale_order(world, order)["stage"] == "order"

    refund(world, order, (SOCKS, 2))
    report = world.run()

    [record] = changes_of(world, order)
    assert record.status == "open"
    assert SOCKS in record.message and "x2" in record.message
    assert "cancel" in record.message
    assert record.key_fact and record.key_fact.startswith("edited (refunded")
    [row] = [c for c in report.changes if c["shopline_id"] == order["id"]]
    assert row["outcome"] == "reported"
    assert sale_order(world, order)["stage"] == "order"  # nothing Stokly allows was undone

    quiet = world.run()  # handled once: the next pass does not report it again
    assert [c for c in quiet.changes if c["shopline_id"] == order["id"]] == []
    assert len(changes_of(world, order)) == 1 and changes_of(world, order)[0].attempts == 1


def test_a_refund_of_everything_before_any_work_removes_the_sale_order(world: World) -> None:
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})
    world.run()

    refund(world, order, (TENT, 1), (SOCKS, 2))
    report = world.run()

    assert sale_order(world, order)["stage"] == "removed"
    [row] = [c for c in report.changes if c["shopline_id"] == order["id"]]
    assert row["outcome"] == "sale order removed"
    assert changes_of(world, order) == []


def test_a_refund_of_goods_already_dispatched_is_a_return_not_a_change(world: World) -> None:
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})
    world.run()
    dispatch(world, order)

    refund(world, order, (SOCKS, 2), returned=True)
    report = world.run()

    assert changes_of(world, order) == []
    assert report.ok
    assert sale_order(world, order)["stage"] == "order"


def test_a_refund_as_not_shipped_that_stokly_dispatched_anyway_is_reported(
    world: World,
) -> None:
    # The merchant refunds the socks as not shipped while the warehouse is packing them: Stokly
    # dispatches before the orders sync sees the refund. The buyer has goods and money.
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})
    world.run()
    refund(world, order, (SOCKS, 2))
    dispatch(world, order)
    report = world.run()

    [change] = changes_of(world, order)
    assert "refunded in SHOPLINE as not shipped (CRAG-SOCKS-75-M x2)" in change.message
    assert "Stokly dispatched" in change.message
    assert change.payload["refunded"] == {SOCKS: 2}
    assert report.ok


def test_an_order_refunded_in_part_before_import_ships_only_what_is_left(world: World) -> None:
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})
    refund(world, order, (SOCKS, 2))
    world.run()
    items = sale_order(world, order)["items"]
    assert [(i["itemSku"], i["quantity"]) for i in items] == [(TENT, 1)]
    assert changes_of(world, order) == []


def test_a_sale_order_a_killed_run_created_is_checked_against_later_refunds(
    world: World,
) -> None:
    order = world.place((TENT, 1), (SOCKS, 2), customer={"email": "ada@example.com"})

    async def crash_after_create(payload: dict[str, Any], forward: Any) -> httpx.Response:
        response = await forward()
        if payload["sourceReferenceId"] == order["id"]:
            raise RuntimeError("the worker died after Stokly created the sale order")
        return response

    world.faults.on_create = crash_after_create
    with pytest.raises(RuntimeError, match="worker died"):
        world.run()
    world.faults.on_create = None
    assert world.store.links.get(CLIENT, "order", order["id"]) is None

    refund(world, order, (SOCKS, 1))  # before the next run links what the killed run made
    world.run()

    link = world.store.links.get(CLIENT, "order", order["id"])
    assert link is not None and link.stokly_id == sale_order(world, order)["saleOrderId"]
    [record] = changes_of(world, order)
    assert f"{SOCKS} x1" in record.message


def test_an_order_whose_failing_line_is_refunded_before_import_closes_its_exception(
    world: World,
) -> None:
    unknown = "ACME-HAMMOCK-XL-RED"  # sold in SHOPLINE, unknown to Stokly
    order = world.place((unknown, 2), customer={"email": "ada@example.com"})
    world.run()
    [record] = world.store.exceptions.list(client=CLIENT, status="open")
    assert record.entity_id == order["id"] and record.code == "unmapped_sku"

    refund(world, order, (unknown, 2))  # the goods, not the shipping: partially refunded
    world.run()

    assert world.sale_orders(order["id"]) == []
    closed = world.store.exceptions.get(record.id)
    assert closed.status == "resolved" and "nothing left to ship" in (closed.resolution or "")
