"""The rotating drift read: which SHOPLINE levels a full stock pass reads besides those it pushes.

A full pass must read the level of every inventory item it pushes (to adjust by the difference),
but nothing else to do its job. Reading the others only finds drift — a level someone changed by
hand in SHOPLINE — and on a large catalogue those reads would be most of the pass's SHOPLINE
requests. So each pass reads a slice of them, and the slices rotate through the catalogue so
that every level is read at least once per ``syncs.stock.drift_every``, whatever the cadence of
the passes (scheduled, triggered by events, run by hand):

- the inventory items are taken in one fixed order (`rotation_key`), as a ring;
- the state store keeps one cursor per client: the last item the previous slice read, and when
  that pass started;
- the ring is to be read round once per ``round = drift_every − lead``, where ``lead`` is the
  longest a pass may wait for the next (the stock schedule's ``every``; 0 for other schedules):
  a pass started ``elapsed`` after the last reads the next ``ceil(n × elapsed / round)`` items
  of the ring from there (all ``n`` once ``elapsed`` reaches ``round``, and every time when the
  schedule's interval is ``drift_every`` or more);
- without a cursor (the first pass, a store that lost it, a clock that went backwards) it reads
  every item.

Each pass reads at least its share of the ring, rounded up, so an item read at ``t`` is read
again by the first pass that starts at ``t + round`` or later: by ``t + drift_every`` when passes
come at least every ``lead`` (the schedule's own cadence; event-triggered and manual passes in
between only read their share sooner), else by the first pass after a longer pause, which reads
what is due. The cursor names an item, not a position, so items added or removed in between
shift nothing; a new item is read on its first pass anyway, as never pushed.

The cursor (the second value of `DriftRotation.slice`) is stored in ``store.cursors`` only when
a pass that checks drift has finished: a pass that failed on the way, a dry run, or one that
does not correct drift leaves the slice to be read again.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CURSOR_NAME", "CURSOR_SYNC", "DriftRotation", "rotation_key"]

CURSOR_SYNC = "stock"
CURSOR_NAME = "drift"


def rotation_key(item: str) -> tuple[int, str]:
    """The ring's order: numeric ids by their value (shorter first), any id consistently."""
    return (len(item), item)


@dataclass(frozen=True)
class DriftRotation:
    """Where the rotating drift read stands for one pass.

    ``stored`` is the cursor the last finished pass left (None: none yet), ``every`` the
    mapping's ``drift_every``, ``now`` when this pass started and ``lead`` the longest expected
    wait for the next pass (the stock schedule's interval).
    """

    stored: str | None
    every: timedelta
    now: datetime
    lead: timedelta = timedelta(0)

    @property
    def round(self) -> timedelta:
        """How long one turn of the ring takes: ``every`` less the lead (not positive: each pass
        reads the whole ring)."""
        return self.every - max(self.lead, timedelta(0))

    def _last(self) -> tuple[str | None, datetime | None]:
        """The last item read and when, from the stored cursor; (None, None) if unusable."""
        try:
            value = json.loads(self.stored) if self.stored else None
            at = datetime.fromisoformat(value["at"])
            after = value.get("after")
            if at.tzinfo is None or not isinstance(after, str | None):
                return None, None
            return after, at
        except (TypeError, ValueError, KeyError, AttributeError):
            return None, None

    def share(self, n: int) -> int:
        """How many of ``n`` inventory items this pass reads: all without a usable cursor."""
        _, at = self._last()
        if at is None:
            return n
        elapsed = self.now - at
        if self.round <= timedelta(0) or elapsed < timedelta(0) or elapsed >= self.round:
            return n
        return min(n, math.ceil(n * (elapsed / self.round)))

    def slice(self, items: Iterable[str]) -> tuple[list[str], str]:
        """The items this pass reads for drift, and the cursor to store once it has finished."""
        ring = sorted(set(items), key=rotation_key)
        after, _ = self._last()
        count = self.share(len(ring))
        start = (
            0 if after is None else bisect.bisect_right(ring, rotation_key(after), key=rotation_key)
        )
        chosen = [ring[(start + k) % len(ring)] for k in range(count)] if ring else []
        last = chosen[-1] if chosen else after
        return chosen, json.dumps({"after": last, "at": self.now.isoformat()})
