"""The scheduled stock pass: one client's sellable stock from Stokly onto SHOPLINE, in one flow run.

Orchestration only. The work — read both systems, derive each sellable level, push only the
levels that differ from the value last pushed, set back levels someone changed in SHOPLINE's
admin (found in a rotating slice of SHOPLINE's levels: each is read at least once per
``syncs.stock.drift_every``) — is `stokline.sync.stock.sync.sync_stock`, which is delta-only and idempotent: a retried or repeated
pass re-derives every level from Stokly and pushes what still differs, so a 429 storm or a
failed push loses nothing. The flow keeps its task runs few and coarse (one for the whole pass),
retries only transient failures, caches only the read-only Stokly location list, and never caches
a write (a cached write is silently skipped).

The full pass and the event path (flows/stock_events.py) of one client never write one level at
the same time, and a goods receipt never waits for a whole full pass: the sync keeps them apart
SKU by SKU (`stokline.sync.stock.claims`). A full pass claims a few levels at a time just before
writing them and leaves to the event path any level it is writing or wrote after the full pass
began; otherwise a pass that read Stokly before a goods receipt could push its older level after
the event path pushed the newer one. A dry run reads everything and writes nothing.

Artifacts of each run (keys end in the client's name):

- ``stock-summary-<client>``: the pass in figures (levels computed, changed, pushed, failed,
  drift corrected, SHOPLINE levels read, oversell risk, API calls, seconds);
- ``stock-exceptions-<client>``: exceptions opened or resolved (unknown SHOPLINE SKUs, refusals);
- ``stock-reconcile-<client>``: the levels that differed when the pass read them — Stokly
  sellable beside SHOPLINE available, the difference, the oversell-risk flag and whether this pass
  set it right — oversell risk first, at most `RECONCILE_ROWS` rows; the same rows as
  ``stokline reconcile stock`` prints; ``stock-reconcile-headline-<client>``: its counts;
- ``stock-would-push-<client>`` (dry runs): the levels a live pass would write.

Each live run emits ``stokline.stock.synced`` on the resource ``stokline.client.<client>`` with
``trigger`` (text), ``ok`` (bool) and these whole numbers: ``levels_computed``,
``levels_changed``, ``pushed``, ``failed``, ``drift_corrected``, ``skipped_excluded``,
``levels_read`` (SHOPLINE levels the pass read: those it may push and its drift slice),
``differences`` (levels that differed when read), ``oversell_risk_found`` (levels where SHOPLINE
showed more than Stokly can fulfil when read), ``oversell_risk`` (those still at risk after the
pass: its push failed — what an alert should watch), ``exceptions`` and ``api_calls``.
When ``oversell_risk`` is above zero it also emits ``stokline.stock.oversell-risk`` (those two
counts): Prefect triggers match event names, not payload values, and the oversell alert waits for it.
A pass that did not finish (``report.ok`` false) publishes all of that first and then fails the
run, which is what alerting automations watch; the next pass picks the rest up.

Deployed by ``stokline deploy`` (every 5 minutes, the mapping's ``syncs.stock.every``); run once
from the terminal with ``stokline run stock`` instead, which needs no server.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from stokline.config import Mapping
from stokline.orchestration.common import (
    artifact_key,
    locations_for,
    run_name_of,
)
from stokline.orchestration.passes import (
    clients_and_store,
    fail_if_unfinished,
    pass_task,
    publish_summary,
    start_pass,
)
from stokline.orchestration.stock import (
    emit_synced,
    incomplete,
    run_pass,
    stock_numbers,
)
from stokline.sync.stock.report import StockReport

Trigger = Literal["schedule", "manual"]

RECONCILE_ROWS = 500
"""Rows of the reconcile artifact: enough to act on, small enough for the UI to render; the
headline counts all of them, and ``stokline reconcile stock --csv`` lists every one."""


@pass_task("push-stock")
async def push_stock(
    mapping: Mapping,
    trigger: str,
    dry_run: bool,
    check_drift: bool,
    locations: dict[str, str] | None = None,
) -> StockReport:
    """The whole pass in one task run: per-level task runs would cost more than the levels."""
    async with clients_and_store(mapping, dry_run) as (shopline, stokly, store):
        return await run_pass(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=store,
            trigger=trigger,
            dry_run=dry_run,
            check_drift=check_drift,
            locations=locations,
        )


def reconcile_rows(report: StockReport, limit: int = RECONCILE_ROWS) -> list[dict[str, Any]]:
    """The differing levels the pass read, riskiest first, with whether it set each right."""
    found = report.reconciliation
    if found is None:
        return []
    rows = []
    for comparison in found.comparisons:
        if len(rows) >= limit or not comparison.differs:
            break  # differing rows come first
        row = comparison.row()
        row["set_right_by_this_pass"] = "yes" if comparison.key in found.corrected else "no"
        rows.append(row)
    return rows


def reconcile_headline(report: StockReport, shown: int) -> str:
    found = report.reconciliation
    assert found is not None
    if report.dry_run:
        outcome = (
            f"A live pass would push {len(report.would_push)} level(s); this dry run wrote "
            f"nothing, so **{found.oversell_risk_remaining}** level(s) remain at oversell risk."
        )
    else:
        outcome = (
            f"This pass set {len(found.corrected)} of the {found.differences} difference(s) "
            f"right; **{found.oversell_risk_remaining}** level(s) remain at oversell risk."
        )
    lines = [
        f"**{found.headline()}.**",
        "",
        outcome,
        "",
        "difference = SHOPLINE available − Stokly sellable (positive: SHOPLINE shows more than "
        "Stokly can fulfil); empty: SHOPLINE has no level for the item at that location.",
    ]
    if found.differences > shown:
        lines += [
            "",
            f"The table shows the first {shown} of {found.differences}, oversell risk first; "
            "`stokline reconcile stock --csv FILE` lists every level.",
        ]
    return "\n".join(lines)


async def publish(report: StockReport) -> None:
    """The run's summary, exceptions, reconciliation (and, for a dry run, what it would push)."""
    client = report.client
    mode = "dry run" if report.dry_run else "run"
    await publish_summary(
        "stock", report, "levels computed, changed, pushed, drift corrected, oversell risk."
    )
    if report.reconciliation is not None:
        rows = reconcile_rows(report)
        headline = reconcile_headline(report, len(rows))
        await acreate_table_artifact(
            key=artifact_key("stock-reconcile", client),
            table=rows,
            description=headline,
        )
        await acreate_markdown_artifact(
            key=artifact_key("stock-reconcile-headline", client),
            markdown=headline,
            description=f"Stock reconciliation of this {mode} for {client}",
        )
    if report.dry_run:
        await acreate_table_artifact(
            key=artifact_key("stock-would-push", client),
            table=report.would_push,
            description=f"Levels a live stock pass for **{client}** would push.",
        )


@flow(name="stock", flow_run_name=run_name_of("stock"), log_prints=False)
async def stock_flow(
    mapping: str = "mappings/demo.yaml",
    trigger: Trigger = "manual",
    dry_run: bool = False,
    check_drift: bool = True,
) -> dict[str, int]:
    """Push one client's changed sellable stock levels to SHOPLINE and publish what happened.

    ``mapping`` is the client's mapping file, relative to the project root; ``trigger`` says why
    the run started; ``dry_run`` reads both systems and writes nothing anywhere; ``check_drift``
    also sets back levels changed in SHOPLINE since they were pushed.
    """
    logger = get_run_logger()
    loaded = start_pass("stock", mapping, trigger, dry_run)
    if loaded is None:
        return {}
    client = loaded.client.name
    locations = await locations_for(mapping, loaded)
    report = await push_stock(loaded, trigger, dry_run, check_drift, locations)
    await publish(report)
    numbers = stock_numbers(report)
    logger.info(
        "%s: %d level(s) computed, %d changed, %d pushed, %d failed, %d drift corrected, "
        "%d at oversell risk when read, %d still at risk",
        client,
        numbers["levels_computed"],
        numbers["levels_changed"],
        numbers["pushed"],
        numbers["failed"],
        numbers["drift_corrected"],
        numbers["oversell_risk_found"],
        numbers["oversell_risk"],
    )
    if not dry_run:
        emit_synced(report, numbers)
    fail_if_unfinished(report, incomplete)
    return numbers
