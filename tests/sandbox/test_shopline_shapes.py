"""The shared order-shape generators: deterministic, well-formed, covering every shape."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stokline.sandbox.shopline.shapes import (
    FOLLOW_UP_MIX,
    draw_follow_ups,
    draw_order,
)

SKUS = ["TENT-2P-GRN", "SOCKS-M", "MUG-BLUE", "GAS-230", "MAP-OS-OL7", "GIFT-CARD-25"]
TITLES = {"GAS-230": "VAT 5%", "MAP-OS-OL7": "VAT 0%"}


def placed(status: str = "paid", total: str = "120.00") -> dict:
    """An order as the sandbox returns it, reduced to what the follow-ups read."""
    return {
        "financial_status": status,
        "total_price": total,
        "total_outstanding": "0.00" if status == "paid" else total,
        "line_items": [{"id": "417", "quantity": 2}, {"id": "418", "quantity": 1}],
        "shipping_lines": [{"price": "3.95", "discounted_price": "3.95"}],
    }


def test_same_seed_draws_the_same_orders() -> None:
    one = [draw_order(random.Random(5), SKUS, tax_titles=TITLES) for _ in range(3)]
    two = [draw_order(random.Random(5), SKUS, tax_titles=TITLES) for _ in range(3)]
    assert one == two


@given(st.randoms(use_true_random=False))
def test_drawn_orders_are_well_formed(rng: random.Random) -> None:
    body = draw_order(rng, SKUS, tax_titles=TITLES)
    skus = [line["sku"] for line in body["lines"]]
    assert skus and len(set(skus)) == len(skus)
    assert "GIFT-CARD-25" not in skus
    assert all(line["quantity"] >= 1 for line in body["lines"])
    assert body["customer"].get("email") or body["customer"].get("phone")
    if "phone_only" in body["shapes"]:
        assert "email" not in body["customer"]
    if "authorized" in body["shapes"]:
        assert body["authorize"] is True and body["paid"] is False
    if "multi_rate" in body["shapes"]:
        assert len({TITLES.get(s, "VAT 20%") for s in skus}) > 1
    assert body.get("omit") in (None, "keys", "null")


@given(st.randoms(use_true_random=False))
def test_captures_of_an_authorisation_take_exactly_what_is_outstanding(
    rng: random.Random,
) -> None:
    actions = draw_follow_ups(rng, placed("authorized", "120.00"), skus=SKUS)
    captures = [a for a in actions if a["action"] == "capture"]
    assert 1 <= len(captures) <= 3
    assert captures[-1]["amount"] is None  # the last part takes what is left
    parts = [Decimal(a["amount"]) for a in captures[:-1]]
    assert all(p > 0 for p in parts) and sum(parts, Decimal(0)) < Decimal("120.00")
    days = [a["days_later"] for a in captures]
    assert days == sorted(days)
    assert len({a["reuse_deal_id"] for a in captures}) == 1


@given(st.randoms(use_true_random=False), st.sampled_from(["paid", "unpaid", "authorized"]))
def test_follow_ups_ask_for_at_most_one_refund_or_cancel(rng: random.Random, status: str) -> None:
    order = placed(status)
    actions = draw_follow_ups(rng, order, skus=SKUS)
    ending = [a for a in actions if a["action"] in ("refund", "cancel")]
    assert len(ending) <= 1
    if status == "unpaid":
        assert any(a["action"] == "pay" for a in actions)
    quantities = {li["id"]: li["quantity"] for li in order["line_items"]}
    for action in ending:
        for line in (action.get("body") or {}).get("lines") or []:
            assert 1 <= line["quantity"] <= quantities[line["line_item_id"]]
            assert line["type"] in ("Unshipped", "Returned")
    # An edit comes first, and only paid orders' edits that raise the total are captured after.
    edits = [i for i, a in enumerate(actions) if a["action"] == "edit"]
    assert edits in ([], [0])


def test_every_follow_up_is_drawn_in_a_default_mix() -> None:
    rng = random.Random(9)
    seen: set[str] = set()
    for n in range(3000):
        status = ("paid", "unpaid", "authorized")[n % 3]
        for action in draw_follow_ups(rng, placed(status), skus=SKUS):
            name = action["action"]
            if name == "refund":
                body = action["body"]
                if not body:
                    name = "refund_full"
                elif body.get("amount"):
                    name = "refund_amount"
                elif not body.get("lines"):
                    name = "refund_shipping"
                else:
                    name = f"refund_{action['when']}"
            seen.add(name)
    expected = {k for k, v in FOLLOW_UP_MIX.items() if v > 0} | {"pay", "capture"}
    assert expected <= seen
