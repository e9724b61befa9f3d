"""`stokline exceptions`: read and act on the exceptions queue."""

from __future__ import annotations

import argparse
import json
import sys

from stokline.store import REASONS, ExceptionRecord, Store
from stokline.store.exceptions import STATUSES

HELP = """\
The exceptions queue: every order, level or shipment that could not be synced, with the team
that owns it and what to do. Exceptions replay by themselves on the next run once the cause is
fixed; `retry` asks for that replay now, `resolve` and `ignore` close one by hand with a note.
The state store is STOKLINE_DATABASE_URL, else .stokline/state.db.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "exceptions",
        help="list, show, retry, resolve or ignore exceptions",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list exceptions (default: open and retrying)")
    listing.add_argument("--client", help="only this client")
    listing.add_argument(
        "--code", choices=sorted(REASONS), metavar="CODE", help="only this reason code"
    )
    listing.add_argument(
        "--team", choices=("operations", "finance", "ecommerce"), help="only this team's"
    )
    listing.add_argument(
        "--status", choices=(*STATUSES, "all"), help="only this status (default: open and retrying)"
    )
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=run_list)
    for name, text in (
        ("show", "everything about one exception"),
        ("retry", "mark for replay on the next run"),
        ("resolve", "close as resolved, with a note"),
        ("ignore", "close as ignored, with a note"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int, help="the exception's number (see `list`)")
        if name in ("resolve", "ignore"):
            action.add_argument(
                "--note",
                required=name == "ignore",
                default="resolved by hand",
                help="why (kept with the exception)",
            )
        action.set_defaults(handler=run_one)


def _row(e: ExceptionRecord) -> dict[str, object]:
    return {
        "id": e.id,
        "client": e.client,
        "code": e.code,
        "severity": e.severity,
        "team": e.team,
        "status": e.status,
        "entity": f"{e.entity_kind} {e.entity_id}",
        "attempts": e.attempts,
        "first_seen": e.first_seen.isoformat(timespec="seconds"),
        "last_seen": e.last_seen.isoformat(timespec="seconds"),
        "message": e.message,
    }


def run_list(args: argparse.Namespace) -> int:
    status = None if args.status == "all" else (args.status or ("open", "retrying"))
    with Store() as store:
        records = store.exceptions.list(
            client=args.client, code=args.code, team=args.team, status=status
        )
    rows = [_row(e) for e in records]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no exceptions match")
        return 0
    columns = (
        "id",
        "client",
        "code",
        "severity",
        "team",
        "status",
        "entity",
        "attempts",
        "last_seen",
    )
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in columns))
    return 0


def run_one(args: argparse.Namespace) -> int:
    with Store() as store:
        record = store.exceptions.get(args.id)
        if record is None:
            print(f"stokline exceptions: error: no exception {args.id}", file=sys.stderr)
            return 1
        if args.action == "show":
            for key, value in _row(record).items():
                print(f"{key:>11}: {value}")
            print(f"{'what to do':>11}: {record.action}")
            if record.resolution:
                print(f"{'resolution':>11}: {record.resolution}")
            return 0
        if args.action == "retry":
            store.exceptions.mark_retrying(args.id)
            print(f"exception {args.id} will be replayed on the next {record.client} run")
        elif args.action == "resolve":
            store.exceptions.resolve(args.id, args.note)
            print(f"exception {args.id} resolved")
        else:
            store.exceptions.ignore(args.id, args.note)
            print(f"exception {args.id} ignored")
    return 0
