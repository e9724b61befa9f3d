"""The catalogue pass: one client's Stokly items onto SHOPLINE products and variants, in one run.

Orchestration only. The work — link variants to Stokly items by SKU, translate fields through the
mapping's templates, write only what changed since the last write (a content hash per item),
create or report missing items, archive or unpublish removed ones, never delete — is
`stokline.sync.catalogue.sync.sync_catalogue`, which is idempotent: a repeated pass over an unchanged catalogue
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

Deployed by ``stokline deploy`` (every 15 minutes, the mapping's ``syncs.catalogue.every``); run
once from the terminal with ``stokline run catalogue`` instead, which needs no server.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from stokline.config import Mapping
from stokline.orchestration.catalogue import SYNCED_EVENT, counts, incomplete
from stokline.orchestration.common import artifact_key, run_name_of
from stokline.orchestration.passes import (
    emit_synced_event,
    fail_if_unfinished,
    pass_task,
    publish_rows,
    publish_summary,
    retry_if_unfinished,
    run_use_case,
    start_pass,
)
from stokline.sync.catalogue.report import CatalogueReport
from stokline.sync.catalogue.sync import sync_catalogue

Trigger = Literal["schedule", "manual"]


@pass_task("sync-catalogue")
async def update_catalogue(mapping: Mapping, trigger: str, dry_run: bool) -> CatalogueReport:
    """The whole pass in one task run: it reads both catalogues whole anyway."""
    report = await run_use_case(
        sync_catalogue, mapping, dry_run=dry_run, progress="catalogue", trigger=trigger
    )
    retry_if_unfinished(report, incomplete)
    return report


async def publish(report: CatalogueReport) -> None:
    """The run's summary, exceptions, missing items (and, for a dry run, what it would write)."""
    client = report.client
    await publish_summary(
        "catalogue",
        report,
        "Stokly items and SHOPLINE products seen, linked, unchanged, written, created, archived.",
    )
    if report.missing:
        await publish_rows(
            artifact_key("catalogue-missing", client),
            report.missing,
            f"{len(report.missing)} Stokly item(s) SHOPLINE lacks or still lists for **{client}** "
            "(the mapping reports them rather than creating or archiving)",
        )
    if report.dry_run:
        await publish_rows(
            artifact_key("catalogue-would-write", client),
            report.would_write,
            f"{len(report.would_write)} write(s) a live catalogue pass for **{client}** would make",
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
    loaded = start_pass("catalogue", mapping, trigger, dry_run)
    if loaded is None:
        return {}
    client = loaded.client.name
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
        emit_synced_event(SYNCED_EVENT, report, numbers)
    fail_if_unfinished(report, incomplete)
    return numbers
