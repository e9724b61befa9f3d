"""The drift rotation's arithmetic: slice sizes, wrapping, cursors lost or out of date."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from stokline.sync.stock.drift import DriftRotation

HOUR = timedelta(hours=1)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ITEMS = [str(i) for i in range(1, 101)]  # numeric ids: the ring runs 1, 2, …, 10, 11, …


def cursor(after: str | None, at: datetime) -> str:
    return json.dumps({"after": after, "at": at.isoformat()})


def test_no_cursor_or_an_unusable_one_reads_every_item() -> None:
    later = T0 + timedelta(minutes=5)
    for stored in (None, "", "not json", '{"after": "3"}', cursor("3", T0.replace(tzinfo=None))):
        chosen, _ = DriftRotation(stored, HOUR, later).slice(ITEMS)
        assert sorted(chosen, key=int) == sorted(ITEMS, key=int), stored
    # A clock that went backwards: everything, rather than nothing for a long time.
    chosen, _ = DriftRotation(cursor("3", later), HOUR, T0).slice(ITEMS)
    assert len(chosen) == len(ITEMS)


def test_a_slice_is_the_elapsed_share_rounded_up_and_goes_on_from_the_cursor() -> None:
    rotation = DriftRotation(cursor("9", T0), HOUR, T0 + timedelta(minutes=6))
    chosen, stored = rotation.slice(reversed(ITEMS))
    assert chosen == [str(i) for i in range(10, 20)]  # 6 min of 60: 10 of 100, after item 9
    assert json.loads(stored) == {"after": "19", "at": (T0 + timedelta(minutes=6)).isoformat()}
    tiny = DriftRotation(cursor("9", T0), HOUR, T0 + timedelta(seconds=1))
    assert tiny.slice(ITEMS)[0] == ["10"]  # never less than its share: one item


def test_the_ring_wraps_and_a_cursor_on_a_removed_item_still_finds_its_place() -> None:
    chosen, stored = DriftRotation(cursor("95", T0), HOUR, T0 + timedelta(minutes=6)).slice(ITEMS)
    assert chosen == ["96", "97", "98", "99", "100", "1", "2", "3", "4", "5"]
    assert json.loads(stored)["after"] == "5"
    without = [i for i in ITEMS if i != "40"]
    chosen, _ = DriftRotation(cursor("40", T0), HOUR, T0 + timedelta(minutes=3)).slice(without)
    assert chosen[0] == "41"


def test_the_schedules_interval_shortens_the_round() -> None:
    five = DriftRotation(cursor("0", T0), HOUR, T0 + timedelta(minutes=5), timedelta(minutes=5))
    assert five.round == timedelta(minutes=55) and five.share(110) == 10
    done = DriftRotation(cursor("0", T0), HOUR, T0 + timedelta(minutes=55), timedelta(minutes=5))
    assert done.share(1000) == 1000
    # Passes 45 minutes apart: an item read now must be read by the next one, 45 minutes on
    # (the one after comes too late), so a round takes 15 minutes and each pass reads them all.
    sparse = DriftRotation(cursor("0", T0), HOUR, T0 + timedelta(minutes=45), timedelta(minutes=45))
    assert sparse.round == timedelta(minutes=15) and sparse.share(100) == 100
    daily = DriftRotation(cursor("0", T0), HOUR, T0 + timedelta(minutes=5), timedelta(days=1))
    assert daily.share(60) == 60  # a schedule sparser than drift_every: every pass reads all


def test_an_empty_catalogue_reads_nothing_and_keeps_its_place() -> None:
    chosen, stored = DriftRotation(cursor("7", T0), HOUR, T0 + HOUR).slice([])
    assert chosen == [] and json.loads(stored)["after"] == "7"
