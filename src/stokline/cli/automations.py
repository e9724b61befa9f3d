"""`stokline automations apply`: the mapping's alerts as Prefect automations, idempotently."""

from __future__ import annotations

import argparse
import asyncio
import sys

from stokline.cli import options
from stokline.cli._mappings import valid_mappings

HELP = """\
Create or update, on a Prefect server, the automations that alert the people running each
client, as its mapping's operating_model.alerts says:

  sync run failed       a run of one of the client's sync deployments failed, crashed or timed out
  fulfilments stale     the fulfilment sync reported shipments still not in SHOPLINE
  exception spike       COUNT new exceptions of one reason code within a window
  <sync> not succeeded  no successful run of that sync for MISSED_RUNS times its schedule
  oversell risk         the stock pass found SHOPLINE offering more than Stokly can fulfil

and, once for the whole Prefect workspace, one that marks Crashed a run of a stokline deployment
whose heartbeats stopped for 90 s (its machine or process died); "sync run failed" reports it.

Each alert notifies the mapping's webhook and/or Prefect block, at most once per cause within
its window (the cooldown). Applying again changes nothing; after an edit of the mapping it
updates the same automations in place and deletes those no longer asked for. A client without
an alerts section gets none (any it had are deleted). Pausing an alert in the Prefect UI is
kept across applies. `stokline up` runs this after deploying.

The Prefect API is --prefect-url, else PREFECT_API_URL, else http://127.0.0.1:4200/api.
Exit status: 0 applied, 1 a mapping is invalid, the server does not answer or a notification
block is missing, 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "automations",
        help="create or update the Prefect automations that send each client's alerts",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = actions.add_parser(
        "apply",
        help="make the server's automations what the mappings ask for",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mappings(apply)
    apply.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be created, updated or removed, and change nothing",
    )
    options.add_prefect_url(apply)
    apply.set_defaults(handler=run_apply)


_MARKS = {"create": "+", "update": "~", "unchanged": "=", "remove": "-"}
_VERBS = {
    False: {
        "create": "created",
        "update": "updated",
        "unchanged": "unchanged",
        "remove": "removed",
    },
    True: {
        "create": "to create",
        "update": "to update",
        "unchanged": "unchanged",
        "remove": "to remove",
    },
}


def _report(result: object) -> str:
    from stokline.ops.automations import ApplyResult

    assert isinstance(result, ApplyResult)
    verbs = _VERBS[result.dry_run]
    counts = [
        f"{result.count(a)} {verbs[a]}"
        for a in ("create", "update", "unchanged", "remove")
        if result.count(a)
    ]
    mode = " (dry run: nothing changed)" if result.dry_run else ""
    lines = [f"{result.client}: {', '.join(counts) or 'no alerts'}{mode}"]
    lines += [f"  {_MARKS[c.action]} {c.name}" for c in result.changes]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


def run_apply(args: argparse.Namespace) -> int:
    mappings = valid_mappings("stokline automations", args.mapping)

    from stokline.ops.prefect_api import api_url, unreachable

    url = api_url(args.prefect_url)
    problem = unreachable(url)
    if problem:
        print(
            f"stokline automations: error: {problem}; start it (`stokline up`) or give "
            "--prefect-url",
            file=sys.stderr,
        )
        return 1
    return asyncio.run(_apply_all(mappings, url, args.dry_run))


async def _apply_all(mappings: list, url: str, dry_run: bool) -> int:
    from stokline.ops.automations import AlertsUnavailable, apply_alerts
    from stokline.ops.prefect_api import prefect_client

    status = 0
    async with prefect_client(url) as client:
        for mapping in mappings:
            try:
                result = await apply_alerts(mapping, client, dry_run=dry_run)
            except AlertsUnavailable as exc:
                print(f"stokline automations: error: {mapping.client.name}: {exc}", file=sys.stderr)
                status = 1
                continue
            print(_report(result), flush=True)
    return status
