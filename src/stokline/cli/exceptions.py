"""`stokline exceptions`: read and act on the exceptions queue."""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from stokline.store import REASONS, ExceptionRecord, Store
from stokline.store.exceptions import STATUSES
from stokline.sync.report import mask

HELP = """\
The exceptions queue: every order, level or shipment that could not be synced, with the team
that owns it and what to do. Exceptions replay by themselves on the next run once the cause is
fixed; `retry` asks for that replay now, `resolve` and `ignore` close one by hand with a note.
The state store is STOKLINE_DATABASE_URL, else .stokline/state.db.
"""

LIST_HELP = """\
One row per exception: its number, code, the SHOPLINE order it concerns, the key fact to act on
(the SKU, gateway, shipping line, tax line or location) and the reason, each row cut to the
terminal's width (… marks a cut; `show ID` has it all). On a narrow terminal the last-seen,
attempts, status, team, severity and client columns give way first. --format json or csv prints every
field, uncut, and nothing else, for tools. Customer emails and phones are masked.
"""

FORMATS = ("table", "json", "csv")
# Every field of an exception, in the order json and csv give them. ``entity`` ("order 1001") is
# kept for scripts written against earlier versions; ``entity_kind`` and ``entity_id`` split it.
FIELDS = (
    "id",
    "client",
    "code",
    "severity",
    "team",
    "status",
    "entity_kind",
    "entity_id",
    "entity",
    "order",
    "key_fact",
    "message",
    "action",
    "attempts",
    "first_seen",
    "last_seen",
    "resolved_at",
    "resolution",
)
# Width when the output is not a terminal (a pipe, a file): what a pager or a log shows whole.
FALLBACK_WIDTH = 120
MIN_REASON = 30  # what the table makes room for, for the reason, before it cuts it shorter
GAP = "  "


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "exceptions",
        help="list, show, retry, resolve or ignore exceptions",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list exceptions (default: open and retrying)",
        description=LIST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    listing.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default) for people, cut to the terminal; json or csv for tools: every"
        " field, uncut",
    )
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


def _masked(text: str | None) -> str | None:
    return mask(text) if text else text


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _fields(e: ExceptionRecord) -> dict[str, object]:
    """Every field of one exception, as json and csv give it (emails and phones masked)."""
    return {
        "id": e.id,
        "client": e.client,
        "code": e.code,
        "severity": e.severity,
        "team": e.team,
        "status": e.status,
        "entity_kind": e.entity_kind,
        "entity_id": e.entity_id,
        "entity": f"{e.entity_kind} {e.entity_id}",
        "order": e.order,
        "key_fact": _masked(e.key_fact),
        "message": _masked(e.message),
        "action": e.action,
        "attempts": e.attempts,
        "first_seen": _time(e.first_seen),
        "last_seen": _time(e.last_seen),
        "resolved_at": _time(e.resolved_at),
        "resolution": _masked(e.resolution),
    }


def run_list(args: argparse.Namespace) -> int:
    status = None if args.status == "all" else (args.status or ("open", "retrying"))
    with Store(read_only=True) as store:
        records = store.exceptions.list(
            client=args.client, code=args.code, team=args.team, status=status
        )
    if args.format == "json":
        print(json.dumps([_fields(e) for e in records], indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_fields(e) for e in records)
    elif not records:
        print("no exceptions match")
    else:
        width = shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
        for line in table(records, width, with_client=not args.client):
            print(line)
    return 0


# -- the table -------------------------------------------------------------------------------------


@dataclass
class _Column:
    header: str
    cells: list[str]
    cap: int | None = None  # cut to this at most
    least: int | None = None  # may shrink to this when the terminal is narrow
    width: int = 0

    def __post_init__(self) -> None:
        natural = max(map(_width, [self.header, *self.cells]))
        self.width = min(natural, self.cap) if self.cap else natural


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\s]+")


def _one_line(text: object) -> str:
    return _CONTROL.sub(" ", str(text or "")).strip()


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, a cut marked with …"""
    if _width(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _width(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…" if width > 0 else ""


def _fit(text: str, width: int) -> str:
    cut = _cut(text, width)
    return cut + " " * (width - _width(cut))


def table(records: list[ExceptionRecord], width: int, *, with_client: bool = True) -> list[str]:
    """The rows of ``records`` for a terminal ``width`` columns wide; no line is wider."""
    rows = [_fields(e) for e in records]

    def column(header: str, key: str, **limits: int) -> _Column:
        return _Column(header, [_one_line(r[key]) for r in rows], **limits)

    seen = [e.last_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for e in records]
    always = {
        "id": column("id", "id"),
        "code": column("code", "code"),
        "order": column("order", "order", cap=14),
        "entity": column("entity", "entity", cap=20, least=10),
        "fact": column("key fact", "key_fact", cap=32, least=20),
    }
    optional = {  # in the order they give way to the reason
        "seen": _Column("last seen (UTC)", seen),
        "attempts": column("attempts", "attempts"),
        "status": column("status", "status"),
        "team": column("team", "team"),
        "severity": column("severity", "severity"),
        "client": column("client", "client", cap=24),
    }
    if not with_client:
        del optional["client"]
    shown = {**always, **optional}

    def used() -> int:
        return sum(c.width + len(GAP) for c in shown.values())

    def shrink(c: _Column) -> None:
        over = used() + MIN_REASON - width
        if over > 0:
            c.width = max(c.least or c.width, c.width - over)

    # Until the reason has room: the entity's id shrinks, columns give way, the key fact shrinks.
    shrink(shown["entity"])
    for name in optional:
        if used() + MIN_REASON <= width:
            break
        del shown[name]
    shrink(shown["fact"])
    order = (
        *("id", "client", "code", "severity", "status", "team"),
        *("order", "entity", "fact", "attempts", "seen"),
    )
    columns = [shown[name] for name in order if name in shown]
    reason = _Column("reason", [_one_line(r["message"]) for r in rows])
    room = max(width - used(), 0)

    def line(cells: list[str], why: str) -> str:
        text = GAP.join(_fit(cell, c.width) for cell, c in zip(cells, columns, strict=True))
        return _cut(text + GAP + _cut(why, room), width).rstrip()

    out = [line([c.header for c in columns], reason.header)]
    for i, why in enumerate(reason.cells):
        out.append(line([c.cells[i] for c in columns], why))
    return out


def run_one(args: argparse.Namespace) -> int:
    with Store() as store:
        record = store.exceptions.get(args.id)
        if record is None:
            print(f"stokline exceptions: error: no exception {args.id}", file=sys.stderr)
            return 1
        if args.action == "show":
            fields = _fields(record)
            for key in ("entity_kind", "entity_id", "action", "resolved_at", "resolution"):
                fields.pop(key)
            for key, value in fields.items():
                print(f"{key.replace('_', ' '):>11}: {'' if value is None else value}")
            print(f"{'what to do':>11}: {record.action}")
            if record.resolution:
                print(f"{'resolution':>11}: {_masked(record.resolution)}")
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
