"""The fulfilment flow: one client's Stokly shipments onto SHOPLINE fulfillments, in one flow run.

Orchestration only. The work — read Stokly's change feed from the stored cursor, replay the
shipments of open exceptions, recognise fulfillments SHOPLINE already has before creating one,
link each right after it is created, follow tracking corrections and cancellations, and tell
which shipments are stale — is `stokline.sync.fulfilment.sync.sync_fulfilment`, which is idempotent: a retried or
repeated run never creates a second fulfillment. The flow runs the pass as one task run, retries
it only for transient failures (the pass itself already tried each SHOPLINE write a few times),
caches nothing (every read must be fresh, and a cached write is silently skipped), publishes
artifacts and emits the events below. The sync returns what is stale; only this flow emits.

Artifacts of each run (keys end in the client's name):

- ``fulfilment-summary-<client>``: the pass in figures (feed events, shipments seen,
  fulfillments created, found and linked, tracking updated, cancelled, deferred, stale,
  exceptions, API calls, seconds);
- ``fulfilment-exceptions-<client>``: exceptions opened or resolved (unmapped SKUs, refusals,
  cancelled orders or shipments, stale shipments);
- ``fulfilment-stale-<client>``: shipments past ``syncs.fulfilment.stale_after`` that SHOPLINE
  does not show, oldest first (or a line saying there are none);
- ``fulfilment-changes-<client>``: what a live run wrote; ``fulfilment-would-write-<client>``
  what a dry run would have written.

Events (live runs only), on the resource ``stokline.client.<client>``:

- ``stokline.fulfilment.synced`` after every run, payload ``trigger`` (text), ``ok`` (bool) and
  whole numbers ``events``, ``shipments_seen``, ``created``, ``recovered``,
  ``tracking_updated``, ``cancelled``, ``deferred``, ``stale``, ``exceptions_opened``,
  ``exceptions_resolved``, ``api_calls``.
- ``stokline.fulfilment.stale`` when the run found shipments that became stale since the last
  run (each is reported once, when its ``stale_fulfilment`` exception opens; it stays in the
  exceptions queue and the stale artifact until it reaches SHOPLINE). Payload::

      {"client": "demo-outdoor", "stale_after_hours": 4.0, "owner": "operations",
       "count": 1,                 # newly stale shipments in this event
       "total": 3,                 # all stale shipments this run saw
       "order_ids": ["2105..."],   # their SHOPLINE order ids
       "orders": [{"order": "#1032", "shopline_order_id": "2105...", "sale_order_id": "…",
                   "shipment": "…", "dispatched_at": "2026-…Z", "age_hours": 5.2,
                   "reason": "…"}]}

  with one related resource per order, ``shopline.order.<id>`` (role ``order``). An automation
  (``expect: [stokline.fulfilment.stale]``, ``match: {prefect.resource.id:
  stokline.client.<client>}``) turns it into an alert to the owning team.

Deployed by ``stokline deploy`` (every 5 minutes, the mapping's ``syncs.fulfilment.every``, one run
at a time); run once from the terminal with ``stokline run fulfilment`` instead, which needs no
server.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.events import emit_event

from stokline.config import Mapping
from stokline.orchestration.common import artifact_key, run_name_of
from stokline.orchestration.passes import (
    MAX_ROWS,
    emit_synced_event,
    fail_if_unfinished,
    pass_task,
    publish_rows,
    publish_summary,
    retry_if_unfinished,
    run_use_case,
    start_pass,
)
from stokline.sync.fulfilment.report import FulfilmentReport
from stokline.sync.fulfilment.sync import sync_fulfilment

Trigger = Literal["schedule", "manual"]

SYNCED_EVENT = "stokline.fulfilment.synced"
STALE_EVENT = "stokline.fulfilment.stale"
SUMMARY_FIELDS = (
    "events",
    "shipments_seen",
    "created",
    "recovered",
    "tracking_updated",
    "cancelled",
    "deferred",
    "exceptions_opened",
    "exceptions_resolved",
    "api_calls",
)


def incomplete(report: FulfilmentReport) -> str:
    """Why a pass did not finish, in one line."""
    reasons = [*report.errors]
    if report.deferred:
        reasons.insert(0, f"{report.deferred} shipment(s) deferred to the next run")
    if not report.feed_ok:
        reasons.insert(0, "the Stokly change feed could not be read")
    return "; ".join(reasons) or "the pass did not finish"


@pass_task("push-fulfilments")
async def push_fulfilments(mapping: Mapping, trigger: str, dry_run: bool) -> FulfilmentReport:
    """The whole pass in one task run: per-shipment task runs would cost more than the writes."""
    report = await run_use_case(
        sync_fulfilment, mapping, dry_run=dry_run, progress="fulfilment", trigger=trigger
    )
    retry_if_unfinished(report, incomplete)
    return report


def counts(report: FulfilmentReport) -> dict[str, int]:
    """The whole numbers of a pass, for the flow's return value, the log and the event."""
    values = {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}
    values["stale"] = len(report.stale)
    return values


def stale_rows(report: FulfilmentReport) -> list[dict[str, Any]]:
    """The stale shipments, oldest first, as the artifact and the event show them."""
    rows = sorted(report.stale, key=lambda row: -float(row.get("age_hours") or 0))
    return [{k: v for k, v in row.items() if k != "new"} for row in rows]


def stale_event(report: FulfilmentReport, owner: str) -> dict[str, Any] | None:
    """The keyword arguments of ``emit_event`` for the newly stale shipments (None: none)."""
    fresh = [{k: v for k, v in row.items() if k != "new"} for row in report.newly_stale]
    if not fresh:
        return None
    order_ids = list(dict.fromkeys(str(row["shopline_order_id"]) for row in fresh))
    names = {str(row["shopline_order_id"]): str(row.get("order") or "") for row in fresh}
    return {
        "event": STALE_EVENT,
        "resource": {
            "prefect.resource.id": f"stokline.client.{report.client}",
            "prefect.resource.name": report.client,
        },
        "related": [
            {
                "prefect.resource.id": f"shopline.order.{order_id}",
                "prefect.resource.role": "order",
                "prefect.resource.name": names[order_id],
            }
            for order_id in order_ids
        ],
        "payload": {
            "client": report.client,
            "stale_after_hours": report.stale_after_hours,
            "owner": owner,
            "count": len(fresh),
            "total": len(report.stale),
            "order_ids": order_ids,
            "orders": fresh,
        },
    }


async def publish(report: FulfilmentReport) -> None:
    """The run's summary, exceptions, stale shipments and what it wrote (or would write)."""
    client = report.client
    await publish_summary(
        "fulfilment",
        report,
        "Stokly shipments onto SHOPLINE fulfillments — created, found and linked, tracking "
        "updated, cancelled, deferred, stale.",
    )
    key = artifact_key("fulfilment-stale", client)
    hours = f"{report.stale_after_hours:g} h"
    if report.stale:
        rows = stale_rows(report)
        await acreate_table_artifact(
            key=key,
            table=rows[:MAX_ROWS],
            description=f"{len(rows)} shipment(s) of **{client}** dispatched in Stokly more "
            f"than {hours} ago that SHOPLINE does not show; the customer sees no tracking.",
        )
    else:
        await acreate_markdown_artifact(
            key=key,
            markdown=f"No shipment of **{client}** is stale (older than {hours} and not in "
            "SHOPLINE).",
            description="Stale shipments of this run",
        )
    planned = report.would_write if report.dry_run else report.changes
    if report.dry_run or planned:
        name = "fulfilment-would-write" if report.dry_run else "fulfilment-changes"
        what = "a live pass would make" if report.dry_run else "this pass made"
        await publish_rows(
            artifact_key(name, client),
            planned,
            f"{len(planned)} SHOPLINE write(s) {what} for **{client}**",
        )


@flow(name="fulfilment", flow_run_name=run_name_of("fulfilment"), log_prints=False)
async def fulfilment_flow(
    mapping: str = "mappings/demo.yaml",
    trigger: Trigger = "manual",
    dry_run: bool = False,
) -> dict[str, int]:
    """Push one client's Stokly shipments to SHOPLINE as fulfillments with tracking.

    ``mapping`` is the client's mapping file, relative to the project root; ``trigger`` says why
    the run started; ``dry_run`` reads both systems and writes nothing anywhere (and emits no
    event).
    """
    logger = get_run_logger()
    loaded = start_pass("fulfilment", mapping, trigger, dry_run)
    if loaded is None:
        return {}
    client = loaded.client.name
    report = await push_fulfilments(loaded, trigger, dry_run)
    await publish(report)
    numbers = counts(report)
    logger.info(
        "%s: %d shipment(s) seen, %d fulfillment(s) created, %d found and linked, %d tracking "
        "update(s), %d cancelled, %d deferred, %d stale",
        client,
        numbers["shipments_seen"],
        numbers["created"],
        numbers["recovered"],
        numbers["tracking_updated"],
        numbers["cancelled"],
        numbers["deferred"],
        numbers["stale"],
    )
    if not dry_run:
        emit_synced_event(SYNCED_EVENT, report, numbers)
        stale = stale_event(report, loaded.operating_model.owner_of("stale_fulfilment"))
        if stale is not None:
            logger.warning(
                "%s: %d shipment(s) newly stale: %s",
                client,
                stale["payload"]["count"],
                ", ".join(str(row["order"]) for row in stale["payload"]["orders"]),
            )
            emit_event(**stale)
    fail_if_unfinished(report, incomplete)
    return numbers
