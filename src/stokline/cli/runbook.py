"""`stokline runbook`: the client's operating model, as Markdown for the people who run it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stokline.config import check_file

HELP = """\
Write the operating model of one client as a Markdown runbook, for operations, e-commerce and
finance rather than engineers: which system is the master of each kind of data, what flows
where and how often, which team owns each kind of exception and the commands that resolve it,
the daily checks, the stock and payout reviews, the alerts and whom to escalate to.

Everything comes from the mapping file, so the runbook stays true when it is generated again
after the mapping changes.

  stokline runbook mappings/demo.yaml                 print it
  stokline runbook mappings/demo.yaml -o RUNBOOK.md   write it to a file

Exit status: 0 written, 1 the mapping is invalid (its problems on stderr) or the file cannot
be written, 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "runbook",
        help="write a client's operating model (who owns what, daily checks) as Markdown",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("mapping", metavar="MAPPING", help="the client's mapping file")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the runbook to FILE (default: stdout)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stokline.ops.runbook import render_runbook

    result = check_file(args.mapping)
    if result.mapping is None:
        for problem in result.problems:
            print(problem.format(), file=sys.stderr)
        return 1
    text = render_runbook(result.mapping)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(f"stokline runbook: error: cannot write {target}: {reason}", file=sys.stderr)
        return 1
    print(f"runbook of {result.mapping.client.name} written to {target}", file=sys.stderr)
    return 0
