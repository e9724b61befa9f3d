"""`stokline reconcile`: set what SHOPLINE shows beside what Stokly holds, read-only.

The parent command holds one sub-command per kind of reconciliation. `stock` lives here; each
other kind lives in its own module exposing ``register(kinds)``, added to `register` below with
one line. The stock comparison itself is `stokline.sync.stock.reconcile.reconcile_stock`, the same rows the
scheduled stock pass publishes as its ``stock-reconcile-<client>`` artifact.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from stokline.cli import options, reconcile_payouts

HELP = """\
Set SHOPLINE beside Stokly and list where they differ. Read-only: nothing is written to
either system or to the state store.
"""

STOCK_HELP = """\
Stokly's sellable stock beside SHOPLINE's available quantity, per SKU and SHOPLINE location,
computed exactly as the stock pass computes what it pushes: the sum over the Stokly locations
mapped to the SHOPLINE location of (on hand − quarantined − allocated), less the location's
buffer and the units in paid SHOPLINE orders not yet in Stokly, never below 0.

  stokline reconcile stock --mapping mappings/demo.yaml                       headline and table
  stokline reconcile stock --mapping mappings/demo.yaml --only-differences    just what differs
  stokline reconcile stock --mapping mappings/demo.yaml --csv stock.csv       also every row as CSV
  stokline reconcile stock --mapping mappings/demo.yaml --csv -               CSV on stdout only

difference = SHOPLINE available − Stokly sellable. Positive: SHOPLINE sells units Stokly does not
have — oversell risk, listed first, largest first. Negative: SHOPLINE under-sells. Empty: SHOPLINE
has no level for the item at that location. The terminal shows the first --limit rows; the CSV
has every row. The next stock pass (`stokline run stock`, or the scheduled one) sets the
differences right.

Credentials not in the environment are read from .env.demo. Progress goes to stderr. Exit status:
0 every level agrees, 1 differences found or the reconciliation could not run (invalid mapping,
unset secret, an API unreachable), 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="set SHOPLINE beside Stokly (stock, ...) and list the differences, read-only",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    register_stock(kinds)
    reconcile_payouts.register(kinds)
    # Each further kind is one line here: its module's register(kinds).


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid row count {text!r}: a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid row count {value}: 0 (all) or more")
    return value


def register_stock(kinds: argparse._SubParsersAction) -> None:
    """Add ``stock`` to the sub-commands of `stokline reconcile`."""
    parser = kinds.add_parser(
        "stock",
        help="Stokly sellable beside SHOPLINE available per SKU and location; oversell risk first",
        description=STOCK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mapping(parser)
    options.add_csv(parser, "every row")
    parser.add_argument(
        "--only-differences",
        action="store_true",
        help="leave out the levels that agree (in the table and the CSV)",
    )
    parser.add_argument(
        "--limit",
        type=_limit,
        default=50,
        metavar="ROWS",
        help="rows the terminal table shows (default: 50; 0 shows all)",
    )
    options.add_verbose(parser)
    parser.set_defaults(handler=run_stock)


async def _reconcile_stock(mapping: Any, store: Any) -> Any:
    from stokline.sync.clients import open_clients
    from stokline.sync.stock.reconcile import reconcile_stock

    async with open_clients(mapping) as (shopline, stokly):
        return await reconcile_stock(mapping, shopline=shopline, stokly=stokly, store=store)


def run_stock(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import client_mapping
    from stokline.cli.run import render_table
    from stokline.cli.session import api_failures, state_store

    prog = "stokline reconcile stock"
    options.quiet_retries(args.verbose)
    csv = options.CsvTarget(args.csv)
    csv.check(prog)  # before reading anything
    mapping = client_mapping(args.mapping)
    print(f"{prog}: reading Stokly and SHOPLINE for {mapping.client.name} …", file=sys.stderr)
    # Read-only: never creates a state store that is not there.
    with state_store(True) as store, api_failures(prog, mapping):
        result = asyncio.run(_reconcile_stock(mapping, store))
    print(
        f"{prog}: compared {result.compared} level(s) in {result.seconds:.1f} s "
        f"({result.api_calls} API calls)",
        file=sys.stderr,
    )
    if csv.stdout_only:
        result.write_csv(sys.stdout, only_differences=args.only_differences)
        sys.stdout.flush()
    else:
        out = sys.stdout
        out.write(result.headline() + "\n")
        limit = args.limit or None
        rows = result.rows(only_differences=args.only_differences, limit=limit)
        out.write(render_table(rows) + "\n")
        total = result.differences if args.only_differences else result.compared
        if limit is not None and total > limit:
            more = "--csv FILE lists every row" if csv.path is None else f"{args.csv} has all"
            out.write(f"  … {total - limit} more row(s); --limit 0 shows all, {more}\n")
        out.flush()
    csv.save(
        prog,
        lambda stream: result.write_csv(stream, only_differences=args.only_differences),
        lambda written: f"{written} row(s) written to {args.csv}",
    )
    if result.errors:
        print(f"{prog}: error: {result.errors[0]}", file=sys.stderr)
        return 1
    return 1 if result.differences else 0
