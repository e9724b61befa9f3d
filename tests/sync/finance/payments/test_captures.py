"""An authorisation captured in parts (issue 15, defect 9b): SHOPLINE gives each capture its own
transaction, but the gateway may give them all one deal id (``pay_channel_deal_id``; SHOPLINE
does not say whether it reuses it, so both are handled). Payments were matched to Stokly's
records by (kind, deal id), so the second capture was taken for the first and never recorded.

The rule: a payment's gateway transaction id is its deal id; when several of an order's
transactions of one kind share one, the first (in the order they were taken) keeps it and each
later one is told apart by its SHOPLINE transaction id (``<deal id>:<transaction id>``). So two
captures are two Stokly payments, and a re-read of the same capture is still recorded once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stokline.connectors.shopline.models import Order, Transaction
from stokline.store.tables import links
from stokline.sync.finance.payments.translate import Period, movements_of
from tests.sync.conftest import World
from tests.sync.finance.payments.test_sync import TENT, Finance, money

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def shop(world: World) -> Finance:
    return Finance(world)


def capture(tx_id: str, amount: str, at: datetime, deal: str | None = "pi_3MI897") -> dict:
    return {
        "id": tx_id,
        "order_id": "1",
        "kind": "capture",
        "status": "success",
        "gateway": "shopline_payments",
        "amount": amount,
        "currency": "GBP",
        "processed_at": at.isoformat(),
        "payment_details": {"pay_seq": "PS1", "pay_channel_deal_id": deal},
    }


def test_captures_sharing_a_deal_id_are_told_apart_and_the_first_keeps_it() -> None:
    order = Order.model_validate({"id": "1", "name": "#1001", "currency": "GBP"})
    period = Period(date(2026, 7, 1), date(2026, 7, 2), LONDON)
    at = datetime(2026, 7, 1, 9, tzinfo=UTC)
    txs = [
        Transaction.model_validate(capture("T2", "40.00", at + timedelta(days=1))),
        Transaction.model_validate(capture("T1", "60.00", at)),
        Transaction.model_validate(capture("T3", "5.00", at, deal="pi_other")),
    ]
    moves = {m.transaction_id: m for m in movements_of(order, txs, period)}
    assert moves["T1"].gateway_transaction_id == "pi_3MI897"  # taken first
    assert moves["T2"].gateway_transaction_id == "pi_3MI897:T2"
    assert moves["T3"].gateway_transaction_id == "pi_other"
    # Read again (SHOPLINE's order of the list may differ): the same ids.
    again = {m.transaction_id: m for m in movements_of(order, list(reversed(txs)), period)}
    assert {k: m.gateway_transaction_id for k, m in again.items()} == {
        k: m.gateway_transaction_id for k, m in moves.items()
    }


def split_into_captures(shop: Finance, order: dict[str, Any], first: Decimal) -> list[str]:
    """Turn the sandbox order's one sale into an authorisation and two captures of one deal id,
    as a gateway that captures in parts records them."""
    store = shop.world.shopline_app.state.shopline.store
    stored = store.get("order", order["id"])
    (sale,) = stored["_transactions"]
    total = Decimal(sale["amount"])
    at = datetime.fromisoformat(sale["processed_at"].replace("Z", "+00:00"))
    later = at + timedelta(minutes=30)
    auth = {**sale, "id": f"{sale['id']}0", "kind": "authorization"}
    one = {**sale, "id": f"{sale['id']}1", "kind": "capture", "amount": str(first)}
    two = {
        **sale,
        "id": f"{sale['id']}2",
        "kind": "capture",
        "amount": str(total - first),
        "processed_at": later.isoformat(),
        "created_at": later.isoformat(),
    }
    stored["_transactions"] = [auth, one, two]
    store.update("order", order["id"], stored)
    return [one["id"], two["id"]]


def test_two_captures_with_one_deal_id_are_both_recorded_and_only_once(shop: Finance) -> None:
    order = shop.place((TENT, 1))
    shop.world.run()  # the orders sync imports it
    first, second = split_into_captures(shop, order, Decimal("60.00"))
    deal = shop.transactions(order["id"])[1]["payment_details"]["pay_channel_deal_id"]

    report = shop.payments()
    assert report.ok and report.exceptions == []
    assert report.payments_recorded == 2
    paid = sorted(shop.payments_of(order["id"]), key=lambda p: p["transactionId"])
    assert [p["transactionId"] for p in paid] == [deal, f"{deal}:{second}"]
    assert sum(money(p["amount"]) for p in paid) == money(order["total_price"])

    # Read again: nothing new. And with the state store lost, Stokly's records are found.
    counts = shop.counts()
    assert shop.payments().payments_recorded == 0
    with shop.world.store.engine.begin() as conn:
        conn.execute(links.delete().where(links.c.kind == "payment"))
    lost = shop.payments()
    assert lost.payments_recorded == 0 and lost.already_recorded == 2
    assert shop.counts() == counts
    assert first != second
