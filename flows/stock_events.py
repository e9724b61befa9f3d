"""The Stokly event path: stock movements and item changes reach SHOPLINE within seconds.

Design. Stokly pushes no notifications (as far as its public API shows), so something must poll
its change feed ([I] ``GET /v0/events``). A Prefect deployment trigger would still need that
poller to emit the event, and every triggered flow run pays seconds of process start before it
does any work. So this flow *is* the poller: a run lasts a bounded time (``minutes``, 10 by
default), reads the feed every ``poll_seconds`` (2) and, for each poll that found movements, runs
one task that calls `sync_stock` for just those SKUs.

``check_drift`` stays on for those SKUs: SHOPLINE lowers its own levels at checkout, so for a
moved SKU the value last pushed is often not what SHOPLINE shows. The pass reads what SHOPLINE
shows anyway; without the check, a receipt that brings the sellable level back to the value
last pushed would leave SHOPLINE's lower level standing until the next full pass (seen in the
demo stack: 106 s instead of about one).

The deployment starts a run every 10 minutes. Starting a flow-run process takes seconds (about
10 on a busy 2-core machine), so a run that stopped before its successor started would leave a
gap at every handover. Instead a run keeps polling up to ``TAKEOVER_GRACE_SECONDS`` past its
window and stops as soon as its successor registers as the client's follower
(`stokline.orchestration.watchers`, as the orders inbox watcher does; the follower is
`stokline.sync.stock.events.StockMovements.follower`); a run scheduled earlier than the follower
exits at once, so one run follows the feed at a time.

- Latency: a movement waits at most one poll interval, then one partial pass (a few reads and
  one write per changed level) — seconds, during a full pass too: the batch waits only for the
  levels of its SKUs the full pass is writing at that moment (`stokline.sync.stock.claims`). Movements that arrive while no run
  is polling (a restart, a paused deployment) stay in the feed for the next run's first poll.
- At least once: the feed cursor (state store, ``stock``/``events``) is stored only after the
  batch was pushed (`stokline.sync.stock.events.StockMovements`). A batch that still fails after its retries is
  left to the full pass (every 5 minutes), which re-derives every level from Stokly; a batch whose
  reading failed is read again on the next poll.
- Never interleaved: each batch holds its SKUs (leases in the state store) from its read to its
  last write; the full pass leaves those levels to it (flows/stock.py).
- Cost: an idle poll is one Stokly request; at 2 s that is 30 of the 120 requests a minute Stokly
  allows an account, and each batch a handful more.

The same read of the feed names the items whose catalogue data changed (``item.updated``,
``item.deleted``: a price, a name, a description, a status). When the mapping has a catalogue
sync, each batch then runs the catalogue's event pass for those items (`sync_catalogue` with
``items``): their linked SHOPLINE products are read by id and brought in line, a deleted item's
product archived as ``on_removed`` says; creating products and closing exceptions stay with the
15-minute full pass, which also takes an item no variant is linked to yet. The feed's cursor
moves on only once both are done, so a failure reads the batch again.

Each batch emits ``stokline.stock.synced`` with ``trigger: event`` and the payload of the full pass
(flows/stock.py), and ``stokline.catalogue.synced`` with ``trigger: event`` when items changed. The run publishes ``stock-events-summary-<client>`` at its end and fails when a
batch was left to the full pass, SKUs were still waiting for a push, or the feed could not be
read at the end, so alerting sees it.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from stokline.config import Mapping
from stokline.connectors import ConnectorError, ShoplineClient, StoklyClient, is_transient
from stokline.orchestration.catalogue import SYNCED_EVENT as CATALOGUE_SYNCED
from stokline.orchestration.catalogue import counts as catalogue_counts
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
from stokline.orchestration.passes import emit_synced_event, pass_task
from stokline.orchestration.stock import emit_synced, run_pass, stock_numbers
from stokline.orchestration.watchers import Watch, WatchTotals, stop_time
from stokline.store import Store
from stokline.sync.catalogue.report import CatalogueReport
from stokline.sync.catalogue.sync import sync_catalogue
from stokline.sync.clients import open_clients
from stokline.sync.stock.events import StockMovements
from stokline.sync.stock.report import StockReport

FEED_BACKOFF_SECONDS = 10.0


@pass_task("push-stock-movements", backoff_factor=2)
async def push_movements(
    mapping: Mapping,
    skus: list[str],
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    locations: dict[str, str] | None = None,
) -> StockReport:
    """The levels of the SKUs that moved, and nothing else: one partial stock pass."""
    return await run_pass(
        mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        trigger="event",
        check_drift=True,
        skus=set(skus),
        locations=locations,
    )


@pass_task("update-changed-items", backoff_factor=2)
async def update_changed_items(
    mapping: Mapping,
    items: list[str],
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
) -> CatalogueReport:
    """The SHOPLINE products of the Stokly items that changed, and nothing else: the catalogue's
    event pass (`sync_catalogue` with ``items``)."""
    return await sync_catalogue(
        mapping, shopline=shopline, stokly=stokly, store=store, trigger="event", items=items
    )


class Totals(WatchTotals):
    """What one run of the event path did, summed over its batches."""

    def __init__(self) -> None:
        super().__init__()
        self.feed_errors = 0
        self.skus = 0
        self.items = 0  # changed items handed to the catalogue's event pass
        self.catalogue: dict[str, int] = {}
        self.unfinished = 0
        self.exceptions: list[dict] = []
        self.last_poll_failed = False
        self.push_errors = 0
        self.waiting = False  # SKUs read from the feed but not pushed yet (the cursor stayed)

    def add(self, report: StockReport, numbers: dict[str, int], seconds: float) -> None:
        self.add_batch(numbers, seconds)
        self.exceptions.extend(report.exceptions)
        if not report.ok:
            self.unfinished += 1

    def add_catalogue(self, report: CatalogueReport, numbers: dict[str, int]) -> None:
        self.exceptions.extend(report.exceptions)
        if not report.ok:
            self.unfinished += 1
        for name in ("updated", "archived", "exceptions_opened"):
            key = f"catalogue_{name}"
            self.catalogue[key] = self.catalogue.get(key, 0) + numbers[name]

    def result(self) -> dict[str, int]:
        return {
            "polls": self.polls,
            "feed_errors": self.feed_errors,
            "batches": self.batches,
            "skus_moved": self.skus,
            "items_changed": self.items,
            **self.catalogue,
            "batches_unfinished": self.unfinished,
            "push_errors": self.push_errors,
            "handed_over": int(self.handed_over),
            **self.numbers,
        }


@flow(
    name="stock-events",
    flow_run_name=run_name_of("stock-events", with_trigger=False),
    log_prints=False,
)
async def stock_events_flow(
    mapping: str = "mappings/demo.yaml",
    minutes: float = 10.0,
    poll_seconds: float = 2.0,
) -> dict[str, int]:
    """Follow Stokly's stock movements for ``minutes`` and push the moved SKUs' levels.

    ``mapping`` is the client's mapping file, relative to the project root; ``poll_seconds`` is
    the pause between two reads of the change feed.
    """
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    settings = sync_settings(loaded, "stock")
    if settings is None or not settings.event_driven:
        logger.info("%s: stock is not event-driven in %s: nothing to do", client, mapping)
        return {}
    stop_at = stop_time(minutes)
    logger.info("following %s's stock movements for %.1f min", client, minutes)
    locations = await locations_for(mapping, loaded)
    catalogue_on = sync_settings(loaded, "catalogue") is not None
    totals = Totals()
    with Store() as store:
        async with open_clients(loaded) as (shopline, stokly):
            feed = StockMovements(
                client, stokly, store, own_channel=loaded.connections.stokly.channel_id
            )
            watch = Watch(feed.follower, totals, stop_at=stop_at, poll_seconds=poll_seconds)
            if not watch.follow():
                logger.info("a run scheduled later follows %s's stock movements already", client)
                return totals.result()
            async for began in watch.polls():
                try:
                    batch = await feed.poll()
                except ConnectorError as exc:
                    if not is_transient(exc):
                        raise
                    totals.feed_errors += 1
                    totals.last_poll_failed = True
                    logger.warning("the Stokly change feed did not answer: %s", exc)
                    watch.back_off(min(FEED_BACKOFF_SECONDS, max(0, stop_at - began)))
                    continue
                totals.last_poll_failed = False
                if batch is None:
                    continue
                skus, items = sorted(batch.skus), sorted(batch.items)
                items = items if catalogue_on else []
                try:
                    report = (
                        await push_movements(loaded, skus, shopline, stokly, store, locations)
                        if skus
                        else None
                    )
                    changed = (
                        await update_changed_items(loaded, items, shopline, stokly, store)
                        if items
                        else None
                    )
                except Exception as exc:
                    if not worth_retrying(exc):
                        raise
                    # Not done: the cursor stays, the next poll reads this batch again (a push
                    # already made costs nothing the second time: both passes write differences).
                    totals.push_errors += 1
                    totals.waiting = True
                    logger.warning(
                        "%d SKU(s), %d item(s) not done yet: %s", len(skus), len(items), exc
                    )
                    continue
                seconds = time.monotonic() - began
                feed.done(batch)
                totals.waiting = False
                if report is not None:
                    numbers = stock_numbers(report)
                    totals.skus += len(skus)
                    totals.add(report, numbers, seconds)
                    emit_synced(report, numbers)
                    logger.info(
                        "%d SKU(s) moved (%s): %d level(s) pushed, %d failed in %.1f s",
                        len(skus),
                        ", ".join(skus[:5]) + (" …" if len(skus) > 5 else ""),
                        numbers["pushed"],
                        numbers["failed"],
                        seconds,
                    )
                if changed is not None:
                    numbers = catalogue_counts(changed)
                    totals.items += len(items)
                    totals.add_catalogue(changed, numbers)
                    emit_synced_event(CATALOGUE_SYNCED, changed, numbers)
                    logger.info(
                        "%d item(s) changed: %d product(s)/variant(s) updated, %d archived, "
                        "%d left to the full pass, in %.1f s",
                        len(items),
                        numbers["updated"],
                        numbers["archived"],
                        changed.deferred_items,
                        seconds,
                    )
            if totals.handed_over:
                logger.info("the next run follows %s's stock movements now", client)
    await acreate_table_artifact(
        key=artifact_key("stock-events-summary", client),
        table=totals.rows(client),
        description=f"The stock event path for **{client}** over {minutes:g} minute(s): polls of "
        "the Stokly change feed, batches of moved SKUs, levels pushed.",
    )
    if totals.exceptions:
        await publish_exceptions("stock-events", client, totals.exceptions, "run")
    result = totals.result()
    reasons = []
    if totals.unfinished:
        reasons.append(f"{totals.unfinished} batch(es) left to the full pass")
    if totals.waiting:
        reasons.append("moved SKUs or changed items were still waiting at the end")
    if totals.last_poll_failed:
        reasons.append("the change feed did not answer at the end")
    if reasons:
        raise IncompleteRun("; ".join(reasons))
    return result
