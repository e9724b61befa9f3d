"""The orders flow: one client's SHOPLINE orders into Stokly, as one Prefect flow run per batch.

Orchestration only. The work — drain the webhook inbox, sweep SHOPLINE since the cursor, translate,
search Stokly before creating, record links and exceptions — is `stokline.sync.sync_orders`, which
is idempotent: a retried or repeated run can never create a second sale order. So the flow keeps
its Prefect task runs few and coarse (each task run costs about a second of engine overhead),
retries only transient failures and only a couple of times (the HTTP clients
already retried each request) and publishes what operations need to see as artifacts.

Only the Stokly location list is cached (``INPUTS + TASK_SOURCE``, 15 minutes): it is read-only
and changes when a warehouse opens, not between runs. The writes must never be cached (a cached
write is silently skipped); the mapping is read fresh because a consultant's fix must count on the
next run; and Stokly items are looked up inside `sync_orders`, batched per run, because a cache
with an expiry would delay an exception's replay after the item appears in Stokly.

Deployed from ``prefect.yaml`` every 2 minutes: the sweep that catches lost webhooks and replays
exceptions. New webhook deliveries are imported within seconds by the inbox watcher
(``flows/orders_events.py``); run once from the terminal with ``stokline run orders`` instead,
which needs no server.
"""

from __future__ import annotations

from typing import Literal

from _common import (
    IncompleteRun,
    artifact_key,
    client_of,
    load_client_mapping,
    retry_when_transient,
    stokly_locations,
    store_for,
)
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run, task_run
from prefect.tasks import exponential_backoff

from stokline.config import Mapping
from stokline.sync import OrdersReport, open_clients, sync_orders

Trigger = Literal["schedule", "webhook", "manual"]

SUMMARY_FIELDS = ("seen", "imported", "duplicates", "skipped")
SYNCED_EVENT = "stokline.orders.synced"


def run_name() -> str:
    """``orders-<client>-<trigger>``, e.g. ``orders-demo-outdoor-webhook``."""
    params = flow_run.parameters
    client = client_of(str(params.get("mapping", "")))
    trigger = params.get("trigger", "manual")
    suffix = "-dry-run" if params.get("dry_run") else ""
    return artifact_key("orders", client, str(trigger)) + suffix


def incomplete(report: OrdersReport) -> str:
    """Why a run did not finish its batch, in one line."""
    reasons = [*report.errors]
    if report.deferred:
        reasons.insert(0, f"{report.deferred} order(s) deferred to the next run")
    if not report.sweep_ok:
        reasons.insert(0, "the sweep of SHOPLINE orders failed")
    return "; ".join(reasons) or "the run did not finish"


IMPORT_RETRIES = 2


@task(
    name="import-orders",
    retries=IMPORT_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.2,
    retry_condition_fn=retry_when_transient,
    cache_policy=NO_CACHE,
)
async def import_orders(
    mapping: Mapping, trigger: str, dry_run: bool, locations: dict[str, str] | None = None
) -> OrdersReport:
    """The whole batch: one task run, because sync_orders is idempotent and per-order task runs
    would cost more than the orders themselves."""
    logger = get_run_logger()
    steps: set[int] = set()

    def progress(done: int, total: int) -> None:
        quarter = done * 4 // total if total else 4
        if quarter not in steps:
            steps.add(quarter)
            logger.info("orders: %d/%d", done, total)

    with store_for(dry_run) as store:
        async with open_clients(mapping) as (shopline, stokly):
            report = await sync_orders(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=store,
                dry_run=dry_run,
                trigger=trigger,
                progress=progress,
                locations=locations,
            )
    # Retry while attempts are left; the last attempt's report is published as it is.
    if not report.ok and (task_run.run_count or 1) <= IMPORT_RETRIES:
        raise IncompleteRun(incomplete(report))
    return report


async def publish(report: OrdersReport) -> None:
    """The run's summary and exceptions (and, for a dry run, what it would create)."""
    client = report.client
    mode = "dry run" if report.dry_run else "run"
    await acreate_table_artifact(
        key=artifact_key("orders-summary", client),
        table=report.summary_rows(),
        description=f"Orders {mode} for **{client}** ({report.trigger}): seen, imported, "
        "duplicates skipped, exceptions opened and resolved.",
    )
    if report.exceptions:
        await acreate_table_artifact(
            key=artifact_key("orders-exceptions", client),
            table=report.exceptions,
            description=f"Exceptions of this orders {mode} for **{client}**; act on them with "
            "`stokline exceptions list|show|retry|resolve|ignore`.",
        )
    else:
        await acreate_markdown_artifact(
            key=artifact_key("orders-exceptions", client),
            markdown=f"No exceptions in this orders {mode} for **{client}**.",
            description="Exceptions of this run",
        )
    if report.dry_run:
        await acreate_table_artifact(
            key=artifact_key("orders-would-create", client),
            table=report.would_create or [],
            description=f"Sale orders a real run for **{client}** would create.",
        )


def counts(report: OrdersReport) -> dict[str, int]:
    """The numbers of a run, for the flow's return value, the log and the event."""
    values = {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}
    values["exceptions_opened"] = int(report.exceptions_opened)
    values["exceptions_resolved"] = int(report.exceptions_resolved)
    values["api_calls"] = int(report.api_calls)
    return values


@flow(name="orders", flow_run_name=run_name, log_prints=False)
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
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    logger.info("orders for %s (%s)%s", client, trigger, " — dry run" if dry_run else "")
    stokly = loaded.connections.stokly
    locations = await stokly_locations(mapping, stokly.base_url, stokly.account_key)
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
        emit_event(
            event=SYNCED_EVENT,
            resource={"prefect.resource.id": f"stokline.client.{client}"},
            payload={"trigger": trigger, "ok": report.ok, **numbers},
        )
    if not report.ok:
        # Published first, so the run's artifacts show what did get done; the run then fails,
        # which is what alerting automations watch. The next run picks the rest up.
        raise IncompleteRun(incomplete(report))
    return numbers
