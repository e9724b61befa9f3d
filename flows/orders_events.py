"""The orders inbox watcher: a paid SHOPLINE order reaches Stokly within seconds.

Design. The webhook receiver stores each delivery in the state store's inbox and acknowledges it.
A Prefect event trigger on the orders deployment used to start one orders run per burst of
deliveries, and each such run paid for the trigger, the worker's next poll and a new flow-run
process before it did half a second of work, then the trigger rested 30 s (p95 about 27 s
through the demo stack). This flow is a watcher instead, like the stock event path
(flows/stock_events.py): a run lasts a bounded time (``minutes``, 10 by default), counts the
client's order deliveries waiting in the inbox every ``poll_seconds`` (2) — one indexed COUNT in
the state store, no API call — and, when some wait, runs one task: an inbox-only pass of
`sync_orders` (``sweep=False``), which claims the deliveries, re-reads their orders from SHOPLINE
by id, and searches, translates and creates as every orders pass does.

- The sweep stays with the ``orders`` deployment (every 2 minutes): it sweeps SHOPLINE since its
  cursor, so a lost webhook costs minutes, and replays orders whose exceptions are open. The
  watcher does neither and never moves the sweep's cursor.
- Safe beside the sweep, a second watcher, or several workers: deliveries are claimed row by row
  and every order a pass handles is leased to it first (`stokline.store.inbox`,
  `stokline.store.leases`); an order another pass holds is left to it and its deliveries go back
  to the inbox. Stokly is searched before every create anyway.
- At least once: a delivery is marked done only after its order was handled. A transient failure
  hands it back and this run tries again after `RETRY_PAUSE_SECONDS` — the loop is the retry, so
  the task itself has none — and so does a delivery whose order another pass held; a run that
  ends with orders still held back fails, so alerting sees it, and the next run (or the sweep)
  takes them.
- Handover: the deployment starts a run every 10 minutes; a run keeps watching up to
  ``TAKEOVER_GRACE_SECONDS`` past its window and stops as soon as its successor registers as
  the client's follower (`stokline.orchestration.watchers`, `stokline.sync.followers.Follower`);
  a run scheduled earlier than the follower exits at once, so one run watches at a time.
- Cost: an idle poll is one small read of the local state store; a batch costs what any orders
  pass of its orders costs (a re-read from SHOPLINE, one Stokly search, the creates).

Each batch emits ``stokline.orders.synced`` (``trigger: webhook``, the payload of flows/orders.py).
Artifacts: a batch is small and frequent, and one artifact each would flood the Artifacts page,
so a batch publishes only when it has exceptions (``orders-inbox-exceptions-<client>``, at once,
because an order not imported is what operations must see) and the run publishes one summary
when it ends (``orders-inbox-summary-<client>``). The mapping is read when a run starts: an edit
counts from the next run, and every sweep reads it afresh.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.orchestration.common import (
    IncompleteRun,
    artifact_key,
    load_client_mapping,
    locations_for,
    publish_exceptions,
    run_name_of,
    sync_settings,
    worth_retrying,
)
from stokline.orchestration.orders import SYNCED_EVENT, counts, incomplete
from stokline.orchestration.passes import emit_synced_event
from stokline.orchestration.watchers import Watch, WatchTotals, stop_time
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.followers import Follower
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.run import LINK as ORDER_LEASE
from stokline.sync.orders.sync import ORDER_TOPICS, sync_orders

WATCHER = "orders-inbox"
TRIGGER = "webhook"
RETRY_PAUSE_SECONDS = 10.0
"""After a batch that held orders back (a transient failure, or orders another pass held), the
waiting deliveries are tried again this much later, not at every poll."""


@task(name="import-inbox-orders", cache_policy=NO_CACHE)
async def import_inbox(
    mapping: Mapping,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    locations: dict[str, str] | None = None,
) -> OrdersReport:
    """The orders of the deliveries waiting in the inbox: one inbox-only orders pass."""
    return await sync_orders(
        mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        trigger=TRIGGER,
        locations=locations,
        sweep=False,
    )


class Totals(WatchTotals):
    """What one run of the watcher did, summed over its batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_errors = 0
        self.held_back: str | None = None  # why the last batch left orders waiting, if it did

    def result(self) -> dict[str, int]:
        return {
            "polls": self.polls,
            "batches": self.batches,
            "batch_errors": self.batch_errors,
            "handed_over": int(self.handed_over),
            **self.numbers,
        }


@flow(
    name=WATCHER,
    flow_run_name=run_name_of(WATCHER, with_trigger=False),
    log_prints=False,
)
async def orders_inbox_flow(
    mapping: str = "mappings/demo.yaml",
    minutes: float = 10.0,
    poll_seconds: float = 2.0,
) -> dict[str, int]:
    """Watch one client's webhook inbox for ``minutes`` and import the orders it receives.

    ``mapping`` is the client's mapping file, relative to the project root; ``poll_seconds`` is
    the pause between two looks at the inbox.
    """
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    if sync_settings(loaded, "orders") is None:
        logger.info("%s: the orders sync is off in %s: nothing to watch", client, mapping)
        return {}
    stop_at = stop_time(minutes)
    locations = await locations_for(mapping, loaded)
    totals = Totals()
    with Store() as store:
        watch = Watch(
            Follower(store, client, WATCHER), totals, stop_at=stop_at, poll_seconds=poll_seconds
        )
        if not watch.follow():
            logger.info("a run scheduled later watches %s's inbox already", client)
            return totals.result()
        logger.info("watching %s's webhook inbox for %g min", client, minutes)
        async with open_clients(loaded) as (shopline, stokly):
            retry_at = 0.0
            async for began in watch.polls():
                waiting = store.inbox.claimable(client, topics=ORDER_TOPICS)
                # Orders a run that died had leased are taken over as soon as their leases
                # expire, not at the next sweep.
                waiting += len(store.leases.orphaned(client, ORDER_LEASE, limit=1))
                if waiting and began >= retry_at:
                    try:
                        report = await import_inbox(loaded, shopline, stokly, store, locations)
                    except Exception as exc:
                        if not worth_retrying(exc):
                            raise
                        # The pass handed its deliveries back: they wait for the next try.
                        totals.batch_errors += 1
                        totals.held_back = f"the last batch failed: {exc}"
                        retry_at = time.monotonic() + RETRY_PAUSE_SECONDS
                        logger.warning("%d delivery(ies) not handled yet: %s", waiting, exc)
                    else:
                        seconds = time.monotonic() - began
                        numbers = counts(report)
                        totals.add_batch(numbers, seconds)
                        emit_synced_event(SYNCED_EVENT, report, numbers)
                        if report.exceptions:
                            await publish_exceptions(WATCHER, client, report.exceptions, "batch")
                        totals.held_back = None if report.ok else incomplete(report)
                        if not report.ok or (
                            not report.seen and store.inbox.claimable(client, topics=ORDER_TOPICS)
                        ):
                            retry_at = time.monotonic() + RETRY_PAUSE_SECONDS
                        logger.info(
                            "%d delivery(ies): %d order(s) seen, %d imported, %d already in "
                            "Stokly, %d skipped, %d deferred, %d exception(s) opened in %.1f s",
                            waiting,
                            numbers["seen"],
                            numbers["imported"],
                            numbers["duplicates"],
                            numbers["skipped"],
                            report.deferred,
                            numbers["exceptions_opened"],
                            seconds,
                        )
            if totals.handed_over:
                logger.info("the next run watches %s's inbox now", client)
    await acreate_table_artifact(
        key=artifact_key(WATCHER, "summary", client),
        table=totals.rows(client),
        description=f"The orders inbox watcher for **{client}** over {minutes:g} minute(s): "
        "looks at the webhook inbox, batches of deliveries, orders imported.",
    )
    if totals.held_back:
        raise IncompleteRun(totals.held_back)
    return totals.result()
