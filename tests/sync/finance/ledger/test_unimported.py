"""Money of orders not in Stokly yet (issue 15, defect 12), against both sandboxes.

Finance reconciles from Stokly, so the ledger posts only the money of orders Stokly has. By
default (``syncs.finance.unimported: hold``) the others' payments and refunds are held out of
the day's journal; the report lists them (``unimported``, ``unimported_total``,
``unimported_policy``) and finance gets a ``payout_variance`` exception naming the orders and
the amount. The first run after the order's import posts its money as an adjustment of its own
day and resolves the exception. With ``unimported: suspense`` the money is posted at once to
``accounts.suspense`` against the gateway, and moved to sales and tax by an adjustment once the
order is in Stokly.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from stokline.config import Mapping
from tests.sync.conftest import World
from tests.sync.finance.ledger.test_sync import (
    DAY,
    _place,
    in_stokly,
    post,
    stokly_journals,
    stokly_lines,
)

KEY = "demo-outdoor:2025-06-15:shopline_payments:GBP"
NEXT = DAY + timedelta(days=1)
D = Decimal


def two_orders(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two card orders of the day: one in Stokly (20.00 + 3.95), one not (120.00 + 3.95)."""
    imported = _place(
        world,
        [("TENT-2P-GRN", 1, "20.00")],
        "Royal Mail Tracked 48",
        "shopline_payments",
        "2025-06-15T09:00:00+00:00",
    )
    waiting = _place(
        world,
        [("TENT-2P-GRN", 1, "120.00")],
        "Royal Mail Tracked 48",
        "shopline_payments",
        "2025-06-15T10:00:00+00:00",
        imported=False,
    )
    return imported, waiting


def suspense_mapping(world: World) -> Mapping:
    return world.mapping_with(
        lambda t: t.replace(
            "    approval: required\n", "    approval: required\n    unimported: suspense\n"
        ).replace('      refunds: "4090"\n', '      refunds: "4090"\n      suspense: "1290"\n')
    )


def test_an_order_not_in_stokly_is_held_listed_and_posted_once_imported(world: World) -> None:
    _, waiting = two_orders(world)

    preview = post(world, start=DAY, end=DAY, dry_run=True)
    assert preview.unimported == [
        {
            "order": waiting["name"],
            "shopline_id": waiting["id"],
            "gateway": "shopline_payments",
            "day": "2025-06-15",
            "amount": "123.95",
        }
    ]
    assert preview.unimported_total == D("123.95") and preview.unimported_policy == "hold"
    (journal,) = preview.journals
    assert journal.debits == D("23.95")  # the imported order only
    summary = {row["metric"]: row["value"] for row in preview.summary_rows()}
    assert summary["money of orders not in Stokly"] == "123.95 (1 order-day(s))"
    assert summary["orders not in Stokly are"] == "held out of the journals until imported"

    report = post(world, start=DAY, end=DAY)
    assert report.posted == 1 and report.unimported_total == D("123.95")
    assert ("1210", "receipts shopline_payments", "23.95", "0") in stokly_lines(
        stokly_journals(world)[KEY]
    )
    (exception,) = world.store.exceptions.list(client="demo-outdoor", code="payout_variance")
    assert exception.team == "finance" and exception.status == "open"
    assert waiting["name"] in exception.message and "123.95 GBP" in exception.message
    assert "held out of the journal" in exception.message
    assert exception.payload["amount"] == "123.95"
    assert exception.payload["policy"] == "hold"
    assert report.exceptions[0]["code"] == "payout_variance"

    # Still not imported: the next day's run holds it still, and posts nothing for the 15th.
    still = post(world, start=NEXT, end=NEXT)
    assert still.posted == 0 and still.unimported_total == D("123.95")
    assert f"{KEY}:adj1" not in stokly_journals(world)

    # The orders sync imports it: the next run posts it as an adjustment of the 15th, once.
    in_stokly(world, waiting)
    later = post(world, start=NEXT, end=NEXT)
    assert later.posted == 1 and later.adjustments == 1
    assert later.unimported == [] and later.unimported_total == 0
    adjustment = stokly_journals(world)[f"{KEY}:adj1"]
    assert adjustment["date"] == "2025-06-15"
    assert ("1210", "receipts shopline_payments", "123.95", "0") in stokly_lines(adjustment)
    assert world.store.exceptions.get(exception.id).status == "resolved"  # type: ignore[union-attr]
    assert post(world, start=NEXT, end=NEXT).posted == 0
    assert post(world, start=DAY, end=DAY).posted == 0


def test_its_refund_is_held_with_it(world: World) -> None:
    _, waiting = two_orders(world)
    response = world.shop.post(
        f"/_sandbox/orders/{waiting['id']}/refund", json={"amount": "20.00", "note": "goodwill"}
    )
    assert response.status_code == 200, response.text
    # The sandbox refunds on its own clock: the refund's day is today in London.
    refund_day = date.fromisoformat(
        datetime.fromisoformat(response.json()["refund"]["created_at"].replace("Z", "+00:00"))
        .astimezone(world.mapping.client.tz)
        .date()
        .isoformat()
    )
    key = f"demo-outdoor:{refund_day.isoformat()}:shopline_payments:GBP"
    # (The sandbox's seeded orders of today are not in Stokly either: only ours is looked at.)
    report = post(world, start=refund_day, end=refund_day)
    assert [r for r in report.unimported if r["shopline_id"] == waiting["id"]] == [
        {
            "order": waiting["name"],
            "shopline_id": waiting["id"],
            "gateway": "shopline_payments",
            "day": refund_day.isoformat(),
            "amount": "-20.00",
        }
    ]
    assert key not in stokly_journals(world)
    in_stokly(world, waiting)
    report = post(world, start=refund_day, end=refund_day)
    assert not [r for r in report.unimported if r["shopline_id"] == waiting["id"]]
    assert stokly_lines(stokly_journals(world)[key]) >= {
        ("1210", "refunds shopline_payments", "0", "20.00")
    }


def test_with_suspense_the_money_is_posted_there_and_moved_once_imported(world: World) -> None:
    mapping = suspense_mapping(world)
    _, waiting = two_orders(world)
    report = post(world, mapping, start=DAY, end=DAY)
    assert report.unimported_policy == "suspense:1290"
    assert report.unimported_total == D("123.95") and report.posted == 1
    lines = stokly_lines(stokly_journals(world)[KEY])
    assert ("1210", "receipts shopline_payments", "147.90", "0") in lines
    assert ("1290", "unimported orders", "0", "123.95") in lines
    (exception,) = world.store.exceptions.list(client="demo-outdoor", code="payout_variance")
    assert "suspense account 1290" in exception.message

    in_stokly(world, waiting)
    later = post(world, mapping, start=NEXT, end=NEXT)
    assert later.posted == 1 and later.adjustments == 1
    moved = stokly_lines(stokly_journals(world)[f"{KEY}:adj1"])
    # 120.00 + 3.95 with VAT 20.00 + 0.66: out of suspense into sales, shipping and VAT.
    assert moved == {
        ("1290", "unimported orders", "123.95", "0"),
        ("4000", "sales", "0", "100.00"),
        ("4010", "shipping", "0", "3.29"),
        ("2200", "tax standard", "0", "20.66"),
    }
    assert world.store.exceptions.get(exception.id).status == "resolved"  # type: ignore[union-attr]
