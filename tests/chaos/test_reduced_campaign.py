"""The reduced reliability campaign, in `make test`: hostile faults, kills mid-write, receiver
restarts, duplicated and reordered webhooks, orders of every shape with their refunds, edits and
captures in parts — and then every invariant must hold.

The campaign runs once for the module (about half a minute); each invariant is its own test, so a
failure names the property that broke and lists what broke it. `test_the_campaign_broke_things`
makes sure the campaign really did what it claims, so a green run is not a quiet one.
"""

from __future__ import annotations

import pytest

from benchmarks.chaos.invariants import Invariant, Snapshot
from benchmarks.chaos.reduced import CRASH_POINTS, run_reduced
from benchmarks.chaos.report import CampaignResult

pytestmark = pytest.mark.slow

INVARIANTS = (
    "orders",
    "refunds_not_shipped",
    "money",
    "shipments",
    "stock",
    "stock_items",
    "ledger",
    "inbox",
    "exceptions",
)


@pytest.fixture(scope="module")
def campaign(credentials: dict[str, str]) -> tuple[CampaignResult, Snapshot]:
    return run_reduced(credentials)


def invariant(campaign: tuple[CampaignResult, Snapshot], key: str) -> Invariant:
    return next(inv for inv in campaign[0].invariants if inv.key == key)


@pytest.mark.parametrize("key", INVARIANTS)
def test_invariant_holds_after_the_campaign(
    campaign: tuple[CampaignResult, Snapshot], key: str
) -> None:
    found = invariant(campaign, key)
    assert found.passed, f"{found.title}:\n" + "\n".join(found.problems)


def test_the_campaign_broke_things(campaign: tuple[CampaignResult, Snapshot]) -> None:
    result, _ = campaign
    done = result.activity
    killed = {entry.split()[0] for entry in done["passes_killed_mid_write"]}
    assert killed == set(CRASH_POINTS), done["passes_killed_mid_write"]
    assert done["receiver_restarts"] == 3
    assert done["passes_cut_short_by_faults"] > 0  # the faults did bite
    assert done["pass_errors"] == []
    assert done["settled"], "the syncs did not settle once the faults stopped"
    traffic = done["traffic"]
    for action in ("placed", "parcels_dispatched", "goods_receipts"):
        assert traffic.get(action, 0) > 0, f"no {action} in {traffic}"
    # Orders of many shapes, and follow-ups that refund them, through the shared shapes.
    shapes = done["order_shapes"]
    assert len(set(shapes) - {"plain"}) >= 6, shapes
    refunds = {k: v for k, v in done["follow_ups"].items() if k.startswith(("refund", "cancel"))}
    assert sum(v for k, v in refunds.items() if not k.endswith(("refused", "given_up"))) > 0
    # SHOPLINE sells four Stokly items on two variants each (benchmarks.chaos.collisions).
    items = invariant(campaign, "stock_items").counts
    assert items["collided_items"] == items["collisions_reported"] == 4
    inbox = invariant(campaign, "inbox").counts
    assert inbox["duplicate_copies"] > 0
    assert inbox["reordered"] > 0
    assert inbox["failed_attempts"] > 0  # deliveries hit the receiver while it was down


def test_the_report_prints_every_invariant(campaign: tuple[CampaignResult, Snapshot]) -> None:
    text = campaign[0].render()
    for inv in campaign[0].invariants:
        assert inv.title in text
    assert "@" not in text  # no buyer's email reaches the report
