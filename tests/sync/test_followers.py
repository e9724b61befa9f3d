"""Which run of a watcher flow follows: the later-scheduled run takes over, a late one does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from stokline.store import Store
from stokline.sync.followers import FOLLOWER_NAME, Follower

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store("sqlite://") as store:
        yield store


def test_the_run_scheduled_later_takes_over_and_a_late_one_does_not(store: Store) -> None:
    follower = Follower(store, "demo-outdoor", "orders-inbox")
    assert follower.current() is None
    assert follower.still_following("a")  # nobody follows yet: nothing to hand over to
    assert follower.follow("a", T0)
    assert follower.still_following("a")

    assert follower.follow("b", T0 + timedelta(minutes=10))
    assert not follower.still_following("a")
    assert follower.still_following("b")

    # A run scheduled before b that started late (a worker was down) leaves b watching.
    assert not follower.follow("late", T0 + timedelta(minutes=5))
    assert follower.current() == (T0 + timedelta(minutes=10), "b")
    assert follower.follow("b", T0 + timedelta(minutes=10))  # registering again is harmless


def test_followers_are_per_client_and_watcher_and_leave_sync_cursors_alone(store: Store) -> None:
    Follower(store, "demo-outdoor", "orders-inbox").follow("a", T0)
    assert Follower(store, "peak-cycles", "orders-inbox").current() is None
    assert Follower(store, "demo-outdoor", "other-watcher").current() is None
    assert store.cursors.get("demo-outdoor", "orders") is None
    assert store.cursors.get("demo-outdoor", "orders-inbox", FOLLOWER_NAME) is not None


def test_an_unreadable_entry_counts_as_nobody_and_naive_times_are_refused(store: Store) -> None:
    store.cursors.set("demo-outdoor", "orders-inbox", "garbage", FOLLOWER_NAME)
    follower = Follower(store, "demo-outdoor", "orders-inbox")
    assert follower.current() is None
    with pytest.raises(ValueError, match="timezone-aware"):
        follower.follow("a", T0.replace(tzinfo=None))
    assert follower.follow("a", T0)
