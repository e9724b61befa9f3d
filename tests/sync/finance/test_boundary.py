"""Finance reads every SHOPLINE order and transaction into its model at the boundary.

One order (or one order's transactions) that SHOPLINE sends in a shape no model accepts is one
``poison_message`` exception, with what SHOPLINE sent kept in it, and the payments of the orders
around it are recorded. Before, one malformed order failed the whole page: no payment of the
period was recorded, run after run. Journals are different on purpose: a day's journal built
without one order's money would be wrong, so the ledger posts nothing for the period while an
order's money cannot be read, and says which order in one line.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.sync import MONEY, sync_payments
from tests.sync.conftest import World
from tests.sync.finance.payments.test_sync import SOCKS, TENT, Finance
from tests.sync.test_guards import Tamper

CLIENT = "demo-outdoor"


def break_lines(order: dict[str, Any]) -> None:
    order["line_items"] = "nope"


def break_amount(transaction: dict[str, Any]) -> None:
    transaction["id"] = {"not": "an id"}


def run_day(shop: Finance, seam: Tamper, use: Any, **options: Any) -> Any:
    """``use`` (a finance use case) over today, with SHOPLINE behind ``seam``."""

    async def scenario() -> Any:
        async with open_clients(
            shop.world.mapping,
            lift_limits=True,
            shopline_transport=seam,
            stokly_transport=shop.seam,
        ) as (shopline, stokly):
            return await use(
                shop.world.mapping,
                shopline=shopline,
                stokly=stokly,
                store=shop.world.store,
                start=shop.day,
                end=shop.day,
                **options,
            )

    return asyncio.run(scenario())


def run_payments(shop: Finance, seam: Tamper) -> Any:
    return run_day(shop, seam, sync_payments)


def run_ledger(shop: Finance, seam: Tamper) -> Any:
    return run_day(shop, seam, post_ledger, dry_run=True)


def poison(world: World) -> list[Any]:
    return [
        r
        for r in world.store.exceptions.list(client=CLIENT, entity_kind=MONEY)
        if r.code == "poison_message"
    ]


def test_a_malformed_order_is_one_exception_and_the_payments_around_it_are_recorded(
    world: World,
) -> None:
    shop = Finance(world)
    first, broken, last = (shop.place((TENT, 1)), shop.place((SOCKS, 1)), shop.place((SOCKS, 2)))
    world.run()  # the orders sync imports all three
    seam = Tamper(world.shopline_app)
    seam.edits[("orders", "id", broken["id"])] = break_lines

    report = run_payments(shop, seam)
    assert report.ok, report.errors
    assert len(shop.payments_of(first["id"])) == 1 and len(shop.payments_of(last["id"])) == 1
    assert shop.payments_of(broken["id"]) == []
    [record] = poison(world)
    assert record.entity_id == broken["id"] and record.status == "open"
    assert "malformed" in record.message and "line_items" in record.message
    assert '"line_items": "nope"' in record.payload["sent"]  # what SHOPLINE sent, for replay

    # The journals of the period wait for every order's money: one line says which is missing.
    journals = run_ledger(shop, seam)
    assert not journals.ok and not journals.posted
    assert any(broken["id"] in e and "malformed" in e for e in journals.errors)

    # SHOPLINE sends the order well formed again: its payment is recorded, the exception closes.
    seam.edits.clear()
    again = run_payments(shop, seam)
    assert again.ok and again.exceptions_resolved == 1
    assert len(shop.payments_of(broken["id"])) == 1
    assert [r.status for r in poison(world)] == ["resolved"]
    assert len(shop.payments_of(first["id"])) == 1  # nothing recorded twice


def test_malformed_transactions_hold_back_only_their_order(world: World) -> None:
    shop = Finance(world)
    good, broken = shop.place((TENT, 1)), shop.place((SOCKS, 1))
    world.run()
    seam = Tamper(world.shopline_app)
    [tx] = shop.transactions(broken["id"])
    seam.edits[("transactions", "id", str(tx["id"]))] = break_amount

    report = run_payments(shop, seam)
    assert report.ok, report.errors
    assert len(shop.payments_of(good["id"])) == 1 and shop.payments_of(broken["id"]) == []
    [record] = poison(world)
    assert record.entity_id == broken["id"] and "transactions are malformed" in record.message

    seam.edits.clear()
    assert run_payments(shop, seam).ok
    assert len(shop.payments_of(broken["id"])) == 1
    assert [r.status for r in poison(world)] == ["resolved"]


def test_a_malformed_refund_holds_back_only_its_order(world: World) -> None:
    shop = Finance(world)
    good, broken = shop.place((TENT, 1)), shop.place((SOCKS, 2))
    world.run()
    shop.refund(good["id"], note="Wrong size")
    refund = shop.refund(broken["id"], note="Damaged in transit")
    seam = Tamper(world.shopline_app)
    seam.edits[("refunds", "id", str(refund["id"]))] = break_amount  # its id is no string

    report = run_payments(shop, seam)
    assert report.ok, report.errors
    assert len(shop.refunds_of(good["id"])) == 1 and shop.refunds_of(broken["id"]) == []
    [record] = poison(world)
    assert record.entity_id == broken["id"] and "refunds are malformed" in record.message

    again = run_payments(shop, seam)  # still malformed: the same exception, not a new one
    assert again.ok and again.exceptions_opened == 0 and again.exceptions_resolved == 0
    [still] = poison(world)
    assert still.id == record.id and still.status in ("open", "retrying")

    seam.edits.clear()
    fixed = run_payments(shop, seam)
    assert fixed.ok and fixed.exceptions_resolved == 1
    assert len(shop.refunds_of(broken["id"])) == 1
    assert [r.status for r in poison(world)] == ["resolved"]
    assert len(shop.refunds_of(good["id"])) == 1  # nothing recorded twice
