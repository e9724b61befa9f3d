"""`stokline audit`: what a client's integration must cover, read from both systems before go-live."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from stokline.cli import options

HELP = """\
Read SHOPLINE and Stokly for one client, strictly read-only, and report the gaps between them
and the mapping before any sync runs, most costly first. Each finding has its count, examples,
what it costs if nothing is done, and the team that owns it (operating_model.owners):

  catalogue   SHOPLINE SKUs matching no Stokly item (and near matches: case, separators,
              leading zeros), Stokly items not on SHOPLINE, SKUs colliding under skus.match,
              variants with no SKU, items skus.never_sync hides
  coverage    every location, shipping method, tax line, payment gateway and order source the
              window's orders use, with how many orders each, and which the mapping does not
              map; the paid orders the orders sync would stop at an exception, and why
  customers   phone-only buyers, and Stokly customers the identity rules would merge or find
              ambiguous (one phone, several emails)
  stock       levels where SHOPLINE's available differs from Stokly's sellable figure,
              oversell risk first
  orders      paid orders not in Stokly, the channel's sale orders with no SHOPLINE order,
              orders shipped in Stokly but unfulfilled in SHOPLINE
  finance     days whose payments would not reconcile (unmapped gateway, tax class with no
              ledger account)

The window is the orders placed in the last --days. Both APIs are read within their limits, at
the same time; progress goes to stderr. Rerunning is safe: nothing is written anywhere (the state
store is only read).

--draft FILE writes a first mapping from what was found: the --mapping file's sections, with
its locations, SKU overrides (one per near match), shipping methods, tax rules and payment
gateways written again from the data, each entry commented with its evidence. What a person must
decide is a placeholder starting "TODO:", which `stokline validate` lists at its line; nothing
runs from the file until they are made. An existing FILE is only replaced with --force.

--format md (default) prints the report; with -o DIR each format is written as a file there
(audit-<client>.md, .html, .json; csv writes findings.csv and one CSV per finding).

Exit status: 0 the report was made (whatever it found), 1 the mapping is invalid, a secret is
unset or an API failed, 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "audit",
        help="read both systems and report what the mapping must cover, before go-live",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mapping(parser)
    parser.add_argument(
        "--days",
        type=_days,
        default=30,
        metavar="N",
        help="the window: orders placed in the last N days (default: 30)",
    )
    parser.add_argument(
        "--format",
        action="append",
        choices=("md", "html", "json", "csv"),
        metavar="FORMAT",
        help="md, html, json or csv; repeat for several (default: md)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="write the report files into DIR instead of printing it",
    )
    parser.add_argument(
        "--draft",
        type=Path,
        metavar="FILE",
        help="also write a first mapping from what was found (see below)",
    )
    parser.add_argument(
        "--force", action="store_true", help="let --draft replace a file that exists"
    )
    options.add_verbose(parser)
    parser.set_defaults(handler=run)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid day count {text!r}: a whole number") from None
    if not 1 <= value <= 365:
        raise argparse.ArgumentTypeError(f"invalid day count {value}: from 1 to 365")
    return value


class _Steps:
    """The audit's reads as a progress bar (each step one read of one system)."""

    TOTAL = 8

    def __init__(self) -> None:
        from stokline.cli.run import Progress

        self.bar = Progress("audit")
        self.done = 0

    def __call__(self, _step: str) -> None:
        self.done += 1
        self.bar(self.done, self.TOTAL)


async def _audit(mapping: Any, store: Any, days: int, steps: _Steps) -> Any:
    from stokline.audit import run_audit
    from stokline.sync.clients import open_clients

    async with open_clients(mapping) as (shopline, stokly):
        return await run_audit(
            mapping, shopline=shopline, stokly=stokly, store=store, days=days, progress=steps
        )


def run(args: argparse.Namespace) -> int:
    from stokline.audit.render import to_html, to_json, to_markdown, write
    from stokline.cli._mappings import client_mapping
    from stokline.cli.session import api_failures, state_store

    prog = "stokline audit"
    formats = list(dict.fromkeys(args.format or ["md"]))
    if args.output is None and ("csv" in formats or len(formats) > 1):
        print(f"{prog}: error: csv and several formats need -o DIR", file=sys.stderr)
        return 2
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        print(f"{prog}: error: -o {args.output} is a file, not a folder", file=sys.stderr)
        return 2
    if args.draft is not None and args.draft.exists() and not args.force:
        print(f"{prog}: error: --draft {args.draft} exists; give --force to replace it",
              file=sys.stderr)  # fmt: skip
        return 2
    options.quiet_retries(args.verbose)
    mapping = client_mapping(args.mapping)
    print(f"{prog}: reading Stokly and SHOPLINE for {mapping.client.name} …", file=sys.stderr)
    steps = _Steps()
    with state_store(True) as store, api_failures(prog, mapping):
        report = asyncio.run(_audit(mapping, store, args.days, steps))
    steps.bar.close()
    requests = ", ".join(f"{k} {v}" for k, v in report.requests.items())
    print(
        f"{prog}: {len(report.findings)} finding(s) in {report.seconds:.1f} s "
        f"(API requests: {requests})",
        file=sys.stderr,
    )
    if args.draft is not None:
        _write_draft(prog, Path(args.mapping), args.draft, report)
    if args.output is None:
        render = {"md": to_markdown, "html": to_html, "json": to_json}[formats[0]]
        sys.stdout.write(render(report))
        return 0
    for fmt in formats:
        for path in write(report, fmt, args.output):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _write_draft(prog: str, source: Path, target: Path, report: Any) -> None:
    """Write the draft mapping (whole, or not at all) and say what is left to decide."""
    from stokline.audit.draft import draft_mapping
    from stokline.config import check_file, is_decision

    text = draft_mapping(source.read_text(encoding="utf-8"), report)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    problems = check_file(target).problems
    decisions = [p for p in problems if is_decision(p)]
    print(f"{prog}: wrote the draft mapping {target}: {len(decisions)} decision(s) left to "
          f"make (`stokline validate {target}` lists them)", file=sys.stderr)  # fmt: skip
    for other in problems:
        if other not in decisions:
            print(f"{prog}: note: {other.format()}", file=sys.stderr)
