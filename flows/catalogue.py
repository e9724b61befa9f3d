"""The catalogue pass: one client's Stokly items onto SHOPLINE products and variants, in one run.

Orchestration only. The work — link variants to Stokly items by SKU, translate fields through the
mapping's templates, write only what changed since the last write (a content hash per item),
create or report missing items, archive or unpublish removed ones, never delete — is
`stokline.sync.sync_catalogue`, which is idempotent: a repeated pass over an unchanged catalogue
writes nothing, and a write that failed keeps its old hash, so the next pass tries it again. The
flow runs the pass as one task run, retries it only for transient failures, and caches nothing:
the only look-ups are the two paginated reads the pass needs fresh.

Artifacts of each run: ``catalogue-summary-<client>`` (items and products seen, linked,
unchanged, updated, created, archived, missing, exceptions), ``catalogue-exceptions-<client>``
(unknown SHOPLINE SKUs, colliding Stokly SKUs, failed templates, refusals),
``catalogue-missing-<client>`` (Stokly items SHOPLINE lacks, when there are any) and, for a dry
run, ``catalogue-would-write-<client>``.

Each live run emits ``stokline.catalogue.synced`` on the resource ``stokline.client.<client>``
with ``trigger`` (text), ``ok`` (bool) and these whole numbers: ``items_seen``,
``products_seen``, ``linked``, ``unchanged``, ``updated``, ``created``, ``archived``,
``reported_missing``, ``exceptions_opened``, ``exceptions_resolved``, ``api_calls``. A pass that
did not finish publishes first, then fails the run.

Deployed from ``prefect.yaml`` (every 15 minutes, the mapping's ``syncs.catalogue.every``); run
once from the terminal with ``stokline run catalogue`` instead, which needs no server.
"""

from __future__ import annotations

from typing import Literal

from _common import (
    RETRIES,
    IncompleteRun,
    artifact_key,
    load_client_mapping,
    progress_logger,
    publish_exceptions,
    retry_when_transient,
    run_name_of,
    store_for,
    sync_settings,
)
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from stokline.config import Mapping
from stokline.sync import CatalogueReport, open_clients, sync_catalogue

Trigger = Literal["schedule", "manual"]

SYNCED_EVENT = "stokline.catalogue.synced"
SUMMARY_FIELDS = (
    "items_seen",
    "products_seen",
    "linked",
    "unchanged",
    "updated",
    "created",
    "archived",
    "reported_missing",
    "exceptions_opened",
    "exceptions_resolved",
    "api_calls",
)
MAX_ROWS = 500
"""Rows of a list artifact: enough to act on, small enough for the UI to render."""


def incomplete(report: CatalogueReport) -> str:
    """Why a pass did not finish, in one line."""
    return "; ".join(report.errors) or "the pass did not finish"


@task(
    name="sync-catalogue",
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.2,
    retry_condition_fn=retry_when_transient,
    cache_policy=NO_CACHE,
)
async def update_catalogue(mapping: Mapping, trigger: str, dry_run: bool) -> CatalogueReport:
    """The whole pass in one task run: it reads both catalogues whole anyway."""
    with store_for(dry_run) as store:
        async with open_clients(mapping) as (shopline, stokly):
            report = await sync_catalogue(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=store,
                dry_run=dry_run,
                trigger=trigger,
                progress=progress_logger("catalogue"),
            )
    # Retry while attempts are left; the last attempt's report is published as it is.
    if not report.ok and (task_run.run_count or 1) <= RETRIES:
        raise IncompleteRun(incomplete(report))
    return report


def counts(report: CatalogueReport) -> dict[str, int]:
    """The whole numbers of a pass, for the flow's return value, the log and the event."""
    return {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}


async def publish(report: CatalogueReport) -> None:
    """The run's summary, exceptions, missing items (and, for a dry run, what it would write)."""
    client = report.client
    mode = "dry run" if report.dry_run else "run"
    await acreate_table_artifact(
        key=artifact_key("catalogue-summary", client),
        table=report.summary_rows(),
        description=f"Catalogue {mode} for **{client}** ({report.trigger}): Stokly items and "
        "SHOPLINE products seen, linked, unchanged, written, created, archived.",
    )
    await publish_exceptions("catalogue", client, report.exceptions, mode)
    if report.missing:
        await acreate_table_artifact(
            key=artifact_key("catalogue-missing", client),
            table=report.missing[:MAX_ROWS],
            description=f"{len(report.missing)} Stokly item(s) SHOPLINE lacks or still lists "
            f"for **{client}** (the mapping reports them rather than creating or archiving)"
            + (f"; the first {MAX_ROWS} shown" if len(report.missing) > MAX_ROWS else "")
            + ".",
        )
    if report.dry_run:
        await acreate_table_artifact(
            key=artifact_key("catalogue-would-write", client),
            table=report.would_write[:MAX_ROWS],
            description=f"{len(report.would_write)} write(s) a live catalogue pass for "
            f"**{client}** would make"
            + (f"; the first {MAX_ROWS} shown" if len(report.would_write) > MAX_ROWS else "")
            + ".",
        )


@flow(name="catalogue", flow_run_name=run_name_of("catalogue"), log_prints=False)
async def catalogue_flow(
    mapping: str = "mappings/demo.yaml",
    trigger: Trigger = "manual",
    dry_run: bool = False,
) -> dict[str, int]:
    """Bring one client's SHOPLINE products and variants in line with Stokly's items.

    ``mapping`` is the client's mapping file, relative to the project root; ``trigger`` says why
    the run started; ``dry_run`` reads both systems and writes nothing anywhere.
    """
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    if sync_settings(loaded, "catalogue") is None:
        logger.info("the catalogue sync of %s is not enabled in %s: nothing to do", client, mapping)
        return {}
    logger.info("catalogue for %s (%s)%s", client, trigger, " — dry run" if dry_run else "")
    report = await update_catalogue(loaded, trigger, dry_run)
    await publish(report)
    numbers = counts(report)
    logger.info(
        "%s: %d item(s) seen, %d linked, %d unchanged, %d updated, %d created, %d archived, "
        "%d missing in SHOPLINE",
        client,
        numbers["items_seen"],
        numbers["linked"],
        numbers["unchanged"],
        numbers["updated"],
        numbers["created"],
        numbers["archived"],
        numbers["reported_missing"],
    )
    if not dry_run:
        emit_event(
            event=SYNCED_EVENT,
            resource={"prefect.resource.id": f"stokline.client.{client}"},
            payload={"trigger": trigger, "ok": report.ok, **numbers},
        )
    if not report.ok:
        # Published first, so the run's artifacts show what did get done; the run then fails,
        # which is what alerting automations watch. The next pass picks the rest up.
        raise IncompleteRun(incomplete(report))
    return numbers
