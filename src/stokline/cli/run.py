"""`stokline run SYNC`: one pass of a sync from the terminal, without a Prefect server.

It calls the use case in `stokline.sync` directly — the same code the Prefect flow runs — so a
consultant rehearsing a mapping waits seconds, not the ~20 s a flow spends starting a temporary
Prefect server. Each sync is one entry of `SYNCS`, run by `_pass` with both clients open; its
use case returns a report with ``summary_rows()``. Fulfilment and finance join the table as their
use cases arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import IO, Any

from stokline.cli import options

HELP = """\
Run one pass of a sync for one client, from the terminal, without a Prefect server.
Progress goes to stderr; the summary (the same table the Prefect flow publishes) to stdout.

  stokline run orders --mapping mappings/demo.yaml            import what is due now
  stokline run orders --mapping mappings/demo.yaml --dry-run  show what would be created
  stokline run stock --mapping mappings/demo.yaml             push the levels that changed
  stokline run catalogue --mapping mappings/demo.yaml         update products from Stokly items
  stokline run fulfilment --mapping mappings/demo.yaml        send shipments' tracking to SHOPLINE
  stokline run finance --mapping mappings/demo.yaml --from 2025-06-01 --to 2025-06-30 --dry-run
                                                              payments and journals of a period

finance: --from/--to are days in the client's timezone (default: yesterday; one of them alone is
that one day). When the mapping requires approval the journals are printed first and posted only
after "y" on a terminal, or with --yes; without a terminal and without --yes nothing is posted.

--dry-run reads both systems but writes nothing anywhere: nothing in Stokly, nothing in
SHOPLINE, nothing in the state store. Credentials not in the environment are read from
.env.demo. --verbose also shows each HTTP retry. Exit status: 0 the pass ran (orders it could
not import are exceptions, listed and kept in the queue: see `stokline exceptions list`), 1 it
could not run or finish (invalid mapping, unset secret, an API unreachable or refusing, orders
deferred by a transient failure), 2 a usage error.
"""


class RunFailed(Exception):
    """Why a pass could not run, said in one line."""


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Progress:
    """A plain-text progress bar on a terminal; on a pipe or file, a line every tenth."""

    def __init__(self, label: str, stream: IO[str] | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        done = min(done, total)
        if self.tty:
            filled = round(self.width * done / total)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
            self._drawn = True
        else:
            tenth = done * 10 // total
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{total}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return " ".join(str(value).split())


def render_table(rows: Sequence[dict[str, Any]], *, max_width: int = 60) -> str:
    """Rows of dicts as an aligned text table (columns in first-seen order, long cells cut)."""
    if not rows:
        return "  (none)"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in r] for r in cells]
    widths = [max(len(columns[i]), *(len(r[i]) for r in cells)) for i in range(len(columns))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for r in cells:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


PLANS = (
    ("would_create", "would create"),
    ("would_push", "would push"),
    ("would_write", "would write"),
    ("would_post", "would post"),
)


def print_report(report: Any, out: IO[str]) -> None:
    """The summary, then what a dry run would create, then the run's exceptions."""
    out.write(render_table(report.summary_rows()) + "\n")
    if report.dry_run:
        # Each report names its plan for what it writes: sale orders, levels, product fields.
        for attribute, title in PLANS:
            planned = getattr(report, attribute, None)
            if planned is not None:
                out.write(f"\n{title} ({len(planned)}):\n")
                out.write(render_table(planned) + "\n")
    if report.exceptions:
        out.write(f"\nexceptions ({len(report.exceptions)}):\n")
        out.write(render_table(report.exceptions) + "\n")
    errors = getattr(report, "errors", [])
    if errors:
        out.write(f"\nnot finished ({len(errors)}): the next run retries\n")
        out.write("".join(f"  {line}\n" for line in errors))
    out.flush()


# ---------------------------------------------------------------------------------------------
# Syncs
# ---------------------------------------------------------------------------------------------


async def _pass(name: str, args: argparse.Namespace, mapping: Any, store: Any) -> Any:
    """One pass of the sync ``name`` with both clients open and a progress bar."""
    from stokline.sync.catalogue.sync import sync_catalogue
    from stokline.sync.clients import open_clients
    from stokline.sync.fulfilment.sync import sync_fulfilment
    from stokline.sync.orders.sync import sync_orders
    from stokline.sync.stock.sync import sync_stock

    if name == "finance":  # payments, then journals; its own period options and approval
        from stokline.cli.run_finance import finance_pass

        return await finance_pass(args, mapping, store)
    run = {
        "orders": sync_orders,
        "stock": sync_stock,
        "catalogue": sync_catalogue,
        "fulfilment": sync_fulfilment,
    }[name]
    progress = Progress(name)
    try:
        async with open_clients(mapping) as (shopline, stokly):
            return await run(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=store,
                dry_run=args.dry_run,
                trigger="manual",
                progress=progress,
            )
    finally:
        progress.close()


# name → help; each runs through `_pass` and returns a report with summary_rows().
SYNCS: dict[str, str] = {
    "orders": "import paid SHOPLINE orders into Stokly",
    "stock": "push sellable stock from Stokly to SHOPLINE (only levels that changed)",
    "catalogue": "bring SHOPLINE products and variants in line with Stokly items",
    "fulfilment": "send Stokly shipments to SHOPLINE as fulfillments with tracking",
    "finance": "record a period's payments and post its balanced ledger journals",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run",
        help="run one pass of a sync from the terminal (no Prefect server)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    syncs = parser.add_subparsers(dest="sync", metavar="SYNC", required=True)
    for name, summary in SYNCS.items():
        p = syncs.add_parser(name, help=summary, description=HELP.splitlines()[0])
        options.add_mapping(p)
        p.add_argument(
            "--dry-run",
            action="store_true",
            help="read both systems, write nothing anywhere, list what would be written",
        )
        options.add_verbose(p)
        p.set_defaults(handler=run)
        if name == "finance":
            from stokline.cli.run_finance import add_arguments

            add_arguments(p)


# Syncs that cannot run without their section in the mapping (the others have defaults).
NEEDS_SECTION = ("catalogue", "fulfilment", "finance")


def run(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import client_mapping
    from stokline.cli.session import api_failures, state_store
    from stokline.sync.finance.ledger.sync import LedgerError, PeriodError

    prog = f"stokline run {args.sync}"
    options.quiet_retries(args.verbose)
    mapping = client_mapping(args.mapping)
    if args.sync in NEEDS_SECTION and getattr(mapping.syncs, args.sync) is None:
        print(
            f"{prog}: error: {args.mapping} has no syncs.{args.sync} section, so this client"
            f" does not run the {args.sync} sync; add one (mappings/demo.yaml shows each key)",
            file=sys.stderr,
        )
        return 1
    try:
        with state_store(args.dry_run) as store, api_failures(prog, mapping):
            report = asyncio.run(_pass(args.sync, args, mapping, store))
    except (RunFailed, LedgerError) as exc:  # finance: approval refused, a period it cannot post
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, PeriodError) else 1
    print_report(report, sys.stdout)
    if not getattr(report, "ok", True):
        errors = getattr(report, "errors", None) or []
        why = f" ({errors[0]})" if errors else ""
        print(f"{prog}: error: the pass did not finish{why}; run it again", file=sys.stderr)
        return 1
    return 0
