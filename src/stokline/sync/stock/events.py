"""The event path's reading of Stokly's change feed: which SKUs moved, which items changed,
at-least-once.

`StockMovements` reads the feed after the cursor kept in the state store and hands back the
Stokly SKUs whose stock moved (goods receipts, adjustments, new, changed or deleted items) and
the ids of the items whose catalogue data changed (``item.updated``, ``item.deleted``: a price,
a name, a description, a status, for the catalogue's event pass) with the cursor after them.
One read of the feed serves both, so following the catalogue costs no request of its own. The cursor is stored only when the caller says the batch was pushed
(`done`), so a crash or a failed push between reading and pushing replays those SKUs on the next
poll; pushing a SKU twice costs nothing, since the stock pass is delta-only. Polls that find
only events of other kinds move the stored cursor on by themselves, so they are not read again.

Sale orders move sellable stock too: a sale order of another channel (a marketplace, a trade
order, a till that records sales as orders) allocates units SHOPLINE must stop selling, and one
removed gives them back. The feed says which sale order, not which SKUs, so for each such order
its lines are read (two Stokly requests). The sale orders of the client's own channel
(``own_channel``, the mapping's ``connections.stokly.channel_id``: the orders imported from
SHOPLINE) are left out at no cost: the stock sync counted their units as awaiting import before,
so their import moves no level. Only a change of stage is a removal; other updates (tags, a
carrier reference) are skipped without a read.

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

__all__ = [
    "CURSOR_NAME",
    "CURSOR_SYNC",
    "FOLLOWER_NAME",
    "ITEM_EVENTS",
    "MOVEMENT_EVENTS",
    "SALE_ORDER_EVENTS",
    "FeedChanges",
    "MovementBatch",
    "StockMovements",
    "changes_since",
]

CURSOR_SYNC = "stock"
CURSOR_NAME = "events"
FOLLOWER_NAME = "events-follower"
MOVEMENT_EVENTS = ("stock.movement", "item.created", "item.updated", "item.deleted")
"""Change-feed events that name an item whose sellable level may differ."""
ITEM_EVENTS = ("item.updated", "item.deleted")
"""Change-feed events of an item whose catalogue data (price, name, status…) may differ."""
SALE_ORDER_EVENTS = ("saleorder.created", "saleorder.updated")
"""Feed events of sale orders: another channel's sale order allocates or releases stock."""


@dataclass(frozen=True)
class FeedChanges:
    """What the feed said after a cursor: SKUs whose stock may have moved, items whose catalogue
    data may have changed (ids), and the cursor after them."""

    skus: set[str]
    items: set[str]
    cursor: str


async def changes_since(
    stokly: StoklyClient, cursor: str | None, own_channel: str | None = None
) -> FeedChanges:
    """The Stokly SKUs whose sellable stock may have moved after ``cursor``, the items whose
    catalogue data may have changed, and the new cursor.

    Stock movements and item changes name their SKU (item changes their item id too); a sale
    order of a channel other than ``own_channel`` is read for its lines' SKUs (see the module
    docstring). With no cursor the feed is read from its start.
    """
    after = cursor or "0"
    skus: set[str] = set()
    items: set[str] = set()
    orders: dict[str, bool] = {}  # sale order id → its channel is known to be another one
    while True:
        page = await stokly.get_events(after, types=(*MOVEMENT_EVENTS, *SALE_ORDER_EVENTS))
        for event in page.events:
            if event.type in SALE_ORDER_EVENTS:
                data = event.data
                order_id = data.get("saleOrderId")
                source = data.get("sourceId")
                if not order_id or (own_channel is not None and source == own_channel):
                    continue
                if event.type == "saleorder.updated" and "stage" not in (data.get("fields") or ()):
                    continue
                known = source is not None
                orders[str(order_id)] = orders.get(str(order_id), False) or known
                continue
            sku = event.data.get("itemSku") or event.data.get("sku")
            if sku:
                skus.add(str(sku))
            item_id = event.data.get("itemId")
            if event.type in ITEM_EVENTS and item_id:
                items.add(str(item_id))
        moved = page.cursor != after
        after = page.cursor or after
        if not page.has_more or not moved:
            break
    for order_id, elsewhere in orders.items():
        if not elsewhere and own_channel is not None:
            order = await stokly.get_sale_order(order_id)
            if order.sourceId == own_channel:
                continue
        skus.update(
            line.itemSku for line in await stokly.get_sale_order_items(order_id) if line.itemSku
        )
    return FeedChanges(skus, items, after)


@dataclass(frozen=True)
class MovementBatch:
    """Stokly SKUs that moved, and items that changed, after ``since`` in the feed, up to
    ``cursor``."""

    skus: frozenset[str]
    since: str | None
    cursor: str
    items: frozenset[str] = frozenset()


class StockMovements:
    """One client's position in the Stokly change feed, as the stock event path follows it."""

    def __init__(
        self, client: str, stokly: StoklyClient, store: Store, own_channel: str | None = None
    ) -> None:
        self.client = client
        self.stokly = stokly
        self.store = store
        self.own_channel = own_channel  # the mapping's Stokly channel: its orders move nothing
        # The run following this client's feed, kept beside the feed's cursor.
        self.follower = Follower(store, client, CURSOR_SYNC, FOLLOWER_NAME)

    @property
    def cursor(self) -> str | None:
        return self.store.cursors.get(self.client, CURSOR_SYNC, CURSOR_NAME)

    async def poll(self) -> MovementBatch | None:
        """The SKUs that moved and the items that changed since the stored cursor, or None when
        nothing did.

        Raises the client's `ConnectorError` when the feed cannot be read; nothing is stored then.
        """
        since = self.cursor
        found = await changes_since(self.stokly, since, self.own_channel)
        if not found.skus and not found.items:
            if found.cursor != since:
                self.store.cursors.set(self.client, CURSOR_SYNC, found.cursor, CURSOR_NAME)
            return None
        return MovementBatch(frozenset(found.skus), since, found.cursor, frozenset(found.items))

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
