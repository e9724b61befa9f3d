"""Which run of a watcher flow is watching for a client: handovers without a gap, or a crowd.

A watcher flow (flows/orders_events.py follows the webhook inbox, flows/stock_events.py the
Stokly change feed) runs for a bounded window, and its deployment starts a successor as the
window ends. Starting a flow-run process takes seconds, so a run keeps watching past its window
until its successor has registered as the client's *follower* (`Follower.follow`), and stops at
its next poll (`still_following` turns false). A run scheduled earlier than the current follower
(one that started late) does not take over. Two runs may both watch for a moment around a
handover, or if both registered at once; what they watch must make that harmless (the inbox's
claimed rows and leased orders do, and so does the delta-only stock pass under the client's
stock lock).

The follower is kept in the state store (``cursors``, under the watcher's own name, so the
sync's cursors and its "last activity" are not touched), which makes a check one indexed read:
no Prefect API call per poll. The stock event path keeps its follower beside its feed cursor
instead (`stokline.sync.stock.events`: ``stock``/``events-follower``), where its runs have
always looked for it, so runs of an older and a newer release still hand over to each other.
"""

from __future__ import annotations

from datetime import datetime

from stokline.store import Store

__all__ = ["FOLLOWER_NAME", "Follower"]

FOLLOWER_NAME = "follower"


class Follower:
    """The run that follows ``watcher`` (e.g. ``orders-inbox``) for ``client``, as
    ``"<scheduled start, ISO> <run id>"`` in the store's cursor (``watcher``, ``name``)."""

    def __init__(self, store: Store, client: str, watcher: str, name: str = FOLLOWER_NAME) -> None:
        self.store = store
        self.client = client
        self.watcher = watcher
        self.name = name

    def current(self) -> tuple[datetime, str] | None:
        """(scheduled start, run id) of the run following now, or None."""
        value = self.store.cursors.get(self.client, self.watcher, self.name)
        if not value or " " not in value:
            return None
        scheduled, _, run_id = value.partition(" ")
        try:
            return datetime.fromisoformat(scheduled), run_id
        except ValueError:
            return None

    def follow(self, run_id: str, scheduled: datetime) -> bool:
        """Make the run ``run_id`` (scheduled at ``scheduled``, timezone-aware) the follower,
        unless a run scheduled later follows already; returns whether this run follows now."""
        if scheduled.tzinfo is None:
            raise ValueError("the scheduled start must be timezone-aware")
        current = self.current()
        if current is not None and current[1] != run_id and current[0] > scheduled:
            return False
        value = f"{scheduled.isoformat()} {run_id}"
        self.store.cursors.set(self.client, self.watcher, value, self.name)
        return True

    def still_following(self, run_id: str) -> bool:
        """False once another run took over."""
        current = self.current()
        return current is None or current[1] == run_id
