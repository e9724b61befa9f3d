"""The journal builder on a hand-computed day: sales, a refund, a fee, several gateways, tax
classes and two currencies, each journal balanced to the penny and equal to totals worked out by
hand (in the comments), plus the timezone's day boundary, orders set aside and adjustments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stokline.config import Mapping, check_text, load_mapping
from stokline.sync.finance.ledger.translate import (
    FEES,
    GATEWAY_LINES,
    RECEIPTS,
    REFUNDS,
    GroupKey,
    JournalDraft,
    JournalLine,
    OrderMoney,
    batch_key,
    build_journals,
    difference,
    gateway_line,
    lines_from_json,
    lines_to_json,
    parse_gateway_line,
)

ROOT = Path(__file__).resolve().parents[4]
DAY = date(2025, 6, 15)  # British Summer Time: London is UTC+1


@pytest.fixture(scope="module")
def demo() -> Mapping:
    return load_mapping(ROOT / "mappings" / "demo.yaml")


def edited(edit: Any) -> Mapping:
    text = edit((ROOT / "mappings" / "demo.yaml").read_text(encoding="utf-8"))
    result = check_text(text, "edited.yaml")
    assert result.mapping is not None, result.problems
    return result.mapping


def tax(title: str, price: str, rate: str = "0.2") -> dict[str, Any]:
    return {"title": title, "rate": rate, "price": price}


def line(
    line_id: str,
    price: str,
    quantity: int,
    taxes: list[dict[str, Any]],
    discount: str | None = None,
    sku: str = "SKU",
) -> dict[str, Any]:
    return {
        "id": line_id,
        "sku": sku,
        "price": price,
        "quantity": quantity,
        "tax_lines": taxes,
        "discount_allocations": [{"amount": discount}] if discount else [],
    }


def shipping(price: str, taxes: list[dict[str, Any]], paid: str | None = None) -> dict[str, Any]:
    return {
        "title": "Royal Mail Tracked 48",
        "price": price,
        "discounted_price": paid or price,
        "tax_lines": taxes,
    }


def order(
    order_id: str,
    name: str,
    lines: list[dict[str, Any]],
    ships: list[dict[str, Any]],
    *,
    currency: str = "GBP",
    gateway: str = "shopline_payments",
    created: str = "2025-06-15T09:00:00+00:00",
    discounts: str = "0.00",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": order_id,
        "name": name,
        "currency": currency,
        "created_at": created,
        "taxes_included": True,
        "total_discounts": discounts,
        "payment_gateway_names": [gateway],
        "line_items": lines,
        "shipping_lines": ships,
        **extra,
    }


def sale(
    tx_id: str, amount: str, at: str, gateway: str, currency: str = "GBP", **extra: Any
) -> dict[str, Any]:
    return {
        "id": tx_id,
        "kind": "sale",
        "status": "success",
        "gateway": gateway,
        "amount": amount,
        "currency": currency,
        "created_at": at,
        **extra,
    }


VAT20, VAT5, VAT0 = "VAT 20%", "VAT 5%", "VAT 0%"


def fixture_day() -> list[OrderMoney]:
    # A: GBP, card. Tent 120.00 less a 12.00 discount (VAT 18.00 on 108.00), two stoves at 30.00
    # (VAT 10.00), Royal Mail 3.95 (VAT 0.66). Paid 120 - 12 + 60 + 3.95 = 171.95.
    a = order(
        "A",
        "#1001",
        [
            line("1", "120.00", 1, [tax(VAT20, "18.00")], discount="12.00", sku="TENT"),
            line("2", "30.00", 2, [tax(VAT20, "10.00")], sku="STOVE"),
        ],
        [shipping("3.95", [tax(VAT20, "0.66")])],
        discounts="12.00",
    )
    # B: GBP, PayPal with a 1.85 fee. Book 21.00 (VAT 5% 1.00), child's coat 35.00 (VAT 0%),
    # DPD 6.95 (VAT 1.16). Paid 62.95.
    b = order(
        "B",
        "#1002",
        [
            line("1", "21.00", 1, [tax(VAT5, "1.00", "0.05")], sku="BOOK"),
            line("2", "35.00", 1, [tax(VAT0, "0.00", "0")], sku="COAT-KIDS"),
        ],
        [shipping("6.95", [tax(VAT20, "1.16")])],
        gateway="paypal",
        created="2025-06-15T13:00:00+00:00",
    )
    # C: EUR, card. 2 x 50.00 (VAT 16.67), shipping 4.95 (VAT 0.83). Paid 104.95 EUR.
    c = order(
        "C",
        "#1003",
        [line("1", "50.00", 2, [tax(VAT20, "16.67")])],
        [shipping("4.95", [tax(VAT20, "0.83")])],
        currency="EUR",
        created="2025-06-15T20:30:00+00:00",
    )
    # D: sold on the 10th (outside the day); on the 15th one of its two 40.00 lines is refunded
    # (VAT 6.67) with the shipping (3.95, VAT 0.66): 43.95 back to the card.
    d = order(
        "D",
        "#0990",
        [line("1", "40.00", 2, [tax(VAT20, "13.33")])],
        [shipping("3.95", [tax(VAT20, "0.66")])],
        created="2025-06-10T10:00:00+00:00",
    )
    d_refund = {
        "id": "R1",
        "order_id": "D",
        "note": "damaged",
        "created_at": "2025-06-15T11:00:00+00:00",
        "refund_line_items": [
            {"line_item_id": "1", "quantity": 1, "subtotal": "40.00", "total_tax": "6.67"}
        ],
        "order_adjustments": [
            {"kind": "shipping_refund", "amount": "-3.95", "tax_amount": "-0.66"}
        ],
        "transactions": [
            {
                "id": "T-D2",
                "kind": "refund",
                "status": "success",
                "gateway": "shopline_payments",
                "amount": "43.95",
                "currency": "GBP",
            }
        ],
    }
    # E: Klarna at 23:30 UTC on the 14th, which is 00:30 on the 15th in London: the 15th's.
    e = order(
        "E",
        "#1004",
        [line("1", "10.00", 1, [tax(VAT20, "1.67")])],
        [shipping("0.00", [tax(VAT20, "0.00")])],
        gateway="klarna",
        created="2025-06-14T23:30:00+00:00",
    )
    # F: 23:30 UTC on the 15th is the 16th in London: not in the day.
    f = order(
        "F",
        "#1005",
        [line("1", "10.00", 1, [tax(VAT20, "1.67")])],
        [],
        created="2025-06-15T23:30:00+00:00",
    )
    return [
        OrderMoney(a, [sale("T-A", "171.95", "2025-06-15T09:05:00+00:00", "shopline_payments")]),
        OrderMoney(
            b,
            [sale("T-B", "62.95", "2025-06-15T13:01:00+00:00", "paypal", receipt={"fee": "1.85"})],
        ),
        OrderMoney(
            c, [sale("T-C", "104.95", "2025-06-15T20:31:00+00:00", "shopline_payments", "EUR")]
        ),
        OrderMoney(
            d,
            [
                sale("T-D", "83.95", "2025-06-10T10:01:00+00:00", "shopline_payments"),
                {
                    "id": "T-D2",
                    "kind": "refund",
                    "status": "success",
                    "gateway": "shopline_payments",
                    "amount": "43.95",
                    "currency": "GBP",
                    "created_at": "2025-06-15T11:00:00+00:00",
                },
            ],
            [d_refund],
        ),
        OrderMoney(e, [sale("T-E", "10.00", "2025-06-14T23:31:00+00:00", "klarna")]),
        OrderMoney(f, [sale("T-F", "10.00", "2025-06-15T23:31:00+00:00", "shopline_payments")]),
    ]


def table(journal: JournalDraft) -> set[tuple[str, str, str, str]]:
    return {(ln.account, ln.description, str(ln.debit), str(ln.credit)) for ln in journal.lines}


def by_key(journals: list[JournalDraft]) -> dict[str, JournalDraft]:
    return {j.batch_key: j for j in journals}


def test_a_day_of_sales_refunds_gateways_tax_classes_and_currencies(demo: Mapping) -> None:
    journals = by_key(build_journals(demo, fixture_day(), DAY, DAY))
    assert sorted(journals) == [
        "demo-outdoor:2025-06-15:klarna:GBP",
        "demo-outdoor:2025-06-15:paypal:GBP",
        "demo-outdoor:2025-06-15:shopline_payments:EUR",
        "demo-outdoor:2025-06-15:shopline_payments:GBP",
    ]
    for journal in journals.values():
        assert journal.balanced and not journal.refused, journal.problems

    card = journals["demo-outdoor:2025-06-15:shopline_payments:GBP"]
    # A's sale and D's refund. Sales (120 - 18) + (60 - 10) = 152.00; VAT 18 + 10 + 0.66 = 28.66;
    # shipping 3.95 - 0.66 = 3.29; refunds (40 - 6.67) + (3.95 - 0.66) = 36.62; VAT back 7.33.
    assert table(card) == {
        ("1210", "receipts shopline_payments", "171.95", "0"),
        ("4020", "discounts", "12.00", "0"),
        ("4090", "refunds", "36.62", "0"),
        ("2200", "tax standard refunded", "7.33", "0"),
        ("1210", "refunds shopline_payments", "0", "43.95"),
        ("4000", "sales", "0", "152.00"),
        ("2200", "tax standard", "0", "28.66"),
        ("4010", "shipping", "0", "3.29"),
    }
    assert card.debits == card.credits == Decimal("227.90")
    assert (card.sales, card.refunds) == (1, 1)
    assert card.orders == ("#0990 (D)", "#1001 (A)")

    paypal = journals["demo-outdoor:2025-06-15:paypal:GBP"]
    # Sales 20.00 + 35.00; VAT 5% 1.00; VAT 0% is zero (no line); shipping 6.95 - 1.16 = 5.79.
    assert table(paypal) == {
        ("1220", "receipts paypal", "62.95", "0"),
        ("6110", "fees paypal", "1.85", "0"),
        ("1220", "fees paypal", "0", "1.85"),
        ("4000", "sales", "0", "55.00"),
        ("2201", "tax reduced", "0", "1.00"),
        ("2200", "tax standard", "0", "1.16"),
        ("4010", "shipping", "0", "5.79"),
    }
    assert paypal.debits == Decimal("64.80")

    euro = journals["demo-outdoor:2025-06-15:shopline_payments:EUR"]
    assert table(euro) == {
        ("1210", "receipts shopline_payments", "104.95", "0"),
        ("4000", "sales", "0", "83.33"),
        ("2200", "tax standard", "0", "17.50"),
        ("4010", "shipping", "0", "4.12"),
    }
    assert euro.key == GroupKey(DAY, "shopline_payments", "EUR")

    klarna = journals["demo-outdoor:2025-06-15:klarna:GBP"]
    assert table(klarna) == {
        ("1230", "receipts klarna", "10.00", "0"),
        ("4000", "sales", "0", "8.33"),
        ("2200", "tax standard", "0", "1.67"),
    }
    assert "#1005 (F)" not in {o for j in journals.values() for o in j.orders}


def test_the_next_day_holds_what_london_calls_the_16th(demo: Mapping) -> None:
    (journal,) = build_journals(demo, fixture_day(), date(2025, 6, 16), date(2025, 6, 16))
    assert journal.orders == ("#1005 (F)",)
    assert journal.debits == Decimal("10.00")


def test_a_period_holds_one_journal_per_day(demo: Mapping) -> None:
    journals = build_journals(demo, fixture_day(), date(2025, 6, 10), date(2025, 6, 16))
    days = {j.key.day for j in journals}
    assert days == {date(2025, 6, 10), DAY, date(2025, 6, 16)}
    assert [j.key for j in journals] == sorted(j.key for j in journals)
    with pytest.raises(ValueError, match="starts"):
        build_journals(demo, [], date(2025, 6, 16), DAY)


def test_the_payload_is_what_stokly_journals_take(demo: Mapping) -> None:
    journal = by_key(build_journals(demo, fixture_day(), DAY, DAY))[
        "demo-outdoor:2025-06-15:klarna:GBP"
    ]
    body = journal.payload()
    assert body["reference"] == "demo-outdoor:2025-06-15:klarna:GBP"
    assert (body["date"], body["currency"]) == ("2025-06-15", "GBP")
    assert all(
        isinstance(ln["debit"], Decimal) and isinstance(ln["credit"], Decimal)
        for ln in body["lines"]
    )
    assert all((ln["debit"] > 0) != (ln["credit"] > 0) for ln in body["lines"])
    # Debits first, then credits, each by account: the same journal always reads the same.
    assert [ln["account"] for ln in body["lines"]] == ["1230", "2200", "4000"]


def test_the_content_hash_follows_the_content_and_the_key(demo: Mapping) -> None:
    first = build_journals(demo, fixture_day(), DAY, DAY)
    again = build_journals(demo, fixture_day(), DAY, DAY)
    assert [j.content_hash for j in first] == [j.content_hash for j in again]
    assert len({j.content_hash for j in first}) == len(first)
    changed = fixture_day()
    changed[1].transactions[0]["receipt"] = {"fee": "1.86"}
    changed[1].order["line_items"][0]["price"] = "21.01"  # keep it balanced: 0.01 more paid
    changed[1].transactions[0]["amount"] = "62.96"
    paypal = by_key(build_journals(demo, changed, DAY, DAY))["demo-outdoor:2025-06-15:paypal:GBP"]
    assert paypal.balanced
    assert paypal.content_hash != by_key(first)[paypal.batch_key].content_hash
    assert batch_key("x", GroupKey(DAY, None, "GBP")) == "x:2025-06-15:all:GBP"


def test_grouping_without_gateway_keeps_one_receipts_line_per_gateway(demo: Mapping) -> None:
    mapping = edited(lambda t: t.replace("group_by: [day, gateway, currency]", "group_by: [day]"))
    journals = by_key(build_journals(mapping, fixture_day(), DAY, DAY))
    # The currency is always a key: one journal has one currency.
    assert sorted(journals) == [
        "demo-outdoor:2025-06-15:all:EUR",
        "demo-outdoor:2025-06-15:all:GBP",
    ]
    gbp = journals["demo-outdoor:2025-06-15:all:GBP"]
    assert gbp.balanced
    receipts = {(ln.account, ln.debit) for ln in gbp.lines if ln.description.startswith("receipts")}
    assert receipts == {
        ("1210", Decimal("171.95")),
        ("1220", Decimal("62.95")),
        ("1230", Decimal("10.00")),
    }
    # Sales of A, B and E together: 152.00 + 55.00 + 8.33.
    (sales,) = [ln for ln in gbp.lines if ln.description == "sales"]
    assert sales.credit == Decimal("215.33")
    assert gbp.debits == Decimal("227.90") + Decimal("64.80") + Decimal("10.00")


def test_without_a_discounts_account_sales_are_net_of_discounts() -> None:
    mapping = edited(lambda t: t.replace('      discounts: "4020"\n', ""))
    journals = by_key(build_journals(mapping, fixture_day(), DAY, DAY))
    card = journals["demo-outdoor:2025-06-15:shopline_payments:GBP"]
    assert card.balanced
    (sales,) = [ln for ln in card.lines if ln.description == "sales"]
    assert sales.credit == Decimal("140.00")  # 152.00 - 12.00
    assert not [ln for ln in card.lines if ln.description == "discounts"]


def test_an_order_that_does_not_balance_is_set_aside_and_named(demo: Mapping) -> None:
    day = fixture_day()
    day[0].transactions[0]["amount"] = "171.90"  # SHOPLINE took 0.05 less than the order says
    journals = by_key(build_journals(demo, day, DAY, DAY))
    card = journals["demo-outdoor:2025-06-15:shopline_payments:GBP"]
    # Order A waits alone; D's refund on the same card and day is posted.
    assert not card.refused and card.balanced
    assert card.orders == ("#0990 (D)",)
    (aside,) = card.set_aside
    assert (aside.order_id, aside.code, aside.amount) == (
        "A",
        "ledger_imbalance",
        Decimal("171.90"),
    )
    assert "#1001 (A) sale: money falls short of its breakdown by 0.05" in aside.message
    # The other groups are not held back by it.
    assert not any(j.set_aside for k, j in journals.items() if k != card.batch_key)


def test_one_penny_off_is_set_aside(demo: Mapping) -> None:
    day = fixture_day()
    day[2].transactions[0]["amount"] = "104.96"
    euro = by_key(build_journals(demo, day, DAY, DAY))[
        "demo-outdoor:2025-06-15:shopline_payments:EUR"
    ]
    assert euro.empty and not euro.refused
    assert "exceeds its breakdown by 0.01" in euro.set_aside[0].message


def test_untranslatable_money_refuses_its_journal(demo: Mapping) -> None:
    day = fixture_day()
    day[4].transactions[0]["gateway"] = "bitcoin"
    day[1].order["line_items"][0]["tax_lines"][0]["title"] = "VAT 12.5%"
    day[1].order["line_items"][0]["tax_lines"][0]["rate"] = "0.125"
    journals = by_key(build_journals(demo, day, DAY, DAY))
    bitcoin = journals["demo-outdoor:2025-06-15:bitcoin:GBP"]
    assert [a.code for a in bitcoin.set_aside] == ["unmapped_gateway"] and bitcoin.empty
    assert "#1004 (E)" in bitcoin.set_aside[0].message
    paypal = journals["demo-outdoor:2025-06-15:paypal:GBP"]
    assert [a.code for a in paypal.set_aside] == ["tax_mismatch"] and paypal.empty
    assert "line BOOK" in paypal.set_aside[0].message


def test_money_in_another_currency_than_the_order_is_refused(demo: Mapping) -> None:
    day = fixture_day()
    day[4].transactions[0]["currency"] = "EUR"
    journal = by_key(build_journals(demo, day, DAY, DAY))["demo-outdoor:2025-06-15:klarna:EUR"]
    assert journal.empty and journal.set_aside[0].code == "ledger_imbalance"
    assert "paid in EUR, but the order's amounts are in GBP" in journal.set_aside[0].message


def test_only_successful_sales_count(demo: Mapping) -> None:
    day = fixture_day()[4:5]
    day[0].transactions[0]["status"] = "failure"
    assert build_journals(demo, day, DAY, DAY) == []


def test_prices_without_tax_have_it_added(demo: Mapping) -> None:
    o = order(
        "G",
        "#2000",
        [line("1", "100.00", 1, [tax(VAT20, "20.00")])],
        [shipping("5.00", [tax(VAT20, "1.00")])],
        taxes_included=False,
    )
    (journal,) = build_journals(
        demo, [OrderMoney(o, [sale("T", "126.00", "2025-06-15T10:00:00Z", "paypal")])], DAY, DAY
    )
    assert table(journal) == {
        ("1220", "receipts paypal", "126.00", "0"),
        ("4000", "sales", "0", "100.00"),
        ("4010", "shipping", "0", "5.00"),
        ("2200", "tax standard", "0", "21.00"),
    }


def test_order_level_tax_lines_when_lines_carry_none(demo: Mapping) -> None:
    o = order("H", "#2001", [line("1", "60.00", 1, [])], [], tax_lines=[tax(VAT20, "10.00")])
    (journal,) = build_journals(
        demo, [OrderMoney(o, [sale("T", "60.00", "2025-06-15T10:00:00Z", "paypal")])], DAY, DAY
    )
    assert table(journal) == {
        ("1220", "receipts paypal", "60.00", "0"),
        ("4000", "sales", "0", "50.00"),
        ("2200", "tax standard", "0", "10.00"),
    }


def test_a_fee_without_an_account_is_left_out_with_a_note() -> None:
    mapping = edited(
        lambda t: t.replace(', fee_account: "6110"', "").replace('      fees: "6100"\n', "")
    )
    day = fixture_day()
    paypal = by_key(build_journals(mapping, day, DAY, DAY))["demo-outdoor:2025-06-15:paypal:GBP"]
    assert paypal.balanced and not paypal.refused
    assert not [ln for ln in paypal.lines if "fees" in ln.description]
    assert "fee of 1.85 is left out" in paypal.notes[0]


# D sold 66.67 + shipping 3.29 net (69.96) and VAT 13.99: 83.95. An amount of 43.95 back with
# no lines reverses VAT in that mix: 43.95 x 13.99 / 83.95 = 7.324… → 7.32; the rest, 36.63.
AMOUNT_ONLY = {
    ("4090", "refunds", "36.63", "0"),
    ("2200", "tax standard refunded", "7.32", "0"),
    ("1210", "refunds shopline_payments", "0", "43.95"),
}


def test_an_amount_only_refund_reverses_vat_in_the_orders_mix(demo: Mapping) -> None:
    day = fixture_day()
    om = day[3]
    refund = {**om.refunds[0], "refund_line_items": [], "order_adjustments": []}
    journal = by_key(
        build_journals(demo, [OrderMoney(om.order, om.transactions, [refund])], DAY, DAY)
    )["demo-outdoor:2025-06-15:shopline_payments:GBP"]
    assert table(journal) == AMOUNT_ONLY


def test_a_refund_transaction_without_a_refund_record_still_counts(demo: Mapping) -> None:
    om = fixture_day()[3]
    (journal,) = build_journals(demo, [OrderMoney(om.order, om.transactions, [])], DAY, DAY)
    assert table(journal) == AMOUNT_ONLY


def test_a_refund_with_an_unknown_line_is_refused(demo: Mapping) -> None:
    om = fixture_day()[3]
    refund = {
        **om.refunds[0],
        "refund_line_items": [
            {"line_item_id": "99", "quantity": 1, "subtotal": "40.00", "total_tax": "6.67"}
        ],
    }
    (journal,) = build_journals(demo, [OrderMoney(om.order, om.transactions, [refund])], DAY, DAY)
    assert journal.empty and journal.set_aside[0].code == "ledger_imbalance"
    assert "line 99" in journal.set_aside[0].message


# -- adjustments --------------------------------------------------------------------------------


def test_the_difference_holds_only_what_arrived_after_posting(demo: Mapping) -> None:
    day = fixture_day()
    without_refund = [
        om if om.order["id"] != "D" else OrderMoney(om.order, om.transactions[:1], []) for om in day
    ]
    key = "demo-outdoor:2025-06-15:shopline_payments:GBP"
    posted = by_key(build_journals(demo, without_refund, DAY, DAY))[key]
    now = by_key(build_journals(demo, day, DAY, DAY))[key]
    stored = lines_from_json(lines_to_json(posted.lines))  # as the store keeps them
    adjustment = difference(now, stored, batch=key + ":adj1")
    assert adjustment.batch_key == key + ":adj1" and adjustment.base_key == key
    assert adjustment.balanced
    assert table(adjustment) == {
        ("4090", "refunds", "36.62", "0"),
        ("2200", "tax standard refunded", "7.33", "0"),
        ("1210", "refunds shopline_payments", "0", "43.95"),
    }
    assert difference(now, [*stored, *adjustment.lines]).empty


def test_money_that_went_away_comes_out_on_the_other_side(demo: Mapping) -> None:
    key = "demo-outdoor:2025-06-15:klarna:GBP"
    posted = by_key(build_journals(demo, fixture_day(), DAY, DAY))[key]
    gone = JournalDraft(posted.client, posted.key, key, ())
    reversal = difference(gone, posted.lines, batch=key + ":adj1")
    assert table(reversal) == {
        ("1230", "receipts klarna", "0", "10.00"),
        ("4000", "sales", "8.33", "0"),
        ("2200", "tax standard", "1.67", "0"),
    }


def test_lines_survive_the_store_round_trip() -> None:
    lines = [
        JournalLine("1210", "receipts x", debit=Decimal("1.10")),
        JournalLine("4000", "sales", credit=Decimal("1.10")),
    ]
    assert lines_from_json(lines_to_json(lines)) == lines
    # Stokly's own lines (numbers, no description) read the same way.
    assert lines_from_json([{"account": "4000", "debit": 0, "credit": Decimal("1.10")}])[
        0
    ].credit == Decimal("1.10")


def test_gateway_lines_read_back_as_what_they_are(demo: Mapping) -> None:
    """The reconciliation reads receipts, refunds and fees back from the descriptions the
    builder writes; nothing else on an account is taken for one of them."""
    assert GATEWAY_LINES == (RECEIPTS, REFUNDS, FEES)
    for kind in GATEWAY_LINES:
        for gateway in ("paypal", "Shop Pay"):
            assert parse_gateway_line(gateway_line(kind, gateway)) == (kind, gateway)
    for other in ("sales", "refunds", "tax standard refunded", "shipping", "", "fees "):
        assert parse_gateway_line(other) is None, other
    with pytest.raises(ValueError, match="'sales' is not a gateway line"):
        gateway_line("sales", "paypal")
    # Every line the builder puts on a gateway's account is one of them.
    accounts = {g.ledger_account for g in demo.payments.gateways}
    described = {
        parse_gateway_line(line.description)
        for journal in build_journals(demo, fixture_day(), DAY, DAY)
        for line in journal.lines
        if line.account in accounts
    }
    assert None not in described
    assert {kind for kind, _ in described} >= {RECEIPTS, REFUNDS, FEES}
