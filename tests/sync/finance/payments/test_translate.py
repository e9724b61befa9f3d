"""SHOPLINE money → Stokly payment records and credit notes: the pure parts, on demo.yaml."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stokline.config import load_mapping
from stokline.connectors.shopline.models import Order, Refund, Transaction
from stokline.connectors.stokly.models import SaleOrderItem
from stokline.sync.finance.payments.translate import (
    Period,
    apportion,
    group_by_refund,
    movement_of,
    payment_payload,
    refund_payload,
    refund_reason,
)

ROOT = Path(__file__).resolve().parents[4]
MAPPING = load_mapping(ROOT / "mappings/demo.yaml")
KLARNA = next(g for g in MAPPING.payments.gateways if g.gateway == "klarna")
LONDON = ZoneInfo("Europe/London")


def _order(**fields: Any) -> Order:
    return Order.model_validate({"id": "1", "name": "#1001", "currency": "GBP", **fields})


def test_only_successful_money_counts_and_the_day_is_the_clients() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 1), LONDON)
    order = _order(payment_gateway_names=["klarna"])

    def tx(**fields: Any) -> Transaction:
        return Transaction.model_validate(
            {"id": "9", "kind": "sale", "status": "success", "amount": Decimal("10.00"), **fields}
        )

    # 23:30 UTC on 30 June is already 1 July in London (summer time).
    moved = movement_of(order, tx(processed_at="2026-06-30T23:30:00+00:00"), period)
    assert moved is not None and moved.day == date(2026, 7, 1) and moved.gateway == "klarna"
    assert moved.gateway_transaction_id == "shopline:9" and moved.signed == Decimal("10.00")
    assert movement_of(order, tx(status="failure"), period) is None
    assert movement_of(order, tx(kind="authorization"), period) is None
    back = movement_of(order, tx(kind="refund", channel_refund_id="re_1"), period)
    assert back is not None and back.signed == Decimal("-10.00")
    assert back.gateway_transaction_id == "re_1" and back.day is None


def test_line_amounts_are_apportioned_to_the_refunded_total_exactly() -> None:
    items = [
        {"lineId": "a", "amount": Decimal("10.00")},
        {"lineId": "b", "amount": Decimal("20.00")},
    ]
    assert [i["amount"] for i in apportion(items, Decimal("30.00"))] == [
        Decimal("10.00"),
        Decimal("20.00"),
    ]
    shared = [i["amount"] for i in apportion(items, Decimal("10.00"))]
    assert shared == [Decimal("3.33"), Decimal("6.67")] and sum(shared) == Decimal("10.00")
    assert apportion([], Decimal("5.00")) == []


def test_the_reason_joins_the_note_and_adjustment_reasons_once() -> None:
    refund = Refund.model_validate(
        {
            "id": "r1",
            "note": "Damaged",
            "order_adjustments": [{"reason": "Shipping refund"}, {"reason": "Damaged"}],
        }
    )
    assert refund_reason(refund) == "Damaged; Shipping refund"
    assert refund_reason(Refund.model_validate({"id": "r2", "note": " "})) is None


def test_the_period_is_whole_local_days_even_across_a_clock_change() -> None:
    summer = Period.of(MAPPING, date(2026, 7, 1), date(2026, 7, 2))
    assert summer.bounds() == (
        datetime(2026, 6, 30, 23, tzinfo=UTC),
        datetime(2026, 7, 2, 23, tzinfo=UTC),
    )
    # The clocks go forward on 29 March 2026: that day is 23 hours long.
    spring = Period.of(MAPPING, date(2026, 3, 29), date(2026, 3, 29))
    first, after = spring.bounds()
    assert first == datetime(2026, 3, 29, tzinfo=UTC) and after - first == timedelta(hours=23)
    assert spring.day_of(datetime(2026, 3, 29, 22, 59)) == date(2026, 3, 29)  # naive is UTC
    assert date(2026, 3, 30) not in spring and spring.label == "2026-03-29"


def _refund_move(tx_id: str, amount: str, period: Period, **extra: Any) -> Any:
    tx = Transaction.model_validate(
        {
            "id": tx_id,
            "kind": "refund",
            "status": "success",
            "gateway": "klarna",
            "amount": Decimal(amount),
            "processed_at": "2026-07-01T10:00:00+01:00",
            **extra,
        }
    )
    return movement_of(_order(), tx, period)


def test_a_payment_record_names_the_gateways_ids_and_is_in_pence_and_utc() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 1), LONDON)
    tx = Transaction.model_validate(
        {
            "id": "7",
            "kind": "capture",
            "status": "success",
            "amount": Decimal("12.345"),
            "processed_at": "2026-07-01T09:00:00+01:00",
            "payment_details": {"pay_channel_deal_id": "psp_7", "pay_seq": "seq_7"},
        }
    )
    paid = movement_of(_order(payment_gateway_names=["klarna"]), tx, period)
    assert paid is not None
    assert payment_payload(paid, KLARNA) == {
        "kind": "payment",
        "method": KLARNA.stokly_method,
        "gateway": "klarna",
        "transactionId": "psp_7",
        "amount": Decimal("12.35"),
        "currency": "GBP",
        "paidAt": "2026-07-01T08:00:00+00:00",
        "reference": "seq_7",
    }
    back = _refund_move("8", "5.00", period, channel_refund_id="re_8")
    body = payment_payload(back, KLARNA, refund_id="r1")
    assert (body["kind"], body["transactionId"], body["reference"]) == ("refund", "re_8", "r1")


def test_refund_movements_are_grouped_under_their_refund_first_seen_first() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 1), LONDON)
    r1 = Refund.model_validate({"id": "r1", "transactions": [{"id": "t1"}, {"id": "t2"}]})
    r2 = Refund.model_validate({"id": "r2", "transactions": [{"id": "t3"}]})
    t1, t2, t3, t9 = (_refund_move(t, "1.00", period) for t in ("t1", "t2", "t3", "t9"))
    grouped, loose = group_by_refund([r1, r2], [t3, t1, t9, t2])
    assert [(r.id, [m.transaction_id for m in ms]) for r, ms in grouped] == [
        ("r2", ["t3"]),
        ("r1", ["t1", "t2"]),
    ]
    assert loose == [t9]


def test_a_credit_note_finds_its_lines_by_sku_and_adds_up_to_the_money_returned() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 1), LONDON)
    order = _order(
        line_items=[
            # Through the override TENT-2P-GRN → ACME-TENT-2P-GREEN, matched case-insensitively.
            {"id": "L1", "sku": "tent-2p-grn", "quantity": 3, "price": Decimal("100.00")},
            {"id": "L2", "sku": "GIFT-CARD-25", "quantity": 1, "price": Decimal("25.00")},
        ]
    )
    stokly_lines = [
        SaleOrderItem(lineId="s1", itemSku="ACME-TENT-2P-GREEN", quantity=Decimal(2)),
        SaleOrderItem(lineId="c1", itemSku="ACME-TENT-2P-GREEN", quantity=5, parentId="s1"),
        SaleOrderItem(lineId="s2", itemSku="ACME-TENT-2P-GREEN", quantity=Decimal(1)),
    ]
    refund = Refund.model_validate(
        {
            "id": "r1",
            "note": "Damaged",
            "refund_line_items": [
                {"line_item_id": "L1", "quantity": 3, "subtotal": Decimal("300.00")},
                {"line_item_id": "L2", "quantity": 1, "subtotal": Decimal("25.00")},
            ],
            "order_adjustments": [
                {"kind": "shipping_refund", "amount": "-4.99", "reason": "Shipping refund"}
            ],
        }
    )
    # The merchant returned 320.00, not the 329.99 the lines and shipping add up to.
    back = _refund_move("t1", "320.00", period, channel_refund_id="re_1")
    body = refund_payload(MAPPING, order, refund, stokly_lines, [(back, KLARNA)])
    assert body["amount"] == Decimal("320.00") and body["shippingAmount"] == Decimal("4.99")
    # Three tents spill from the two-tent line onto the next line of that SKU, never onto the
    # composite's component; 315.01 shared 2:1 in pence.
    assert body["items"] == [
        {"lineId": "s1", "quantity": 2, "amount": Decimal("210.01")},
        {"lineId": "s2", "quantity": 1, "amount": Decimal("105.00")},
    ]
    assert sum(i["amount"] for i in body["items"]) + body["shippingAmount"] == body["amount"]
    assert body["reason"] == (
        "Damaged; Shipping refund; refunded lines not on the Stokly sale order: GIFT-CARD-25 x1"
    )
    assert body["payments"] == [
        {
            "method": KLARNA.stokly_method,
            "gateway": "klarna",
            "amount": Decimal("320.00"),
            "transactionId": "re_1",
            "paidAt": "2026-07-01T09:00:00+00:00",
        }
    ]
    assert (body["sourceReferenceId"], body["currency"]) == ("r1", "GBP")


def test_prices_without_tax_refund_the_tax_with_the_lines_and_shipping() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 1), LONDON)
    order = _order(
        taxes_included=False,
        line_items=[{"id": "L1", "sku": "ACME-TENT-2P-GREEN", "quantity": 1}],
    )
    refund = Refund.model_validate(
        {
            "id": "r1",
            "refund_line_items": [
                {
                    "line_item_id": "L1",
                    "quantity": 1,
                    "subtotal": Decimal("100.00"),
                    "total_tax": Decimal("20.00"),
                }
            ],
            "order_adjustments": [
                {"kind": "shipping_refund", "amount": "-5.00", "tax_amount": "-1.00"}
            ],
        }
    )
    back = _refund_move("t1", "126.00", period)
    lines = [SaleOrderItem(lineId="s1", itemSku="acme-tent-2p-green", quantity=Decimal(1))]
    body = refund_payload(MAPPING, order, refund, lines, [(back, KLARNA)])
    assert body["shippingAmount"] == Decimal("6.00")
    assert body["items"] == [{"lineId": "s1", "quantity": 1, "amount": Decimal("120.00")}]
    assert "reason" not in body
