"""A refund made before the order's import credits no goods on the Stokly sale order.

The orders sync imports only the units paid and not refunded, so the units a refund gave back
before the import were never on the sale order. Its credit note records the money (and the
refund payment) without crediting a line: crediting one would mark kept units, still to ship,
as refunded. A refund made after the import credits the lines it names, as always.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.sync.conftest import World
from tests.sync.finance.payments.test_sync import SOCKS, TENT, Finance, money


@pytest.fixture
def shop(world: World) -> Finance:
    return Finance(world)


def _lines(shop: Finance, order_id: str) -> dict[str, int]:
    sale = shop.sale_order(order_id)
    [doc] = [o for o in shop.world.stokly_state.saleorders if o["saleOrderId"] == sale]
    return {item["itemSku"]: item["quantity"] for item in doc["items"] if not item.get("parentId")}


def test_units_refunded_before_import_are_not_credited_again(shop: Finance, world: World) -> None:
    order = shop.place((TENT, 1), (SOCKS, 3))
    socks = next(li for li in order["line_items"] if li["sku"] == SOCKS)
    before = shop.refund(
        order["id"],
        lines=[{"line_item_id": socks["id"], "quantity": 1, "restock_type": "cancel"}],
    )
    world.run()
    assert _lines(shop, order["id"])[SOCKS] == 2  # the refunded sock never reached Stokly

    shop.payments()
    [note] = shop.refunds_of(order["id"])
    paid_back = sum((money(t["amount"]) for t in before["transactions"]), Decimal(0))
    assert money(note["amount"]) == paid_back
    assert note["items"] == []  # no kept sock is marked refunded
    assert "before the order was imported" in (note.get("reason") or "")

    after = shop.refund(
        order["id"],
        lines=[{"line_item_id": socks["id"], "quantity": 1, "restock_type": "cancel"}],
    )
    shop.payments()
    later = next(r for r in shop.refunds_of(order["id"]) if r["sourceReferenceId"] == after["id"])
    assert [i["quantity"] for i in later["items"]] == [1]
    assert money(later["items"][0]["amount"]) == money(later["amount"])
