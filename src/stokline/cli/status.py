"""`stokline status`: health at a glance, per client and sync."""

from __future__ import annotations

import argparse
import asyncio
import json

from stokline.cli import options

HELP = """\
Show, for each client (each mapping file), how its integration is doing:

  per sync        the last successful run, its lag against the schedule (ok, late, or overdue
                  once it has missed as many runs as the overdue alert waits for), the last
                  run's state and what the last pass moved
  exceptions      open exceptions by owning team and severity
  webhook inbox   deliveries waiting to be imported, and the age of the oldest

Runs are read from the Prefect API (--prefect-url, else PREFECT_API_URL, else
http://127.0.0.1:4200/api). When it does not answer, the state store stands in: the last time
each sync moved a cursor or wrote to a system; the output says so. The state store is
STOKLINE_DATABASE_URL, else .stokline/state.db. The same page is published every two minutes as
the Prefect artifact status-<client> by the status flow, for the UI's Artifacts page.

Exit status: 0 shown, 1 a mapping is invalid, 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "status",
        help="health at a glance: last runs and lag per sync, open exceptions, webhook inbox",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mappings(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    options.add_prefect_url(parser)
    parser.add_argument(
        "--no-prefect",
        action="store_true",
        help="do not ask Prefect; report from the state store alone",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import valid_mappings

    mappings = valid_mappings("stokline status", args.mapping)
    statuses = asyncio.run(_collect(mappings, args.prefect_url, args.no_prefect))

    from stokline.ops.status_view import as_json, render_table

    if args.format == "json":
        print(json.dumps([as_json(s) for s in statuses], indent=2))
    else:
        print("\n\n".join(render_table(s) for s in statuses))
    return 0


async def _collect(mappings: list, given_url: str | None, no_prefect: bool) -> list:
    from stokline.cli.session import state_store
    from stokline.ops.status import PrefectRunHistory, collect_status

    note, url = "", None
    if no_prefect:
        note = "Prefect not asked (--no-prefect): last activity from the state store"
    else:
        from stokline.ops.prefect_api import api_url, unreachable

        url = api_url(given_url)
        problem = unreachable(url, timeout=2.0)
        if problem:
            note = f"{problem}: last activity from the state store instead"
            url = None
    with state_store(True) as store:  # status creates no file
        if url is None:
            return [await collect_status(m, store, None, note=note) for m in mappings]
        from stokline.ops.prefect_api import prefect_client

        async with prefect_client(url) as client:
            history = PrefectRunHistory(client)
            return [await collect_status(m, store, history) for m in mappings]
