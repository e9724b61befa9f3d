"""What the two watcher flows share: a bounded window, a poll loop that hands over, the totals.

A watcher (flows/orders_events.py watches the webhook inbox, flows/stock_events.py the Stokly
change feed) is a flow run that polls for ``minutes`` and does a small batch of work for each
poll that found some. Its deployment starts a successor every window. Starting a flow-run
process takes seconds (about 10 on a busy 2-core machine), so a run that stopped before its
successor started would leave a gap at every handover. Instead a run keeps polling up to
`TAKEOVER_GRACE_SECONDS` past its window and stops at its next poll once its successor has
registered as the client's follower (`stokline.sync.followers.Follower`); a run scheduled
earlier than the current follower (one that started late) does not take over and exits at once.
The deployments carry no Prefect concurrency limit: the follower is the one run that watches
(stokline.ops.deployments says why).

`Watch` is that loop; what a poll reads and what a batch does stay in each flow.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from prefect.runtime import flow_run

from stokline.sync.followers import Follower

TAKEOVER_GRACE_SECONDS = 60.0
"""How long a run keeps polling past its window while its successor starts (at most a tenth of
the window); it stops as soon as the successor follows."""
MIN_MINUTES = 1.0
"""A run that started late still polls this long."""


def stop_time(minutes: float) -> float:
    """When this run stops polling at the latest (monotonic clock): its scheduled start plus
    ``minutes`` and the takeover grace, but never sooner than `MIN_MINUTES` (or ``minutes``, if
    shorter) from now. It stops sooner when its successor takes over."""
    now = time.monotonic()
    window = minutes * 60
    scheduled = flow_run.scheduled_start_time
    late = 0.0
    if scheduled is not None:
        late = max(0.0, (datetime.now(UTC) - scheduled).total_seconds())
    left = window + min(TAKEOVER_GRACE_SECONDS, window / 10) - late
    return now + max(left, min(MIN_MINUTES * 60, window))


class WatchTotals(ABC):
    """What one watcher run did, summed over its batches; each watcher adds its own counts and
    says in `result` in which order they are shown."""

    def __init__(self) -> None:
        self.polls = 0
        self.batches = 0
        self.numbers: dict[str, int] = {}
        self.slowest = 0.0
        self.handed_over = False

    def add_batch(self, numbers: dict[str, int], seconds: float) -> None:
        """One batch's numbers (the event's), summed into the run's."""
        self.batches += 1
        self.slowest = max(self.slowest, seconds)
        for name, value in numbers.items():
            self.numbers[name] = self.numbers.get(name, 0) + value

    @abstractmethod
    def result(self) -> dict[str, int]:
        """The run's numbers: the flow's return value and the summary artifact's rows."""

    def rows(self, client: str) -> list[dict[str, Any]]:
        """The summary artifact's table."""
        rows = [("client", client), *self.result().items()]
        rows.append(("slowest batch (seconds)", round(self.slowest, 2)))
        return [{"metric": name, "value": value} for name, value in rows]


class Watch:
    """This flow run's polls: one every ``poll_seconds`` until ``stop_at`` (monotonic clock, see
    `stop_time`), or until another run follows in its place (``totals.handed_over``)."""

    def __init__(
        self, follower: Follower, totals: WatchTotals, *, stop_at: float, poll_seconds: float
    ) -> None:
        self.follower = follower
        self.totals = totals
        self.stop_at = stop_at
        self.poll_seconds = poll_seconds
        self.run_id = str(flow_run.id)
        self._wait: float | None = None

    def follow(self) -> bool:
        """Register this run as the follower; False when a run scheduled later follows already."""
        scheduled = flow_run.scheduled_start_time or datetime.now(UTC)
        return self.follower.follow(self.run_id, scheduled)

    def back_off(self, seconds: float) -> None:
        """Wait ``seconds`` after this poll instead of the rest of the poll interval."""
        self._wait = seconds

    async def polls(self) -> AsyncIterator[float]:
        """When each poll began (monotonic clock); the pause after it is this iterator's."""
        while time.monotonic() < self.stop_at:
            if not self.follower.still_following(self.run_id):
                self.totals.handed_over = True
                return
            began = time.monotonic()
            self.totals.polls += 1
            yield began
            if self._wait is not None:
                wait, self._wait = self._wait, None
                await asyncio.sleep(wait)
                continue
            pause = self.poll_seconds - (time.monotonic() - began)
            await asyncio.sleep(max(0.0, min(pause, self.stop_at - time.monotonic())))
