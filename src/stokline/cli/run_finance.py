"""`stokline run finance`: a period's payments and ledger journals from the terminal.

The finance pass of `stokline run` (see `stokline.cli.run`): the same two steps the Prefect flow
runs — the payments and refunds recorded on their Stokly sale orders, then one balanced journal
per day, gateway and currency posted once — with the period as options (``--from``/``--to``,
default yesterday in the client's timezone). The reconciliation is its own command,
``stokline reconcile payouts``.

Like the flow, the pass reads SHOPLINE's money of the period once (`read_shopline_money`: the
orders, their transactions and the refunds behind the period's refund money) and hands that one
read to every step (``money=``): SHOPLINE allows a few requests a second, and with approval the
journals posted are built from the very read that was shown. A new run reads again.

Approval: when the mapping says ``syncs.finance.approval: required``, journals are posted only
after a person saw them. On a terminal the journals are printed and the command asks before
posting; ``--yes`` is that person's answer given in advance (the journals are still printed,
and exactly those are posted). Without a terminal and without ``--yes`` the command refuses
before reading anything: review with ``--dry-run``, then rerun with ``--yes`` — or approve the
run of the ``finance`` deployment in the Prefect UI.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import IO, Any

from stokline.cli import options

APPROVAL_HINT = (
    "review the journals with --dry-run, then rerun with --yes to post them, or approve the run "
    "of the finance deployment in the Prefect UI"
)


DESCRIPTION = """\
Record a period's SHOPLINE payments and refunds on their Stokly sale orders, then post one
balanced ledger journal per day, gateway and currency (each batch once; money that came after
a batch was posted goes into an adjustment batch). Days are the client's (client.timezone).

  stokline run finance --mapping mappings/demo.yaml --dry-run            yesterday, written nowhere
  stokline run finance --mapping mappings/demo.yaml --from 2025-06-15    that day
  stokline run finance --mapping mappings/demo.yaml --from 2025-06-01 --to 2025-06-30 --yes

Approval (syncs.finance.approval: required): the journals are printed and posted only after "y"
on a terminal, or with --yes (the person running the command approves what it prints). Without
a terminal and without --yes nothing is read or posted: review with --dry-run, then rerun with
--yes, or approve the run of the finance deployment in the Prefect UI. The payout
reconciliation is `stokline reconcile payouts`.

Payments of orders not in Stokly yet are listed with their total and what is done with them
(syncs.finance.unimported: held for a later run, or posted to a suspense account).

Exit status: 0 the pass ran (refused journals are exceptions for finance, listed and kept in
`stokline exceptions list`), 1 it could not run or finish, or the journals were not approved
("journals not approved: nothing posted"; the payments shown are recorded all the same), 2 a
usage error (a date that is not YYYY-MM-DD, --from after --to, a period ending after today).
"""

NOT_APPROVED = "journals not approved: nothing posted"
MAX_ORDERS_LISTED = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The finance pass's own options, next to --mapping, --dry-run and --verbose."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    options.add_period(
        parser,
        first="first day of the period, YYYY-MM-DD, in the client's timezone (default: yesterday)",
        last="last day of the period, included (default: the --from day)",
        not_a_date="{text} is not a date (YYYY-MM-DD)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="when the mapping requires approval, approve the journals this run prints and posts",
    )


def _say(out: IO[str], text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


def render_journals(report: Any, out: IO[str], currency: str = "") -> None:
    """Each journal with its lines and totals (refused ones with why)."""
    from stokline.cli.run import render_table

    for journal in [*report.journals, *report.refused]:
        state = "  REFUSED" if journal.refused else ""
        _say(
            out,
            f"\n{journal.batch_key}  {journal.debits} {journal.key.currency}  "
            f"{len(journal.orders)} order(s)  hash {journal.content_hash[:12]}{state}",
        )
        for problem in journal.problems:
            _say(out, f"  {problem.code}: {problem.message}")
        for note in journal.notes:
            _say(out, f"  note: {note}")
        rows = [{k: v for k, v in row.items() if k != "batch"} for row in journal.rows()]
        _say(out, render_table(rows))
    held = unimported_line(report, currency)
    if held:
        _say(out, f"\n{held}")


def unimported_line(report: Any, currency: str = "") -> str:
    """The money of orders not in Stokly yet and what the pass does with it; "" when none."""
    rows = getattr(report, "unimported", None) or []
    if not rows:
        return ""
    orders = list(dict.fromkeys(str(r.get("order") or r.get("shopline_id")) for r in rows))
    policy = report.unimported_policy
    if policy.startswith("suspense:"):
        what = f"posted to the suspense account {policy.partition(':')[2]}"
    else:
        what = "held for a later run, when their order is in Stokly"
    more = len(orders) - MAX_ORDERS_LISTED
    names = ", ".join(orders[:MAX_ORDERS_LISTED]) + (f" and {more} more" if more > 0 else "")
    count = f"{len(orders)} order" + ("" if len(orders) == 1 else "s")
    total = f"{report.unimported_total:,.2f} {currency}".strip()
    return (
        f"{total} of payments on {count} are not in Stokly "
        f"yet: {what} (policy: {policy}). Orders: {names}."
    )


def _interactive(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


async def finance_pass(
    args: argparse.Namespace,
    mapping: Any,
    store: Any,
    *,
    out: IO[str] | None = None,
    ask: Callable[[str], str] = input,
    stdin: Any = None,
) -> Any:
    """Payments, then journals (asking for approval when the mapping requires it).

    SHOPLINE's money of the period is read once, as the finance flow reads it, and every step
    works on that one read: the payments, the journals' preview and the journals posted (which
    are therefore exactly those previewed). A read that fails raises `ConnectorError`: nothing
    is recorded or posted then.

    Returns the ledger report; the payments' summary and the journals are printed on the way.
    Raises `PeriodError` for a period that cannot be posted and `RunFailed` when approval is
    required but cannot be asked for, or is refused.
    """
    from stokline.cli.run import Progress, RunFailed, render_table
    from stokline.sync.clients import open_clients
    from stokline.sync.finance.ledger.sync import PeriodError, post_ledger, resolve_period
    from stokline.sync.finance.payments.sync import sync_payments

    out = out or sys.stdout
    stdin = stdin if stdin is not None else sys.stdin
    settings = mapping.syncs.finance
    if settings is None:
        raise RunFailed(f"{mapping.source}: the mapping has no syncs.finance section")
    if args.start and args.end and args.start > args.end:
        raise PeriodError(f"--from {args.start} is after --to {args.end}")
    start, end = resolve_period(mapping, args.start, args.end)
    approval = settings.approval == "required" and not args.dry_run
    if approval and not args.yes and not _interactive(stdin):
        raise RunFailed(f"approval is required (syncs.finance.approval); {APPROVAL_HINT}")

    async with open_clients(mapping) as (shopline, stokly):
        money = await _read_money(mapping, shopline, start, end)
        common = {
            "shopline": shopline,
            "stokly": stokly,
            "store": store,
            "start": start,
            "end": end,
            "money": money,
        }
        progress = Progress("payments")
        try:
            payments = await sync_payments(
                mapping, dry_run=args.dry_run, progress=progress, **common
            )
        finally:
            progress.close()
        _say(out, "payments:")
        _say(out, render_table(payments.summary_rows()))
        if payments.exceptions:
            _say(out, f"\npayment exceptions ({len(payments.exceptions)}):")
            _say(out, render_table(payments.exceptions))

        async def ledger(
            dry_run: bool, approved: dict[str, str] | None = None, note: str | None = None
        ) -> Any:
            progress = Progress("journals")
            try:
                report = await post_ledger(
                    mapping,
                    dry_run=dry_run,
                    progress=progress,
                    trigger="manual",
                    approved=approved,
                    approval_note=note,
                    **common,
                )
                progress(report.orders_read, report.orders_read)  # their orders, all done
                return report
            finally:
                progress.close()

        approved: dict[str, str] | None = None
        note: str | None = None
        if approval:
            preview = await ledger(True)
            render_journals(preview, out, mapping.client.currency)
            approved = preview.approval()
            if preview.journals:
                if args.yes:
                    answer = "y"
                else:
                    answer = ask(f"\npost these {len(preview.journals)} journal(s)? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    raise RunFailed(_not_approved(payments))
                who = getpass.getuser()
                note = f"approved on the command line by {who}" + (" (--yes)" if args.yes else "")
        report = await ledger(args.dry_run, approved, note)
    if not approval:
        render_journals(report, out, mapping.client.currency)
    if report.batches and not report.dry_run:
        _say(out, "\nbatches:")
        _say(out, render_table(report.batches))
    _say(out, "\njournals:")
    report.errors.extend(f"payments: {e}" for e in payments.errors)
    if not payments.ok and not payments.errors:
        report.errors.append(f"payments: {payments.deferred} order(s) deferred to the next run")
    return report


def _not_approved(payments: Any) -> str:
    """What a refusal leaves: no journal, but the payments recorded before the question."""
    recorded = payments.payments_recorded + payments.refunds_recorded
    if not recorded:
        return NOT_APPROVED
    return (
        f"{NOT_APPROVED} (the {payments.payments_recorded} payment(s) and "
        f"{payments.refunds_recorded} refund(s) above are recorded on their Stokly sale orders)"
    )


async def _read_money(mapping: Any, shopline: Any, start: Any, end: Any) -> Any:
    """SHOPLINE's orders, transactions and refunds of the period: the pass's one read."""
    from stokline.cli.run import Progress
    from stokline.sync.finance.read import Period, read_shopline_money

    progress = Progress("SHOPLINE money")
    try:
        money = await read_shopline_money(
            shopline, Period.of(mapping, start, end), refunds=True, progress=progress
        )
    finally:
        progress.close()
    print(
        f"SHOPLINE's money: {len(money.orders)} order(s), {money.calls} request(s), read once "
        "for the payments and the journals",
        file=sys.stderr,
    )
    return money
