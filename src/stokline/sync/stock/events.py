"""The stock event path's reading of Stokly's change feed: which SKUs moved, at-least-once.

`StockMovements` reads the feed after the cursor kept in the state store and hands back the
Stokly SKUs whose stock moved (goods receipts, adjustments, new or changed items) with the
cursor after them. The cursor is stored only when the caller says the batch was pushed
(`done`), so a crash or a failed push between reading and pushing replays those SKUs on the next
poll; pushing a SKU twice costs nothing, since the stock pass is delta-only. Polls that find
only events of other kinds move the stored cursor on by themselves, so they are not read again.

A client with no stored cursor starts at the beginning of the feed: the first batch holds every
SKU that ever moved, which one partial pass settles.

Runs of the event path hand over to each other without a gap, as every watcher does
(`stokline.sync.followers.Follower`): a new run registers as the client's *follower* (`follow`)
before its first poll, and the run it replaces stops at its next poll (`still_following` turns
false). A run scheduled earlier than the current follower (one that started late) does not
take over. Two runs may both poll for a moment around a handover, or if both registered at once;
that costs a duplicate read, never a lost or wrong level, because a stock pass is delta-only and
holds the SKUs it writes (`stokline.sync.stock.claims`). The follower is kept beside the feed's cursor, under
``stock``/``events-follower``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stokline.connectors import StoklyClient
from stokline.store import Store
from stokline.sync.followers import Follower
from stokline.sync.stock.sync import changed_skus_since

__all__ = ["CURSOR_NAME", "CURSOR_SYNC", "FOLLOWER_NAME", "MovementBatch", "StockMovements"]

CURSOR_SYNC = "stock"
CURSOR_NAME = "events"
FOLLOWER_NAME = "events-follower"


@dataclass(frozen=True)
class MovementBatch:
    """Stokly SKUs that moved after ``since`` in the feed, up to ``cursor``."""

    skus: frozenset[str]
    since: str | None
    cursor: str


class StockMovements:
    """One client's position in the Stokly change feed, as the stock event path follows it."""

    def __init__(self, client: str, stokly: StoklyClient, store: Store) -> None:
        self.client = client
        self.stokly = stokly
        self.store = store
        # The run following this client's feed, kept beside the feed's cursor.
        self.follower = Follower(store, client, CURSOR_SYNC, FOLLOWER_NAME)

    @property
    def cursor(self) -> str | None:
        return self.store.cursors.get(self.client, CURSOR_SYNC, CURSOR_NAME)

    async def poll(self) -> MovementBatch | None:
        """The SKUs that moved since the stored cursor, or None when none did.

        Raises the client's `ConnectorError` when the feed cannot be read; nothing is stored then.
        """
        since = self.cursor
        skus, after = await changed_skus_since(self.stokly, since)
        if not skus:
            if after != since:
                self.store.cursors.set(self.client, CURSOR_SYNC, after, CURSOR_NAME)
            return None
        return MovementBatch(frozenset(skus), since, after)

    def done(self, batch: MovementBatch) -> None:
        """Record that ``batch`` was pushed: the next poll starts after it."""
        self.store.cursors.set(self.client, CURSOR_SYNC, batch.cursor, CURSOR_NAME)

    # -- which run follows the feed -----------------------------------------------------------

    def follow(self, run_id: str, scheduled: datetime) -> bool:
        """Make the run ``run_id`` (scheduled at ``scheduled``, timezone-aware) the follower,
        unless a run scheduled later follows already; returns whether this run follows now."""
        return self.follower.follow(run_id, scheduled)

    def still_following(self, run_id: str) -> bool:
        """False once another run took over following the feed."""
        return self.follower.still_following(run_id)
