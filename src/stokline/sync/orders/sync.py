"""The orders sync: SHOPLINE orders into Stokly sale orders, exactly once.

One run gathers candidates from three places — the webhook inbox, a sweep of SHOPLINE orders
updated since the stored cursor minus the look-back window, and the orders whose exceptions are
open or marked for retry — re-reads the inbox's orders by id for their current state, and handles
them in batches of ``syncs.orders.batch_size``:

1. orders already linked are checked for cancellations and edits (``on_cancelled``/``on_edited``);
2. the rest are searched in Stokly by (channel id, SHOPLINE order id), one call per batch — a
   sale order found there is linked, never created again (this is how a run that crashed between
   create and link recovers);
3. the others are translated through the mapping (items validated by one look-up per batch),
   their customers found or created, and their sale orders created concurrently; each create is
   followed at once by its link and an audit row.

An order that cannot be translated becomes one exception and the batch goes on; so does one that
cannot even be read (`stokline.sync.guards`: a malformed record SHOPLINE sent, a "NaN" amount, a
SKU that is not valid Unicode), as a ``poison_message`` replayed until SHOPLINE's copy is usable.
An order held back by a transient failure keeps its webhook events for the next run and holds the
cursor.
Concurrent runs split the work: webhook events are claimed row by row (``FOR UPDATE SKIP LOCKED``
on PostgreSQL), and every order a run handles is leased to it first (`stokline.store.leases`),
so an order another run holds is left to that run — never searched for and created twice.
A dry run reads both APIs and the store and writes nothing anywhere.

The run is put together here from its parts: `stokline.sync.orders.intake` reads the work in and
hands it back, `stokline.sync.orders.importer` handles a batch, `stokline.sync.orders.changes`
follows up cancellations and edits of imported orders, and `stokline.sync.orders.run` holds the
state and the exceptions they share.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.store.heartbeat import Heartbeat
from stokline.sync.orders.importer import OrderImport, stokly_location_index
from stokline.sync.orders.intake import ORDER_TOPICS, OrderIntake
from stokline.sync.orders.report import OrdersReport
from stokline.sync.run import RunCost

__all__ = ["ORDER_TOPICS", "OrdersReport", "stokly_location_index", "sync_orders"]


class _Run(OrderIntake, OrderImport):
    """One pass of the orders sync; `sync_orders` is its public face."""

    async def execute(self) -> OrdersReport:
        cost = RunCost(self.shopline, self.stokly)
        sweep_started = datetime.now(UTC)
        since = self._since(sweep_started)
        # While the run is alive, its inbox claims and order leases are renewed on a clock of
        # their own, so they can expire soon after a run dies (nothing to renew in a dry run).
        alive = nullcontext() if self.dry else Heartbeat(self._renew, name=self.holder)
        with alive:
            try:
                orders = await self._candidates(since)
                self.report.seen = len(orders)
                queue = list(orders.values())
                size = self.settings.batch_size
                for start in range(0, len(queue), size):
                    await self._batch(queue[start : start + size])
                    while self._pending_changes:
                        order, link, sale = self._pending_changes.pop()
                        await self._check_change(order, link, sale)
                    if self.progress is not None:
                        self.progress(min(start + size, len(queue)), len(queue))
                    if self.crash is not None:
                        raise self.crash
            except BaseException:
                self._settle_events(crashed=True)
                raise
        self._settle_events(crashed=False)
        self.report.deferred = len(self.deferred)
        self._advance_cursor(sweep_started)
        return cost.charge(self.report)


async def sync_orders(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    progress: Callable[[int, int], None] | None = None,
    locations: dict[str, str] | None = None,
    sweep: bool = True,
) -> OrdersReport:
    """One pass of the orders sync for ``mapping``'s client; returns what it did.

    Exceptions of single orders are recorded in the store and listed in the report, never
    raised. Transient failures hold the affected orders (and their webhook events) for the next
    run and appear in ``report.errors``; ``report.ok`` is False then. Only a crash — an error this
    function does not know — propagates, after handing the claimed events back.

    ``locations`` (Stokly location name → id, from `stokly_location_index`) may be passed in by a
    caller that caches it; otherwise it is read once per run.

    ``sweep=False`` takes the webhook inbox only — the quick pass of the orders inbox watcher
    (flows/orders_events.py): no sweep of SHOPLINE, no replay of open exceptions, and the sweep
    cursor is left where it is, since nothing was swept. The scheduled passes do those.
    """
    run = _Run(mapping, shopline, stokly, store, dry_run, trigger, progress)
    run.sweep = sweep
    if locations is not None:
        run.locations = dict(locations)
    return await run.execute()
