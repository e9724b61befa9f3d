"""Payout reconciliation against both sandboxes: balanced when everything is recorded and posted,
and every deliberately injected variance flagged with the order behind it.

The journals are posted by the real ledger pass (`post_ledger`); the variances are injected the
way they happen: money never recorded, a record changed in Stokly, a refund after the day was
posted, a journal altered by hand.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from stokline.config import Mapping
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payouts.reconcile import COLUMNS, PayoutReconciliation
from tests.sync.conftest import World
from tests.sync.finance.payments.test_sync import SOCKS, TENT, Finance, money

UNKNOWN = "ACME-HAMMOCK-XL-RED"  # sold in SHOPLINE, unknown to Stokly


@pytest.fixture
def shop(world: World) -> Finance:
    return Finance(world)


def post(shop: Finance, mapping: Mapping | None = None) -> LedgerReport:
    """The ledger pass for today (the day every order of these tests moved money)."""
    mapping = mapping or shop.world.mapping

    async def scenario() -> LedgerReport:
        async with open_clients(
            mapping,
            lift_limits=True,
            shopline_transport=httpx.ASGITransport(app=shop.world.shopline_app),
            stokly_transport=shop.seam,
        ) as (shopline, stokly):
            return await post_ledger(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=shop.world.store,
                start=shop.day,
                end=shop.day,
            )

    report = asyncio.run(scenario())
    assert report.ok and not report.refused, (report.errors, report.refused)
    return report


def reconcile(shop: Finance, mapping: Mapping | None = None) -> PayoutReconciliation:
    return shop.reconcile(shop.day, shop.day, mapping)


def row_of(result: PayoutReconciliation, gateway: str) -> dict[str, str]:
    [row] = [r for r in result.rows if r["gateway"] == gateway]
    return row


def variance_of(result: PayoutReconciliation, gateway: str) -> dict[str, Any]:
    [variance] = [v for v in result.variances if v["gateway"] == gateway]
    return variance


def test_everything_recorded_and_posted_reconciles(shop: Finance) -> None:
    card = shop.place((TENT, 1), (SOCKS, 2))
    wallet = shop.place((SOCKS, 1), gateway="paypal", customer={"email": "grace@example.org"})
    shop.world.run()
    socks = next(li for li in card["line_items"] if li["sku"] == SOCKS)
    refund = shop.refund(card["id"], lines=[{"line_item_id": socks["id"], "quantity": 1}])
    shop.payments()
    post(shop)

    result = reconcile(shop)
    assert result.ok, result.markdown()
    assert result.variances == [] and result.errors == []
    card_row, wallet_row = row_of(result, "shopline_payments"), row_of(result, "paypal")
    refunded = money(refund["transactions"][0]["amount"])
    assert money(card_row["shopline_in"]) == money(card["total_price"])
    assert money(card_row["shopline_out"]) == refunded
    net = money(card["total_price"]) - refunded
    for column in ("shopline_net", "stokly_net", "ledger_net"):
        assert money(card_row[column]) == net, column
    assert card_row["variance_ledger"] == card_row["variance_recorded"] == "0.00"
    assert card_row["status"] == wallet_row["status"] == "balanced"
    assert money(wallet_row["ledger_net"]) == money(wallet["total_price"])
    assert "all balanced" in result.markdown()


def test_money_never_recorded_in_stokly_is_flagged_with_its_order(shop: Finance) -> None:
    recorded = shop.place((TENT, 1))
    shop.world.run()
    shop.payments()
    missed = shop.place((SOCKS, 3), customer={"email": "tim@example.net"})
    shop.world.run()  # imported, but its payment is never recorded
    post(shop)

    result = reconcile(shop)
    assert not result.ok
    variance = variance_of(result, "shopline_payments")
    assert variance["status"] == "variance"
    assert money(variance["variance_recorded"]) == money(missed["total_price"])
    assert variance["variance_ledger"] == "0.00"  # the journal has it; Stokly's records do not
    [order] = variance["orders"]
    assert order["order"] == missed["name"] and order["shopline_id"] == missed["id"]
    assert order["sale_order"] == shop.sale_order(missed["id"])
    assert order["why"] == "not recorded in Stokly"
    assert money(order["difference"]) == money(missed["total_price"])
    assert recorded["name"] not in str(variance)

    out = io.StringIO()
    result.to_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(COLUMNS)
    [line] = rows
    assert line["status"] == "variance" and line["orders"].startswith(missed["name"])
    assert money(line["shopline_net"]) - money(line["stokly_net"]) == money(missed["total_price"])
    text = out.getvalue() + result.markdown()
    assert "tim@example.net" not in text and "ada@example.com" not in text
    assert missed["name"] in result.markdown() and "## Variances (1)" in result.markdown()


def test_a_stokly_payment_of_another_amount_is_flagged_with_its_order(shop: Finance) -> None:
    order = shop.place((TENT, 1))
    other = shop.place((SOCKS, 1))
    shop.world.run()
    shop.payments()
    post(shop)
    assert reconcile(shop).ok
    payments = shop.world.stokly_state.payments
    [payment] = shop.payments_of(order["id"])
    payments.save(payment["paymentId"], {**payment, "amount": payment["amount"] - 5})

    result = reconcile(shop)
    variance = variance_of(result, "shopline_payments")
    assert money(variance["variance_recorded"]) == Decimal("5.00")
    [behind] = variance["orders"]
    assert behind["order"] == order["name"] and other["name"] not in str(variance)
    assert behind["why"] == "recorded in Stokly with another amount"
    assert money(behind["shopline"]) - money(behind["stokly"]) == Decimal("5.00")


def test_a_payment_recorded_only_in_stokly_is_flagged(shop: Finance) -> None:
    order = shop.place((SOCKS, 1))
    shop.world.run()
    shop.payments()
    post(shop)
    [payment] = shop.payments_of(order["id"])
    forged = {**payment, "paymentId": "forged-1", "transactionId": "pi_not_in_shopline"}
    shop.world.stokly_state.payments.add("forged-1", forged)

    variance = variance_of(reconcile(shop), "shopline_payments")
    [behind] = variance["orders"]
    assert behind["order"] == order["name"]
    assert money(behind["stokly"]) - money(behind["shopline"]) == money(payment["amount"])


def test_a_refund_after_posting_waits_for_an_adjustment_batch(shop: Finance) -> None:
    order = shop.place((TENT, 1), (SOCKS, 1))
    shop.world.run()
    shop.payments()
    post(shop)
    shop.refund(order["id"], note="Changed their mind")
    shop.payments()  # recorded in Stokly, not yet in the ledger

    late = reconcile(shop)
    variance = variance_of(late, "shopline_payments")
    assert money(variance["variance_ledger"]) < 0 and variance["variance_recorded"] == "0.00"
    [behind] = variance["orders"]
    assert behind["order"] == order["name"] and "adjustment batch" in behind["why"]

    adjustment = post(shop)
    assert adjustment.adjustments == 1
    assert reconcile(shop).ok


def test_a_journal_changed_by_hand_is_flagged_even_with_no_order_behind_it(shop: Finance) -> None:
    shop.place((TENT, 1))
    shop.world.run()
    shop.payments()
    post(shop)
    journals = shop.world.stokly_state.journals
    [journal] = [j for j in journals if j["reference"].startswith("demo-outdoor:")]
    lines = [dict(line) for line in journal["lines"]]
    for line in lines:  # five pounds more received and sold: still balanced, no longer true
        if line["description"].startswith("receipts "):
            line["debit"] += 5
        elif line["description"] == "sales":
            line["credit"] += 5
    journals.save(journal["journalId"], {**journal, "lines": lines})

    variance = variance_of(reconcile(shop), "shopline_payments")
    assert money(variance["variance_ledger"]) == Decimal("-5.00")
    assert variance["orders"] == []
    [note] = variance["notes"]
    assert journal["reference"] in note and "no order explains it" in note


def test_money_not_posted_or_never_imported_is_a_variance(shop: Finance) -> None:
    stuck = shop.place((UNKNOWN, 1), gateway="klarna")  # its order cannot be imported
    shop.place((SOCKS, 1), gateway="klarna")
    shop.world.run()
    shop.payments()

    result = reconcile(shop)  # nothing posted yet
    variance = variance_of(result, "klarna")
    assert variance["status"] == "not posted" and not result.ok
    assert any("no journal posted" in note for note in variance["notes"])
    [behind] = variance["orders"]
    assert behind["order"] == stuck["name"] and behind["why"] == "order not imported into Stokly"
    assert behind["sale_order"] == ""


def test_without_a_finance_sync_the_recorded_payments_are_the_ledger(shop: Finance) -> None:
    def drop_finance(text: str) -> str:
        lines, skipping = [], False
        for line in text.splitlines():
            if line == "  finance:":
                skipping = True
                continue
            if skipping and line.startswith("    "):
                continue
            skipping = False
            lines.append(line)
        return "\n".join(lines) + "\n"

    mapping = shop.world.mapping_with(drop_finance)
    assert mapping.syncs.finance is None
    shop.place((SOCKS, 1))
    shop.world.run()
    shop.payments(mapping=mapping)
    result = reconcile(shop, mapping)
    assert result.ok and not result.ledger_expected
    [row] = result.rows
    assert row["ledger_net"] == row["variance_ledger"] == "" and row["status"] == "balanced"
    assert "Stokly ledger" not in result.summary_rows()[0]


def test_an_empty_period_reconciles_and_says_so(shop: Finance) -> None:
    result = shop.reconcile(shop.day - timedelta(days=400), shop.day - timedelta(days=399))
    assert result.ok and result.rows == [] and "no money moved" in result.headline()


def test_without_the_state_store_the_orders_are_found_through_stokly(shop: Finance) -> None:
    lost = shop.place((TENT, 1))
    kept = shop.place((SOCKS, 1))
    shop.world.run()
    shop.payments()
    post(shop)
    payments = shop.world.stokly_state.payments
    [gone] = shop.payments_of(lost["id"])
    payments.remove(gone["paymentId"])  # deleted in Stokly by hand
    [payment] = shop.payments_of(kept["id"])
    forged = {**payment, "paymentId": "forged-2", "transactionId": "pi_unknown", "amount": 1.5}
    payments.add("forged-2", forged)

    with Store("sqlite://") as empty:  # a reconciliation run where the state store is not
        result = shop.reconcile(shop.day, shop.day, store=empty)
    behind = {o["order"]: o for o in variance_of(result, "shopline_payments")["orders"]}
    assert set(behind) == {lost["name"], kept["name"]}
    assert behind[lost["name"]]["why"] == "not recorded in Stokly"
    assert behind[lost["name"]]["sale_order"] == gone["saleOrderId"]
    assert behind[kept["name"]]["sale_order"] == payment["saleOrderId"]
    assert money(behind[kept["name"]]["difference"]) == Decimal("-1.50")
