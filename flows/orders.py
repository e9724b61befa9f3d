"""The orders flow: one client's SHOPLINE orders into Stokly, as one Prefect flow run per batch.

Orchestration only. The work — drain the webhook inbox, sweep SHOPLINE since the cursor, translate,
search Stokly before creating, record links and exceptions — is `stokline.sync.orders.sync.sync_orders`, which
is idempotent: a retried or repeated run can never create a second sale order. So the flow keeps
its Prefect task runs few and coarse (each task run costs about a second of engine overhead),
retries only transient failures and only a couple of times (the HTTP clients
already retried each request) and publishes what operations need to see as artifacts.

Only the Stokly location list is cached (``INPUTS + TASK_SOURCE``, 15 minutes): it is read-only
and changes when a warehouse opens, not between runs. The writes must never be cached (a cached
write is silently skipped); the mapping is read fresh because a consultant's fix must count on the
next run; and Stokly items are looked up inside `sync_orders`, batched per run, because a cache
with an expiry would delay an exception's replay after the item appears in Stokly.

Deployed by ``stokline deploy`` every 2 minutes: the sweep that catches lost webhooks and replays
exceptions. New webhook deliveries are imported within seconds by the inbox watcher
(``flows/orders_events.py``); run once from the terminal with ``stokline run orders`` instead,
which needs no server.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from stokline.config import Mapping
from stokline.orchestration.common import (
    artifact_key,
    locations_for,
    run_name_of,
)
from stokline.orchestration.orders import SYNCED_EVENT, counts, incomplete
from stokline.orchestration.passes import (
    emit_synced_event,
    fail_if_unfinished,
    pass_task,
    publish_summary,
    retry_if_unfinished,
    run_use_case,
    start_pass,
)
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.sync import sync_orders

Trigger = Literal["schedule", "webhook", "manual"]


@pass_task("import-orders")
async def import_orders(
    mapping: Mapping, trigger: str, dry_run: bool, locations: dict[str, str] | None = None
) -> OrdersReport:
    """The whole batch: one task run, because sync_orders is idempotent and per-order task runs
    would cost more than the orders themselves."""
    report = await run_use_case(
        sync_orders,
        mapping,
        dry_run=dry_run,
        progress="orders",
        trigger=trigger,
        locations=locations,
    )
    retry_if_unfinished(report, incomplete)
    return report


async def publish(report: OrdersReport) -> None:
    """The run's summary and exceptions (and, for a dry run, what it would create)."""
    client = report.client
    await publish_summary(
        "orders", report, "seen, imported, duplicates skipped, exceptions opened and resolved."
    )
    if report.dry_run:
        await acreate_table_artifact(
            key=artifact_key("orders-would-create", client),
            table=report.would_create or [],
            description=f"Sale orders a real run for **{client}** would create.",
        )


@flow(name="orders", flow_run_name=run_name_of("orders"), log_prints=False)
async def orders_flow(
    mapping: str = "mappings/demo.yaml",
    trigger: Trigger = "manual",
    dry_run: bool = False,
) -> dict[str, int]:
    """Import one client's due SHOPLINE orders into Stokly and publish what happened.

    ``mapping`` is the client's mapping file, relative to the project root; ``trigger`` says why
    the run started (the deployment's schedule, a webhook event, or a person); ``dry_run`` reads
    both systems and writes nothing anywhere.
    """
    logger = get_run_logger()
    loaded = start_pass("orders", mapping, trigger, dry_run)
    if loaded is None:  # paused with `enabled: false`: the sweep imports nothing
        return {}
    client = loaded.client.name
    locations = await locations_for(mapping, loaded)
    report = await import_orders(loaded, trigger, dry_run, locations)
    await publish(report)
    numbers = counts(report)
    logger.info(
        "%s: seen %d, imported %d, duplicates %d, skipped %d, exceptions opened %d, resolved %d",
        client,
        numbers["seen"],
        numbers["imported"],
        numbers["duplicates"],
        numbers["skipped"],
        numbers["exceptions_opened"],
        numbers["exceptions_resolved"],
    )
    if not dry_run:
        emit_synced_event(SYNCED_EVENT, report, numbers)
    fail_if_unfinished(report, incomplete)
    return numbers
