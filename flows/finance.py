"""The finance flow: a period's payments, ledger journals and payout reconciliation for one client.

Orchestration only; the work is in `stokline.sync`. In order:

0. **SHOPLINE's money** (`read_shopline_money`): the period's orders, their transactions and the
   refunds behind the period's refund money, read **once** and handed to every step below. Each
   step could read it on its own (the CLI commands do), but SHOPLINE allows a few requests a
   second: one read instead of three (four with approval) saves minutes a day, and every step
   sees exactly the same money — with approval, the journals posted are built from the very read
   that was approved. A new run reads again: nothing of it is cached across runs.
1. **Payments** (`sync_payments`): each SHOPLINE payment and refund of the period recorded on its
   Stokly sale order, exactly once.
2. **Journals** (`post_ledger`): one balanced journal per (day, gateway, currency), posted once per
   batch key; money that came after a batch was posted goes into an adjustment batch. When the
   mapping says ``syncs.finance.approval: required``, the journals are first built without
   writing anything and published, and the run **pauses** for a finance user: the Prefect UI
   shows the journals as artifacts and a form (approve yes/no, a note) on the paused run. Only
   journals exactly as shown are posted after approval (their content hashes are checked); one
   that changed meanwhile is left for the next run. Not approved: nothing is posted and the run
   ends **Cancelled** ("journals not approved: nothing posted"), never Completed.
3. **Reconciliation** (`reconcile_payouts`, read-only): SHOPLINE's money beside Stokly's records
   and ledger per gateway, day and currency, every variance with the orders behind it.

Every run publishes the journals (a table of their lines and a markdown page), the batches with
their outcome (posted, adjustment, already posted, refused), the exceptions and the
reconciliation, each saying the run's stage: dry run, awaiting approval, not approved, live. A
dry run does all of it and writes nothing anywhere: it is how finance previews a period. The
period defaults to yesterday in the client's timezone; the deployment runs nightly at 02:00
client time and from the UI's Run button, whose form explains each parameter
(`stokline.orchestration.finance`). Runs are named after the client, the period, the trigger and
the time they started, e.g. ``finance-demo-outdoor-2025-06-15-manual-0912``.

Tasks are few and coarse (each task run costs about a second) and never cached: every step
writes, or reads money that must be current. Transient failures are retried a couple of times;
the steps are idempotent, so a retry or a rerun never records or posts anything twice. The one
read is passed to the steps as ``quote(money)``, so Prefect does not walk through every order of
it looking for futures.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.client.schemas.objects import State
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Cancelled
from prefect.utilities.annotations import quote
from pydantic import Field

from stokline.config import Mapping
from stokline.orchestration.common import (
    IncompleteRun,
    artifact_key,
    load_client_mapping,
    progress_logger,
    publish_exceptions,
)
from stokline.orchestration.finance import (
    AWAITING,
    DRY_RUN,
    LIVE,
    NOT_APPROVED,
    NOT_APPROVED_MESSAGE,
    SAME_DAY,
    YESTERDAY,
    DryRun,
    FirstDay,
    LastDay,
    MappingPath,
    Stage,
    StartedBy,
    approval_request,
    batch_rows,
    cell,
    finance_run_name,
    form_period,
    journals_markdown,
    summary_rows,
)
from stokline.orchestration.passes import (
    attempts_left,
    clients_and_store,
    emit_client_event,
    pass_task,
    retry_if_unfinished,
    run_use_case,
)
from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.sync import PaymentsReport, sync_payments
from stokline.sync.finance.payouts.reconcile import PayoutReconciliation, reconcile_payouts
from stokline.sync.finance.read import Period, ShoplineMoney, read_shopline_money

POSTED_EVENT = "stokline.finance.posted"
APPROVAL_TIMEOUT_SECONDS = 20 * 3600
"""How long a run waits for approval: a night's 02:00 run can be approved until 22:00."""
APPROVAL_POLL_SECONDS = 10


class JournalApproval(RunInput):
    """The form a finance user fills in on the paused run, after reading its journal artifacts."""

    approve: bool = Field(
        default=False,
        description="On: post the journals exactly as the artifacts of this run show. Off: post "
        "nothing; the run ends Cancelled (journals not approved: nothing posted).",
    )
    note: str = Field(default="", description="Who approved and why; kept in the audit log.")


def run_name() -> str:
    """``finance-<client>-<period>-<trigger>-<HHMM>[-dry-run]``: see `finance_run_name`."""
    return finance_run_name(flow_run.parameters)


# -- the approval decision ----------------------------------------------------------------------


def needs_approval(mapping: Mapping, dry_run: bool, preview: LedgerReport) -> bool:
    """Pause for a person only when the mapping asks, something is to be posted, and it is real."""
    settings = mapping.syncs.finance
    return (
        settings is not None
        and settings.approval == "required"
        and not dry_run
        and bool(preview.journals)
    )


def approved_hashes(answer: JournalApproval | None, preview: LedgerReport) -> dict[str, str] | None:
    """What the answer lets the run post: the previewed journals by hash, or nothing (None)."""
    if answer is None or not answer.approve:
        return None
    return preview.approval()


# -- publishing ---------------------------------------------------------------------------------


async def publish_journals(report: LedgerReport, stage: Stage) -> None:
    """The journals (lines table and markdown page) and the batches' outcomes, as of ``stage``."""
    client, period = report.client, report.period
    await acreate_table_artifact(
        key=artifact_key("finance-journals", client),
        table=report.line_rows() or [],
        description=f"Journal lines for **{client}**, {period} ({stage.journals}).",
    )
    await acreate_markdown_artifact(
        key=artifact_key("finance-journal-pages", client),
        markdown=journals_markdown(report, f"Journals for {client}, {period} — {stage.journals}"),
        description=f"Journals for {client}, {period} ({stage.journals}).",
    )
    await acreate_table_artifact(
        key=artifact_key("finance-batches", client),
        table=batch_rows(report, stage) or [],
        description=f"Ledger batches of {period} for **{client}** ({stage.journals}) and what "
        "became of each: posted, adjustment posted, already posted (skipped), refused, would "
        "post, awaits approval, not approved.",
    )


async def publish_summary(
    ledger: LedgerReport,
    stage: Stage,
    currency: str,
    payments: PaymentsReport | None,
    reconciliation: PayoutReconciliation | None,
    money: ShoplineMoney | None = None,
) -> None:
    """The run's figures and its exceptions, each saying what the run did and did not write."""
    rows = summary_rows(
        ledger,
        stage,
        currency=currency,
        payments=payments,
        reconciliation=reconciliation,
        calls=money.calls if money is not None else None,
    )
    await acreate_table_artifact(
        key=artifact_key("finance-summary", ledger.client),
        table=rows,
        description=f"Finance {stage.run} for **{ledger.client}**, {ledger.period}: payments "
        "recorded, journals posted and skipped, the reconciliation's verdict.",
    )
    await publish_exceptions(
        "finance",
        ledger.client,
        [*(payments.exceptions if payments is not None else []), *ledger.exceptions],
        stage.run,
    )


async def publish_reconciliation(reconciliation: PayoutReconciliation) -> None:
    client = reconciliation.client
    await acreate_table_artifact(
        key=artifact_key("finance-reconciliation", client),
        table=reconciliation.rows or [],
        description=f"SHOPLINE beside Stokly per gateway, day and currency: "
        f"{reconciliation.headline()}. `stokline reconcile payouts --csv FILE` writes it as CSV.",
    )
    await acreate_markdown_artifact(
        key=artifact_key("finance-reconciliation-report", client),
        markdown=reconciliation.markdown(),
        description=reconciliation.headline(),
    )


# -- the steps ----------------------------------------------------------------------------------


@pass_task("read-shopline-money")
async def read_money(mapping: Mapping, start: date, end: date) -> ShoplineMoney:
    """SHOPLINE's orders, transactions and refunds of the period: the one read of the run.

    Never cached: money must be current, and each run reads again. Orders whose transactions or
    refunds could not be read make the task try again while attempts are left; after the last,
    the steps get what was read (payments defers those orders, the ledger posts nothing).
    """
    async with open_clients(mapping) as (shopline, _):
        money = await read_shopline_money(
            shopline,
            Period.of(mapping, start, end),
            refunds=True,
            progress=progress_logger("SHOPLINE money"),
        )
    unread = {**money.unread, **money.refunds_unread}
    if unread and attempts_left():
        raise IncompleteRun(
            f"reading SHOPLINE's money: {len(unread)} order(s) could not be read, e.g. "
            f"{next(iter(unread.values()))}"
        )
    get_run_logger().info(
        "SHOPLINE's money: %d order(s), %d with money on these days, %d request(s)",
        len(money.orders),
        len(money.movements),
        money.calls,
    )
    return money


def _unfinished(report: Any, what: str) -> None:
    """Retry the step while attempts are left; the last attempt's report is kept as it is."""
    retry_if_unfinished(
        report, lambda r: f"{what}: " + ("; ".join(r.errors) or "the step did not finish")
    )


@pass_task("record-payments")
async def record_payments(
    mapping: Mapping, start: date, end: date, dry_run: bool, money: ShoplineMoney | None = None
) -> PaymentsReport:
    """The period's SHOPLINE payments and refunds on their Stokly sale orders."""
    report = await run_use_case(
        sync_payments,
        mapping,
        dry_run=dry_run,
        progress="payments",
        start=start,
        end=end,
        money=money,
    )
    _unfinished(report, "recording payments")
    return report


@pass_task("post-journals")
async def post_journals(
    mapping: Mapping,
    start: date,
    end: date,
    dry_run: bool,
    approved: dict[str, str] | None = None,
    approval_note: str | None = None,
    trigger: str = "manual",
    money: ShoplineMoney | None = None,
) -> LedgerReport:
    """Build the period's journals and post what is new (dry: only build them)."""
    report = await run_use_case(
        post_ledger,
        mapping,
        dry_run=dry_run,
        progress="journals",
        start=start,
        end=end,
        trigger=trigger,
        approved=approved,
        approval_note=approval_note,
        money=money,
    )
    if report.fetch_ok:  # money that could not be read is the read task's to retry, not this one's
        _unfinished(report, "posting journals")
    return report


@pass_task("reconcile-payouts", jitter=None)
async def reconcile(
    mapping: Mapping, start: date, end: date, money: ShoplineMoney | None = None
) -> PayoutReconciliation:
    """SHOPLINE's money beside Stokly's (read-only)."""
    async with clients_and_store(mapping, dry_run=True) as (shopline, stokly, store):
        return await reconcile_payouts(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=store,
            start=start,
            end=end,
            progress=progress_logger("reconciliation"),
            money=money,
        )


def counts(ledger: LedgerReport, payments: PaymentsReport | None) -> dict[str, Any]:
    """The numbers of a run, for the flow's return value, the log and the event."""
    return {
        "period": ledger.period,
        "journals": len(ledger.journals),
        "posted": ledger.posted,
        "adjustments": ledger.adjustments,
        "already_posted": ledger.already_posted,
        "refused": len(ledger.refused),
        "not_approved": ledger.not_approved,
        "payments_recorded": payments.payments_recorded if payments is not None else 0,
        "refunds_recorded": payments.refunds_recorded if payments is not None else 0,
        "exceptions_opened": ledger.exceptions_opened
        + (payments.exceptions_opened if payments is not None else 0),
    }


# -- the flow -----------------------------------------------------------------------------------


@flow(name="finance", flow_run_name=run_name, log_prints=False)
async def finance_flow(
    mapping: MappingPath = "mappings/demo.yaml",
    start: FirstDay = YESTERDAY,
    end: LastDay = SAME_DAY,
    dry_run: DryRun = False,
    trigger: StartedBy = "manual",
) -> dict[str, Any] | State:
    """Record one client's payments, post its ledger journals and reconcile its payouts.

    The deployment's "Custom run" form shows each parameter with the description below.

    Args:
        mapping: The client's mapping file, relative to the project root, e.g.
            mappings/demo.yaml. The deployment sets it; leave it.
        start: The first day of the period, in the client's timezone (client.timezone). Leave
            "Yesterday" for yesterday, the nightly period, or pick "A day" and a date.
        end: The last day of the period, included. Leave "Same day as the first" for one day,
            or pick "A day" and a date (never after today; at most a year of days).
        dry_run: Preview only: build and publish the payments, journals and reconciliation as
            artifacts and write nothing anywhere (no payment, no journal, no approval asked).
        trigger: What started the run, kept in the run name and the audit log. The nightly
            schedule sets "schedule"; a person leaves "manual".
    """
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    if loaded.syncs.finance is None:
        raise ValueError(f"{mapping}: the mapping has no syncs.finance section; nothing to post")
    first, last = form_period(loaded, start, end)
    currency = loaded.client.currency
    label = str(first) if first == last else f"{first}..{last}"
    logger.info(
        "finance for %s, %s (%s)%s", client, label, trigger, " — dry run" if dry_run else ""
    )

    try:
        read = await read_money(loaded, first, last)
    except Exception as exc:  # its retries are spent: no step can work without SHOPLINE's money
        logger.error("reading SHOPLINE's money failed: %s", exc)
        raise IncompleteRun(
            f"reading SHOPLINE's money failed; nothing was recorded or posted: {exc}"
        ) from exc
    money = quote(read)  # one read for every step; Prefect passes it on without walking it

    problems: list[str] = []
    payments: PaymentsReport | None = None
    try:
        payments = await record_payments(loaded, first, last, dry_run, money)
    except Exception as exc:  # its retries are spent; the journals do not depend on it
        problems.append(f"recording payments failed: {exc}")
        logger.error("recording payments failed: %s", exc)

    approved: dict[str, str] | None = None
    note: str | None = None
    if loaded.syncs.finance.approval == "required" and not dry_run:
        preview = await post_journals(loaded, first, last, True, trigger=trigger, money=money)
        approved = {}
        if needs_approval(loaded, dry_run, preview):
            await publish_journals(preview, AWAITING)
            await publish_summary(preview, AWAITING, currency, payments, None, read)
            logger.info("%d journal(s) await approval in the Prefect UI", len(preview.journals))
            answer = await apause_flow_run(
                wait_for_input=JournalApproval.with_initial_data(
                    description=approval_request(preview, currency), approve=False
                ),
                timeout=APPROVAL_TIMEOUT_SECONDS,
                poll_interval=APPROVAL_POLL_SECONDS,
            )
            hashes = approved_hashes(answer, preview)
            verdict = "approved" if hashes is not None else NOT_APPROVED_MESSAGE
            await acreate_markdown_artifact(
                key=artifact_key("finance-approval", client),
                markdown=f"**{verdict.capitalize()}.** {cell(answer.note)}".strip(),
                description=f"Approval of {client}'s journals, {label}",
            )
            logger.info("%s%s", verdict, f" ({answer.note})" if answer.note else "")
            if hashes is None:
                await publish_journals(preview, NOT_APPROVED)
                reconciliation = await reconcile(loaded, first, last, money)
                await publish_reconciliation(reconciliation)
                await publish_summary(
                    preview, NOT_APPROVED, currency, payments, reconciliation, read
                )
                if problems:
                    raise IncompleteRun("; ".join(problems))
                # Cancelled, not Completed: a refusal must not look like a posting in the UI.
                # Not Failed either: nothing is broken and nothing is to retry, and a failed run
                # would raise the "sync run failed" alert for operations over finance's own
                # decision. Prefect's own "Cancelled" name, not a custom one ("Rejected"): the
                # heartbeat guard knows a run has ended by its state's name (ops.heartbeats).
                return Cancelled(
                    message=NOT_APPROVED_MESSAGE + (f" ({answer.note})" if answer.note else "")
                )
            approved, note = hashes, answer.note or None
    # With approval, the real pass posts only what was approved (an empty approval posts nothing
    # new, but still records refused journals as exceptions and finishes interrupted batches).
    ledger = await post_journals(
        loaded, first, last, dry_run, approved, note, trigger=trigger, money=money
    )
    stage = DRY_RUN if dry_run else LIVE
    await publish_journals(ledger, stage)
    reconciliation = await reconcile(loaded, first, last, money)
    await publish_reconciliation(reconciliation)
    await publish_summary(ledger, stage, currency, payments, reconciliation, read)
    numbers = counts(ledger, payments)
    logger.info(
        "%s %s: %d journal(s) posted (%d adjustments), %d already posted, %d refused; %s",
        client,
        label,
        numbers["posted"],
        numbers["adjustments"],
        numbers["already_posted"],
        numbers["refused"],
        reconciliation.headline(),
    )
    if not dry_run:
        emit_client_event(
            POSTED_EVENT,
            client,
            {"ok": ledger.ok and not problems, "reconciled": reconciliation.ok, **numbers},
        )
    problems += [*(payments.errors if payments is not None else []), *ledger.errors]
    if problems:
        # Published first, so the run's artifacts show what did get done; the run then fails,
        # which is what alerting automations watch. The next run finishes the rest.
        raise IncompleteRun("; ".join(problems))
    return numbers
