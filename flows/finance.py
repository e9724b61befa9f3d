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
   that changed meanwhile is left for the next run. Not approved: nothing is posted.
3. **Reconciliation** (`reconcile_payouts`, read-only): SHOPLINE's money beside Stokly's records
   and ledger per gateway, day and currency, every variance with the orders behind it.

Every run publishes the journals (a table of their lines and a markdown page), the batches with
their outcome (posted, adjustment, already posted, refused), the exceptions and the
reconciliation. A dry run does all of it and writes nothing anywhere: it is how finance previews
a period. The period defaults to yesterday in the client's timezone; the deployment runs nightly
at 02:00 client time and from the UI's Run button with ``start``, ``end`` and ``dry_run``.

Tasks are few and coarse (each task run costs about a second) and never cached: every step
writes, or reads money that must be current. Transient failures are retried a couple of times;
the steps are idempotent, so a retry or a rerun never records or posts anything twice. The one
read is passed to the steps as ``quote(money)``, so Prefect does not walk through every order of
it looking for futures.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote
from pydantic import Field

from stokline.config import Mapping
from stokline.orchestration.common import (
    IncompleteRun,
    artifact_key,
    client_of,
    load_client_mapping,
    progress_logger,
    publish_exceptions,
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
from stokline.sync.finance.ledger.sync import post_ledger, resolve_period
from stokline.sync.finance.payments.sync import PaymentsReport, sync_payments
from stokline.sync.finance.payouts.reconcile import PayoutReconciliation, reconcile_payouts
from stokline.sync.finance.read import Period, ShoplineMoney, read_shopline_money

Trigger = Literal["schedule", "manual"]

POSTED_EVENT = "stokline.finance.posted"
APPROVAL_TIMEOUT_SECONDS = 20 * 3600
"""How long a run waits for approval: a night's 02:00 run can be approved until 22:00."""
APPROVAL_POLL_SECONDS = 10
MAX_ORDERS_LISTED = 20


class JournalApproval(RunInput):
    """The form a finance user fills in on the paused run, after reading its journal artifacts."""

    approve: bool = Field(
        default=False, description="Post the journals exactly as the artifacts of this run show."
    )
    note: str = Field(default="", description="Who approved and why; kept in the audit log.")


def run_name() -> str:
    """``finance-<client>-<period>[-dry-run]``, e.g. ``finance-demo-outdoor-2025-06-15``."""
    params = flow_run.parameters
    client = client_of(str(params.get("mapping", "")))
    start, end = params.get("start"), params.get("end")
    if start is None and end is None:
        period = "yesterday"
    else:
        first, last = str(start or end), str(end or start)
        period = first if first == last else f"{first}-to-{last}"
    return artifact_key("finance", client, period) + ("-dry-run" if params.get("dry_run") else "")


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


def approval_request(preview: LedgerReport) -> str:
    """The text above the approval form: what is to be posted, and where to read it."""
    lines = [
        f"**{len(preview.journals)} journal(s)** for **{preview.client}**, {preview.period}:",
        "",
    ]
    for journal in preview.journals:
        lines.append(
            f"- `{journal.batch_key}`: {journal.debits} {journal.key.currency} "
            f"({len(journal.lines)} lines, hash `{journal.content_hash[:12]}`)"
        )
    if preview.refused:
        lines += ["", f"{len(preview.refused)} journal(s) are refused and will not be posted."]
    lines += [
        "",
        "Read the lines in this run's **finance-journals** artifacts. Approve to post exactly "
        "these journals; a journal that changes before posting is left for the next run.",
    ]
    return "\n".join(lines)


# -- rendering ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def journals_markdown(report: LedgerReport, heading: str) -> str:
    """The journals of a report (and those refused) as a markdown page."""
    out = [f"# {heading}", ""]
    if not report.journals and not report.refused:
        out.append("No journal to post: nothing new moved in this period, or it is all posted.")
    for journal in [*report.journals, *report.refused]:
        title = f"## `{journal.batch_key}` — {journal.debits} {journal.key.currency}"
        out += [title + (" — **refused**" if journal.refused else ""), ""]
        for problem in journal.problems:
            out.append(f"> **{problem.code}**: {_cell(problem.message)}")
        for note in journal.notes:
            out.append(f"> {_cell(note)}")
        if journal.problems or journal.notes:
            out.append("")
        out += ["| account | description | debit | credit |", "|---|---|---:|---:|"]
        for line in journal.lines:
            debit = str(line.debit) if line.debit else ""
            credit = str(line.credit) if line.credit else ""
            out.append(f"| {line.account} | {_cell(line.description)} | {debit} | {credit} |")
        out.append(f"| **total** | | **{journal.debits}** | **{journal.credits}** |")
        orders = ", ".join(journal.orders[:MAX_ORDERS_LISTED])
        more = len(journal.orders) - MAX_ORDERS_LISTED
        out += [
            "",
            f"Date {journal.key.day}, {journal.sales} sale(s), {journal.refunds} refund(s); "
            f"content hash `{journal.content_hash[:12]}`. Orders: {_cell(orders) or '—'}"
            + (f" and {more} more" if more > 0 else ""),
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


async def publish_journals(report: LedgerReport, stage: str) -> None:
    """The journals (lines table and markdown page) and the batches' outcomes."""
    client = report.client
    await acreate_table_artifact(
        key=artifact_key("finance-journals", client),
        table=report.line_rows() or [],
        description=f"Journal lines for **{client}**, {report.period} ({stage}).",
    )
    await acreate_markdown_artifact(
        key=artifact_key("finance-journal-pages", client),
        markdown=journals_markdown(report, f"Journals for {client}, {report.period} — {stage}"),
        description=f"Journals for {client}, {report.period} ({stage}).",
    )
    await acreate_table_artifact(
        key=artifact_key("finance-batches", client),
        table=report.batches or [],
        description=f"Ledger batches of {report.period} for **{client}** and what became of "
        "each: posted, adjustment posted, already posted (skipped), refused, would post.",
    )


async def publish_summary(
    ledger: LedgerReport,
    payments: PaymentsReport | None,
    reconciliation: PayoutReconciliation | None,
    money: ShoplineMoney | None = None,
) -> None:
    rows = [
        *(
            [{"metric": "SHOPLINE requests (one read for the whole run)", "value": money.calls}]
            if money is not None
            else []
        ),
        *ledger.summary_rows(),
        *(
            [
                {"metric": f"payments: {r['metric']}", "value": r["value"]}
                for r in payments.summary_rows()
            ]
            if payments is not None
            else []
        ),
        *(
            [{"metric": "reconciliation", "value": reconciliation.headline()}]
            if reconciliation is not None
            else []
        ),
    ]
    mode = "dry run" if ledger.dry_run else "run"
    await acreate_table_artifact(
        key=artifact_key("finance-summary", ledger.client),
        table=rows,
        description=f"Finance {mode} for **{ledger.client}**, {ledger.period}: payments recorded, "
        "journals posted and skipped, the reconciliation's verdict.",
    )
    await publish_exceptions(
        "finance",
        ledger.client,
        [*(payments.exceptions if payments is not None else []), *ledger.exceptions],
        mode,
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
    mapping: str = "mappings/demo.yaml",
    start: date | None = None,
    end: date | None = None,
    dry_run: bool = False,
    trigger: Trigger = "manual",
) -> dict[str, Any]:
    """Record one client's payments, post its ledger journals and reconcile its payouts.

    ``mapping`` is the client's mapping file, relative to the project root; ``start`` and ``end``
    are the period's first and last day in the client's timezone (both empty: yesterday; one:
    that day); ``dry_run`` builds and publishes everything and writes nothing anywhere;
    ``trigger`` says why the run started (the nightly schedule or a person).
    """
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    if loaded.syncs.finance is None:
        raise ValueError(f"{mapping}: the mapping has no syncs.finance section; nothing to post")
    first, last = resolve_period(loaded, start, end)
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
            await publish_journals(preview, "awaiting approval")
            await publish_summary(preview, payments, None, read)
            logger.info("%d journal(s) await approval in the Prefect UI", len(preview.journals))
            answer = await apause_flow_run(
                wait_for_input=JournalApproval.with_initial_data(
                    description=approval_request(preview), approve=False
                ),
                timeout=APPROVAL_TIMEOUT_SECONDS,
                poll_interval=APPROVAL_POLL_SECONDS,
            )
            hashes = approved_hashes(answer, preview)
            verdict = "approved" if hashes is not None else "not approved: nothing posted"
            await acreate_markdown_artifact(
                key=artifact_key("finance-approval", client),
                markdown=f"**{verdict.capitalize()}.** {_cell(answer.note)}".strip(),
                description=f"Approval of {client}'s journals, {label}",
            )
            logger.info("journals %s%s", verdict, f" ({answer.note})" if answer.note else "")
            if hashes is None:
                reconciliation = await reconcile(loaded, first, last, money)
                await publish_reconciliation(reconciliation)
                await publish_summary(preview, payments, reconciliation, read)
                if problems:
                    raise IncompleteRun("; ".join(problems))
                return {**counts(preview, payments), "approved": False}
            approved, note = hashes, answer.note or None
    # With approval, the real pass posts only what was approved (an empty approval posts nothing
    # new, but still records refused journals as exceptions and finishes interrupted batches).
    ledger = await post_journals(
        loaded, first, last, dry_run, approved, note, trigger=trigger, money=money
    )
    await publish_journals(ledger, "dry run: nothing posted" if dry_run else "posted")
    reconciliation = await reconcile(loaded, first, last, money)
    await publish_reconciliation(reconciliation)
    await publish_summary(ledger, payments, reconciliation, read)
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
