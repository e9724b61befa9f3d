"""A payment captured over several days, through both sandboxes (issue 15, defect 4).

An order authorised for 123.95 (a 120.00 tent and Royal Mail 3.95) is captured 60.00 on the
15th and the rest on the 16th, by a gateway that gives both captures one deal id. The night of
the 15th only the first capture exists: the 15th's journal must balance and post what was
captured (not block the card journal of that day); the 16th posts the rest, the 15th is never
adjusted, and the two days add up to the order. Another card order of the 15th is posted with it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.sync.conftest import World
from tests.sync.finance.ledger.test_sync import DAY, _place, post, stokly_journals, stokly_lines

KEY = "demo-outdoor:2025-06-15:shopline_payments:GBP"
NEXT_KEY = "demo-outdoor:2025-06-16:shopline_payments:GBP"
D = Decimal


def credited(lines: set[tuple[str, str, str, str]], description: str) -> Decimal:
    return sum((D(cr) - D(dr) for _, d, dr, cr in lines if d == description), D(0))


def test_each_day_posts_what_it_captured_and_the_days_add_up(world: World) -> None:
    other = _place(
        world,
        [("TENT-2P-GRN", 1, "20.00")],
        "Royal Mail Tracked 48",
        "shopline_payments",
        "2025-06-15T08:00:00+00:00",
    )
    order = _place(
        world,
        [("TENT-2P-GRN", 1, "120.00")],
        "Royal Mail Tracked 48",
        "shopline_payments",
        "2025-06-15T09:00:00+00:00",
    )
    store = world.shopline_app.state.shopline.store
    stored = store.get("order", order["id"])
    (sale,) = stored["_transactions"]
    auth = {**sale, "id": f"{sale['id']}0", "kind": "authorization"}
    first = {**sale, "id": f"{sale['id']}1", "kind": "capture", "amount": "60.00"}
    stored["_transactions"] = [auth, first]
    stored["financial_status"] = "partially_paid"
    stored["total_outstanding"] = "63.95"
    store.update("order", order["id"], stored)

    night = post(world, start=DAY, end=DAY)
    assert night.ok and night.posted == 1 and not night.refused and night.exceptions == []
    day1 = stokly_lines(stokly_journals(world)[KEY])
    # 23.95 of the other order and 60.00 captured of this one.
    assert ("1210", "receipts shopline_payments", "83.95", "0") in day1

    at = "2025-06-16T10:00:00+00:00"
    second = {
        **sale,
        "id": f"{sale['id']}2",
        "kind": "capture",
        "amount": "63.95",
        "processed_at": at,
        "created_at": at,
    }
    stored["_transactions"] = [auth, first, second]
    stored["financial_status"] = "paid"
    stored["total_outstanding"] = "0.00"
    stored["updated_at"] = at  # a transaction updates its order, as on SHOPLINE
    store.update("order", order["id"], stored)

    following = post(world, start=DAY + timedelta(days=1), end=DAY + timedelta(days=1))
    assert following.posted == 1 and following.adjustments == 0
    day2 = stokly_lines(stokly_journals(world)[NEXT_KEY])
    assert ("1210", "receipts shopline_payments", "63.95", "0") in day2
    # Both days again: nothing to adjust, the 15th stays as posted.
    both = post(world, start=DAY, end=DAY + timedelta(days=1))
    assert both.posted == 0 and both.already_posted == 2
    # The order (120.00 + 3.95, VAT 20.00 + 0.66) and the other (20.00 + 3.95, VAT 3.33 +
    # 0.66) are recognised in full over the two days.
    assert credited(day1, "sales") + credited(day2, "sales") == D("100.00") + D("16.67")
    assert credited(day1, "tax standard") + credited(day2, "tax standard") == D("20.66") + D("3.99")
    assert credited(day1, "shipping") + credited(day2, "shipping") == D("3.29") * 2
    assert other["id"] != order["id"]
