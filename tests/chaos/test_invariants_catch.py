"""The invariants can fail: break one thing in a calm world and the invariant guarding it says so.

Some breakages are made in the systems themselves (a second sale order injected into the Stokly
sandbox, a SHOPLINE level changed by hand, a stored webhook deleted from the inbox); the others
in a copy of the snapshot, which is cheaper and leaves the shared world intact.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid

import pytest
from sqlalchemy import delete

from benchmarks.chaos.invariants import Invariant, Snapshot, check
from stokline.store.tables import inbox
from tests.chaos.conftest import CalmWorld

pytestmark = pytest.mark.slow


def result(snapshot: Snapshot, key: str) -> Invariant:
    return next(inv for inv in check(snapshot) if inv.key == key)


def failing(snapshot: Snapshot) -> set[str]:
    return {inv.key for inv in check(snapshot) if not inv.passed}


@pytest.fixture(scope="module")
def calm_snapshot(calm: CalmWorld) -> Snapshot:
    return calm.snapshot()


def broken(snapshot: Snapshot, **changes: object) -> Snapshot:
    return dataclasses.replace(copy.deepcopy(snapshot), **changes)


def test_every_invariant_holds_in_a_calm_world(calm_snapshot: Snapshot) -> None:
    problems = [f"{inv.key}: {p}" for inv in check(calm_snapshot) for p in inv.problems]
    assert problems == []
    orders = result(calm_snapshot, "orders")
    assert orders.counts["paid"] == orders.counts["in_stokly_once"] == 4
    assert result(calm_snapshot, "shipments").counts["in_shopline_once"] == 2
    assert result(calm_snapshot, "ledger").counts["journals"] >= 1


# -- orders -------------------------------------------------------------------------------------


def test_a_sale_order_injected_twice_into_stokly_fails_the_orders_invariant(
    calm: CalmWorld,
) -> None:
    state = calm.world.stokly_app.state.sandbox.state
    original = next(
        s for s in state.saleorders if s.get("sourceReferenceId") == calm.orders[0]["id"]
    )
    twin = {**copy.deepcopy(original), "saleOrderId": str(uuid.uuid4())}
    state.saleorders.add(twin["saleOrderId"], twin)
    try:
        found = result(calm.snapshot(), "orders")
    finally:
        state.saleorders.remove(twin["saleOrderId"])
    assert not found.passed
    assert found.counts["duplicates"] == 1
    assert any(f"{calm.orders[0]['id']} is 2 Stokly sale orders" in p for p in found.problems)
    assert result(calm.snapshot(), "orders").passed  # the twin is gone again


def test_a_paid_order_missing_from_stokly_fails(calm_snapshot: Snapshot, calm: CalmWorld) -> None:
    order_id = calm.orders[1]["id"]
    snapshot = broken(
        calm_snapshot,
        stokly_saleorders=[
            s for s in calm_snapshot.stokly_saleorders if s.get("sourceReferenceId") != order_id
        ],
    )
    found = result(snapshot, "orders")
    assert not found.passed
    assert any(order_id in p and "not in Stokly" in p for p in found.problems)


def test_a_sale_order_the_store_does_not_link_fails(
    calm_snapshot: Snapshot, calm: CalmWorld
) -> None:
    order_id = calm.orders[2]["id"]
    links = {k: v for k, v in calm_snapshot.order_links.items() if k != order_id}
    found = result(broken(calm_snapshot, order_links=links), "orders")
    assert [p for p in found.problems if "links it to nothing" in p]


def test_an_unpaid_order_in_stokly_fails(calm_snapshot: Snapshot, calm: CalmWorld) -> None:
    snapshot = broken(calm_snapshot)
    order = next(o for o in snapshot.shopline_orders if o["id"] == calm.orders[3]["id"])
    order["financial_status"] = "unpaid"
    assert "orders" in failing(snapshot)


# -- shipments ----------------------------------------------------------------------------------


def test_a_fulfillment_made_twice_fails_the_shipments_invariant(
    calm_snapshot: Snapshot, calm: CalmWorld
) -> None:
    snapshot = broken(calm_snapshot)
    order = next(o for o in snapshot.shopline_orders if o["id"] == calm.orders[0]["id"])
    order["_fulfillments"].append({**order["_fulfillments"][0], "id": "9990001"})
    found = result(snapshot, "shipments")
    assert not found.passed
    assert any("is 2 fulfillments in SHOPLINE" in p for p in found.problems)


def test_a_shipment_missing_from_shopline_fails(calm_snapshot: Snapshot, calm: CalmWorld) -> None:
    snapshot = broken(calm_snapshot)
    order = next(o for o in snapshot.shopline_orders if o["id"] == calm.orders[1]["id"])
    order["_fulfillments"] = []
    found = result(snapshot, "shipments")
    assert any("is not in SHOPLINE" in p for p in found.problems)


# -- stock --------------------------------------------------------------------------------------


def test_a_level_changed_by_hand_in_shopline_fails_the_stock_invariant(calm: CalmWorld) -> None:
    snapshot = calm.snapshot()
    level = snapshot.stock.comparisons[0]  # type: ignore[union-attr]
    calm.world.shopline_app.state.shopline.state.set_level(
        {
            "inventory_item_id": level.inventory_item_id,
            "location_id": level.location,
            "available": level.sellable + 7,
        }
    )
    try:
        found = result(calm.snapshot(), "stock")
        assert not found.passed
        assert found.counts["oversell_risk"] == 1
        assert any(
            f"shows {level.sellable + 7}, Stokly can sell {level.sellable}" in p
            for p in found.problems
        )
    finally:
        calm.settle()  # the stock pass sets it right again
    assert result(calm.snapshot(), "stock").passed


# -- ledger -------------------------------------------------------------------------------------


def test_a_journal_posted_twice_fails_the_ledger_invariant(calm_snapshot: Snapshot) -> None:
    journals = calm_snapshot.stokly_journals
    twin = {**journals[0], "journalId": str(uuid.uuid4())}
    found = result(broken(calm_snapshot, stokly_journals=[*journals, twin]), "ledger")
    assert any("is posted 2 times" in p for p in found.problems)


def test_an_unbalanced_journal_fails(calm_snapshot: Snapshot) -> None:
    snapshot = broken(calm_snapshot)
    snapshot.stokly_journals[0]["lines"][0]["debit"] += 0.01
    assert any("debits" in p for p in result(snapshot, "ledger").problems)


def test_a_batch_left_half_posted_or_money_left_unposted_fails(calm_snapshot: Snapshot) -> None:
    half = dataclasses.replace(calm_snapshot.batches[0], status="posting")
    snapshot = broken(calm_snapshot, batches=[half, *calm_snapshot.batches[1:]])
    assert any("is left posting" in p for p in result(snapshot, "ledger").problems)
    key = "demo-outdoor:2026-01-01:paypal:GBP"
    snapshot = broken(calm_snapshot, unposted=[key])
    assert any(key in p for p in result(snapshot, "ledger").problems)


# -- inbox --------------------------------------------------------------------------------------


def test_an_acknowledged_webhook_missing_from_the_inbox_fails(calm: CalmWorld) -> None:
    snapshot = calm.snapshot()
    delivery = snapshot.deliveries[0]
    store = calm.world.store
    with store.engine.begin() as conn:
        row = conn.execute(inbox.select().where(inbox.c.webhook_id == delivery["id"])).one()
        conn.execute(delete(inbox).where(inbox.c.id == row.id))
    try:
        found = result(calm.snapshot(), "inbox")
    finally:
        with store.engine.begin() as conn:
            conn.execute(inbox.insert().values(**row._mapping))
    assert not found.passed
    assert any(
        f"{delivery['id']} was acknowledged but is not in the inbox" in p for p in found.problems
    )


def test_an_event_left_unprocessed_or_a_delivery_never_acknowledged_fails(
    calm_snapshot: Snapshot,
) -> None:
    first = dataclasses.replace(calm_snapshot.inbox[0], status="processing")
    snapshot = broken(calm_snapshot, inbox=[first, *calm_snapshot.inbox[1:]])
    assert any("is left processing" in p for p in result(snapshot, "inbox").problems)
    snapshot = broken(calm_snapshot)
    snapshot.deliveries[0]["state"] = "retrying"
    assert any("still retrying" in p for p in result(snapshot, "inbox").problems)


# -- exceptions ---------------------------------------------------------------------------------


def test_an_exception_without_a_known_cause_fails(calm: CalmWorld) -> None:
    store = calm.world.store
    order_id = calm.orders[0]["id"]
    record = store.exceptions.raise_(
        "demo-outdoor", "api_rejected", "order", order_id, "Stokly said no", team="operations"
    )
    try:
        found = result(calm.snapshot(), "exceptions")
    finally:
        store.exceptions.resolve(record.id, "test over")
    assert not found.passed
    assert any(f"#{record.id} api_rejected" in p for p in found.problems)


def test_an_unmapped_sku_exception_whose_skus_stokly_knows_is_not_accounted_for(
    calm: CalmWorld,
) -> None:
    store = calm.world.store
    order_id = calm.orders[1]["id"]  # its SKU is mapped by an override: Stokly knows it
    record = store.exceptions.raise_(
        "demo-outdoor",
        "unmapped_sku",
        "order",
        order_id,
        "SKU STOVE-MINI matches no Stokly item",
        team="ecommerce",
    )
    try:
        found = result(calm.snapshot(), "exceptions")
    finally:
        store.exceptions.resolve(record.id, "test over")
    assert any("names SKUs that Stokly does know" in p for p in found.problems)
