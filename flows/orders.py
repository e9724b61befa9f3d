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

Deployed from ``prefect.yaml`` (every 2 minutes, and on the receiver's ``stokline.webhook.received``
event); run once from the terminal with ``stokline run orders`` instead, which needs no server.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.events import emit_event
from prefect.runtime import flow_run, task_run
from prefect.tasks import exponential_backoff

from stokline.config import Mapping, check_file, load_mapping
from stokline.connectors import is_transient
from stokline.store import Store
from stokline.store.db import DEFAULT_PATH, URL_VARIABLE
from stokline.sync import OrdersReport, open_clients, stokly_location_index, sync_orders

Trigger = Literal["schedule", "webhook", "manual"]

SUMMARY_FIELDS = ("seen", "imported", "duplicates", "skipped")
SYNCED_EVENT = "stokline.orders.synced"


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) made of ``parts``."""
    text = "-".join(parts).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")


def client_of(mapping_path: str) -> str:
    """The client named in a mapping file, or the file's stem when the file is not valid yet.

    Used to name the flow run before the mapping task reports its problems properly.
    """
    result = check_file(mapping_path)
    if result.mapping is not None:
        return result.mapping.client.name
    return Path(mapping_path).stem


def run_name() -> str:
    """``orders-<client>-<trigger>``, e.g. ``orders-demo-outdoor-webhook``."""
    params = flow_run.parameters
    client = client_of(str(params.get("mapping", "")))
    trigger = params.get("trigger", "manual")
    suffix = "-dry-run" if params.get("dry_run") else ""
    return artifact_key("orders", client, str(trigger)) + suffix


class IncompleteRun(Exception):
    """A transient failure held orders back (deferred, or the sweep failed): worth another try."""


def retry_when_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a coarse step only for what may pass: rate limits, 5xx, network trouble.

    A 4xx, an invalid mapping or a bug fails at once: trying again would only repeat it.
    """
    error = state.data
    return isinstance(error, IncompleteRun) or (
        isinstance(error, BaseException) and is_transient(error)
    )


def incomplete(report: OrdersReport) -> str:
    """Why a run did not finish its batch, in one line."""
    reasons = [*report.errors]
    if report.deferred:
        reasons.insert(0, f"{report.deferred} order(s) deferred to the next run")
    if not report.sweep_ok:
        reasons.insert(0, "the sweep of SHOPLINE orders failed")
    return "; ".join(reasons) or "the run did not finish"


@task(name="load-mapping", cache_policy=NO_CACHE)
def load_client_mapping(path: str) -> Mapping:
    """Read and validate the mapping; a consultant's edit (a new SKU override) counts next run.

    Not cached on purpose: the path stays the same when the file's content changes.
    """
    return load_mapping(path)


IMPORT_RETRIES = 2


@task(
    name="stokly-locations",
    cache_policy=INPUTS + TASK_SOURCE,
    cache_expiration=timedelta(minutes=15),
    retries=IMPORT_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=retry_when_transient,
)
async def stokly_locations(mapping_path: str, stokly_url: str, account_key: str) -> dict[str, str]:
    """Stokly's locations, name → id. Keyed on the account (URL and key) as well as the file, so
    a mapping pointed at another account never reads a cached answer of the first."""
    async with open_clients(load_mapping(mapping_path)) as (_, stokly):
        return await stokly_location_index(stokly)


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


def store_for(dry_run: bool) -> Store:
    """The state store; a dry run without one yet gets an empty in-memory store, so that it
    creates no database file either."""
    if dry_run and not os.environ.get(URL_VARIABLE) and not Path(DEFAULT_PATH).exists():
        return Store("sqlite://")
    return Store()


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
