"""`stokline reconcile payouts`: SHOPLINE's money beside the Stokly ledger, from the terminal.

It runs `stokline.sync.finance.payouts.reconcile.reconcile_payouts` — the same comparison every finance run publishes as
an artifact — for a period of days in the client's timezone and prints it, or writes it as CSV.
Read-only: nothing is written to either system or to the state store.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, timedelta
from typing import IO, Any

from stokline.cli import options

HELP = """\
Set SHOPLINE's successful transactions and refunds beside what Stokly holds, per payment
gateway, day (in the client's timezone) and currency, and list every variance with the orders
behind it. Read-only: nothing is written anywhere.

  stokline reconcile payouts --mapping mappings/demo.yaml                    yesterday
  stokline reconcile payouts --mapping mappings/demo.yaml --from 2026-03-01 --to 2026-03-31
  stokline reconcile payouts --mapping mappings/demo.yaml --csv payouts.csv  also as CSV
  stokline reconcile payouts --mapping mappings/demo.yaml --csv -            CSV on stdout only

Columns: SHOPLINE in/out/net (sales and captures in, refunds out); Stokly recorded (the payment
records on the sale orders, by gateway transaction id); Stokly ledger (the journals stokline
posted, on each gateway's ledger account). A row is a variance when SHOPLINE's net differs from
the ledger's or from what Stokly recorded for any order; "not posted" means money with no journal
yet. Each variance names its orders: missing in Stokly, a different amount, only in Stokly, or
not imported at all. The CSV has one line per row; its "orders" column names the orders.

--from and --to are days (YYYY-MM-DD) in the client's timezone, both included; without them,
yesterday; either alone is one day. Credentials not in the environment are read from .env.demo.
Progress goes to stderr. Exit status: 0 everything reconciles, 1 variances found or the
reconciliation could not run (invalid mapping, unset secret, an API unreachable), 2 a usage error.
"""


class UsageError(Exception):
    """A command-line mistake: one line, exit code 2."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``payouts`` to the sub-commands of `stokline reconcile`."""
    parser = sub.add_parser(
        "payouts",
        help="SHOPLINE transactions and refunds beside the Stokly ledger, with every variance",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mapping(parser)
    options.add_period(
        parser,
        first="first day (default: yesterday)",
        last="last day, included (default: yesterday)",
        not_a_date="invalid date {text}: use YYYY-MM-DD",
    )
    options.add_csv(parser, "the rows")
    options.add_verbose(parser)
    parser.set_defaults(handler=run)


def period(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The days to reconcile from the options, given today in the client's timezone."""
    if start is None and end is None:
        start = end = today - timedelta(days=1)
    start = start or end
    end = end or start
    assert start is not None and end is not None
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    if end > today:
        raise UsageError(f"--to {end} is in the future (today is {today} in the client's timezone)")
    return start, end


def _print_variances(result: Any, out: IO[str]) -> None:
    from stokline.cli.run import render_table

    for variance in result.variances:
        title = f"{variance['gateway']} {variance['day']} {variance['currency']}"
        out.write(f"\n{variance['status']}: {title}")
        out.write(
            f" (SHOPLINE {variance['shopline_net']}, Stokly recorded {variance['stokly_net']}"
        )
        if result.ledger_expected:
            out.write(f", ledger {variance['ledger_net'] or 'none'}")
        out.write(")\n")
        for note in variance["notes"]:
            out.write(f"  {note}\n")
        if variance["orders"]:
            out.write(render_table(variance["orders"]) + "\n")


async def _reconcile(mapping: Any, start: date, end: date, store: Any) -> Any:
    from stokline.cli.run import Progress
    from stokline.sync.clients import open_clients
    from stokline.sync.finance.payouts.reconcile import reconcile_payouts

    progress = Progress("payouts")
    try:
        async with open_clients(mapping) as (shopline, stokly):
            return await reconcile_payouts(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=store,
                start=start,
                end=end,
                progress=progress,
            )
    finally:
        progress.close()


def run(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import client_mapping
    from stokline.cli.run import render_table
    from stokline.cli.session import api_failures, state_store

    prog = "stokline reconcile payouts"
    options.quiet_retries(args.verbose)
    mapping = client_mapping(args.mapping)
    try:
        start, end = period(args.start, args.end, datetime.now(mapping.client.tz).date())
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    csv = options.CsvTarget(args.csv)
    csv.check(prog)  # before reading anything
    # Read-only: never creates a state store that is not there.
    with state_store(True) as store, api_failures(prog, mapping):
        result = asyncio.run(_reconcile(mapping, start, end, store))
    if csv.stdout_only:
        result.to_csv(sys.stdout)
        sys.stdout.flush()
    else:
        out = sys.stdout
        out.write(result.headline() + "\n")
        if result.groups:
            out.write(render_table(result.summary_rows()) + "\n")
        _print_variances(result, out)
        out.flush()
    csv.save(prog, result.to_csv, lambda _: f"CSV written to {args.csv}")
    if result.errors:
        print(f"{prog}: error: {result.errors[0]}", file=sys.stderr)
        return 1
    return 0 if result.ok else 1
