"""The rounding rule of journals: splits round down to the minor unit and hand the leftover units
to the largest remainders, so parts always add up exactly; several payments of one order share
its breakdown so that every journal still balances."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from stokline.config import Mapping, load_mapping
from stokline.sync.finance.ledger.translate import (
    OrderMoney,
    allocate,
    build_journals,
    minor_unit,
    split_shares,
)

ROOT = Path(__file__).resolve().parents[4]
CENT = Decimal("0.01")
D = Decimal


@pytest.fixture(scope="module")
def demo() -> Mapping:
    return load_mapping(ROOT / "mappings" / "demo.yaml")


@pytest.mark.parametrize(
    ("amount", "weights", "unit", "parts"),
    [
        # 33.333… each: 33.33 three times leaves 0.01, which goes to the first (a tie).
        ("100.00", [1, 1, 1], "0.01", ["33.34", "33.33", "33.33"]),
        # Exact: 0.0166…, 0.0333…: floors 0.01, 0.03; the leftover 0.01 to the larger remainder.
        ("0.05", [1, 2], "0.01", ["0.02", "0.03"]),
        ("0.05", [1, 1, 1], "0.01", ["0.02", "0.02", "0.01"]),
        ("1.00", [1, 2], "0.01", ["0.33", "0.67"]),
        ("-1.00", [1, 2], "0.01", ["-0.33", "-0.67"]),
        ("10", [1, 1, 1], "1", ["4", "3", "3"]),  # yen: whole units
        ("0.010", [1, 1], "0.001", ["0.005", "0.005"]),  # dinar: three decimals
        ("7.00", [0, 0], "0.01", ["7.00", "0"]),  # no weight: all to the first
        ("0.00", [3, 1], "0.01", ["0.00", "0.00"]),
    ],
)
def test_allocate(amount: str, weights: list[int], unit: str, parts: list[str]) -> None:
    result = allocate(D(amount), [D(w) for w in weights], D(unit))
    assert result == [D(p) for p in parts]
    assert sum(result, D(0)) == D(amount)


def test_allocate_always_adds_up_exactly() -> None:
    rng = random.Random(20250615)
    for _ in range(2000):
        amount = D(rng.randint(-100000, 100000)) * CENT
        weights = [D(rng.randint(0, 5000)) * CENT for _ in range(rng.randint(1, 6))]
        parts = allocate(amount, weights, CENT)
        assert sum(parts, D(0)) == amount
        assert all(p == p.quantize(CENT) for p in parts)
        total = sum(weights, D(0))
        if total:
            # No part is more than one unit away from its exact share.
            for p, w in zip(parts, weights, strict=True):
                assert abs(p - amount * w / total) < CENT


def test_split_shares_keeps_every_part_and_every_payment_exact() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        parts = [D(rng.randint(-2000, 20000)) * CENT for _ in range(rng.randint(1, 6))]
        total = sum(parts, D(0))
        cut = D(rng.randint(0, max(0, int(total / CENT)))) * CENT if total > 0 else D(0)
        targets = [cut, total - cut]
        rows = split_shares(parts, targets, CENT)
        for k, part in enumerate(parts):
            assert sum((row[k] for row in rows), D(0)) == part
        for row, target in zip(rows, targets, strict=True):
            assert sum(row, D(0)) == target


def test_minor_units() -> None:
    assert minor_unit("GBP") == CENT
    assert minor_unit("jpy") == D(1)
    assert minor_unit("BHD") == D("0.001")


def test_an_order_paid_in_two_parts_on_two_days_balances_both_days(demo: Mapping) -> None:
    # 3 x 3.33 (VAT 20% 1.67) = 9.99 paid 3.33 on the 15th and 6.66 on the 16th (a deposit,
    # then the rest). Sales 8.32 and VAT 1.67 are shared 1:2 in whole pennies.
    order = {
        "id": "P",
        "name": "#3000",
        "currency": "GBP",
        "taxes_included": True,
        "created_at": "2025-06-15T08:00:00Z",
        "line_items": [
            {
                "id": "1",
                "sku": "X",
                "price": "3.33",
                "quantity": 3,
                "tax_lines": [{"title": "VAT 20%", "rate": "0.2", "price": "1.67"}],
            },
        ],
    }
    transactions = [
        {
            "id": "1",
            "kind": "sale",
            "status": "success",
            "gateway": "paypal",
            "amount": "3.33",
            "currency": "GBP",
            "created_at": "2025-06-15T08:00:00Z",
        },
        {
            "id": "2",
            "kind": "sale",
            "status": "success",
            "gateway": "paypal",
            "amount": "6.66",
            "currency": "GBP",
            "created_at": "2025-06-16T08:00:00Z",
        },
    ]
    first, second = build_journals(
        demo, [OrderMoney(order, transactions)], date(2025, 6, 15), date(2025, 6, 16)
    )
    assert first.balanced and second.balanced
    assert (first.debits, second.debits) == (D("3.33"), D("6.66"))

    def credit(journal, description):  # type: ignore[no-untyped-def]
        return sum((ln.credit for ln in journal.lines if ln.description == description), D(0))

    # 8.32 x 1/3 = 2.7733 → 2.77; 1.67 x 1/3 = 0.5566 → 0.56: 3.33 exactly, no evening needed.
    assert (credit(first, "sales"), credit(first, "tax standard")) == (D("2.77"), D("0.56"))
    assert credit(first, "sales") + credit(second, "sales") == D("8.32")
    assert credit(first, "tax standard") + credit(second, "tax standard") == D("1.67")


def test_a_refunded_part_of_a_line_without_its_tax_takes_its_share(demo: Mapping) -> None:
    # 3 x 10.00 with VAT 5.00 in all; one refunded with no total_tax given: 5.00 shared 1:2 is
    # 1.666… and 3.333…, floored 1.66 and 3.33; the leftover 0.01 goes to the larger remainder
    # (0.0066… against 0.0033…): 1.67 of tax refunded, 8.33 of refunds.
    order = {
        "id": "Q",
        "name": "#3001",
        "currency": "GBP",
        "taxes_included": True,
        "created_at": "2025-06-01T08:00:00Z",
        "line_items": [
            {
                "id": "1",
                "sku": "X",
                "price": "10.00",
                "quantity": 3,
                "tax_lines": [{"title": "VAT 20%", "rate": "0.2", "price": "5.00"}],
            },
        ],
    }
    refund = {
        "id": "R",
        "created_at": "2025-06-15T08:00:00Z",
        "refund_line_items": [{"line_item_id": "1", "quantity": 1, "subtotal": "10.00"}],
        "transactions": [
            {
                "id": "RT",
                "kind": "refund",
                "status": "success",
                "gateway": "paypal",
                "amount": "10.00",
                "currency": "GBP",
            }
        ],
    }
    (journal,) = build_journals(
        demo, [OrderMoney(order, [], [refund])], date(2025, 6, 15), date(2025, 6, 15)
    )
    assert journal.balanced
    lines = {ln.description: ln.debit for ln in journal.lines if ln.debit}
    assert lines == {"tax standard refunded": D("1.67"), "refunds": D("8.33")}


def test_a_refund_of_a_line_with_two_tax_lines_shares_the_tax_by_their_sizes(demo: Mapping) -> None:
    order = {
        "id": "S",
        "name": "#3002",
        "currency": "GBP",
        "taxes_included": True,
        "created_at": "2025-06-01T08:00:00Z",
        "line_items": [
            {
                "id": "1",
                "sku": "X",
                "price": "20.00",
                "quantity": 1,
                "tax_lines": [
                    {"title": "VAT 20%", "rate": "0.2", "price": "2.00"},
                    {"title": "VAT 5%", "rate": "0.05", "price": "1.00"},
                ],
            },
        ],
    }
    refund = {
        "id": "R",
        "created_at": "2025-06-15T08:00:00Z",
        "refund_line_items": [
            {"line_item_id": "1", "quantity": 1, "subtotal": "20.00", "total_tax": "1.00"}
        ],
        "transactions": [
            {
                "id": "RT",
                "kind": "refund",
                "status": "success",
                "gateway": "paypal",
                "amount": "20.00",
                "currency": "GBP",
            }
        ],
    }
    (journal,) = build_journals(
        demo, [OrderMoney(order, [], [refund])], date(2025, 6, 15), date(2025, 6, 15)
    )
    debits = {ln.description: ln.debit for ln in journal.lines if ln.debit}
    # 1.00 shared 2:1 → 0.666… and 0.333… → 0.66 + 0.01 (larger remainder) = 0.67, and 0.33.
    assert debits == {
        "tax standard refunded": D("0.67"),
        "tax reduced refunded": D("0.33"),
        "refunds": D("19.00"),
    }
    assert journal.balanced
