"""`stokline webhooks subscribe|list|unsubscribe`: the store's order webhooks to the receiver."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from stokline.cli import Exit

HELP = """\
Manage the SHOPLINE store's webhook subscriptions to the receiver, for one client (its mapping's
store and API version). The client's address is URL/webhooks/<client>, where URL is the
receiver's public base URL (https://hooks.example.com); the client's full address is accepted too.

  subscribe     subscribe the address to the order topics (orders/create, orders/paid,
                orders/updated, orders/cancelled) that are missing, and bring a subscription made
                with another API version to the mapping's. Running it again changes nothing.
  list          every subscription of the store, the client's marked, and which order topics
                the address (with --url) still lacks.
  unsubscribe   end the address's order subscriptions; without --url, those of every address
                that points at this client (…/webhooks/<client>), e.g. an old receiver's.

Only SHOPLINE's access token is needed (the receiver's webhook secret is not). --dry-run says
what would change and changes nothing. `stokline up` subscribes the demo's receiver this way.

Exit status: 0 done, 1 the mapping is invalid, its token unset, or SHOPLINE refused, 2 a usage
error.
"""

_MARKS = {"create": "+", "update": "~", "keep": "=", "remove": "-"}
_VERBS = {
    False: {
        "create": "subscribed",
        "update": "updated",
        "keep": "already there",
        "remove": "ended",
    },
    True: {
        "create": "to subscribe",
        "update": "to update",
        "keep": "already there",
        "remove": "to end",
    },
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "webhooks",
        help="subscribe, list or end the store's order webhooks to the receiver",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, summary, url_required in (
        ("subscribe", "subscribe the client's receiver address to the order topics", True),
        ("list", "list the store's subscriptions", False),
        ("unsubscribe", "end the client's order subscriptions", False),
    ):
        action = actions.add_parser(
            name,
            help=summary,
            description=HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        action.add_argument(
            "--mapping", required=True, metavar="FILE", help="the client's mapping file"
        )
        action.add_argument(
            "--url",
            required=url_required,
            metavar="URL",
            help="the receiver's public base URL (or the client's full webhook address)",
        )
        if name != "list":
            action.add_argument(
                "--dry-run", action="store_true", help="say what would change; change nothing"
            )
        action.set_defaults(handler=run, dry_run=False)


def _error(message: str) -> None:
    print(f"stokline webhooks: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import valid_mappings
    from stokline.config import SecretUnavailable
    from stokline.webhooks.subscriptions import address_for, shopline_for

    (mapping,) = valid_mappings("stokline webhooks", [args.mapping])
    client = mapping.client.name
    address = None
    if args.url:
        try:
            address = address_for(args.url, client)
        except ValueError as exc:
            _error(f"--url: {exc}")
            return 2
    try:
        shopline = shopline_for(mapping)
    except SecretUnavailable as exc:
        _error(f"{client}: {exc}")
        return 1
    return asyncio.run(_run(args.action, shopline, client, address, args.dry_run))


async def _run(action: str, shopline: Any, client: str, address: str | None, dry: bool) -> int:
    from stokline.connectors import ConnectorError
    from stokline.webhooks.subscriptions import subscribe, unsubscribe

    try:
        async with shopline:
            if action == "list":
                print(_listing(await shopline.list_webhooks(), client, address))
            elif action == "subscribe":
                assert address is not None
                print(_report(await subscribe(shopline, client, address, dry_run=dry)))
            else:
                print(_report(await unsubscribe(shopline, client, address, dry_run=dry)))
    except ConnectorError as exc:
        _error(f"{client}: SHOPLINE: {exc}")
        raise Exit(1) from None
    return 0


def _report(result: Any) -> str:
    verbs = _VERBS[result.dry_run]
    order = ("create", "update", "remove", "keep")
    counts = [f"{result.count(a)} {verbs[a]}" for a in order if result.count(a)]
    mode = " (dry run: nothing changed)" if result.dry_run else ""
    lines = [f"{result.client}: {', '.join(counts) or 'no subscription to end'}{mode}"]
    for change in result.changes:
        detail = f"  ({change.detail})" if change.detail else ""
        lines.append(f"  {_MARKS[change.action]} {change.topic:<18} {change.address}{detail}")
    for other in result.others:
        lines.append(
            f"  note: {other.topic} is also sent to {other.address} (id {other.id}); end it "
            f"with `stokline webhooks unsubscribe --url {other.address}` if that receiver is gone"
        )
    return "\n".join(lines)


def _listing(webhooks: list, client: str, address: str | None) -> str:
    from stokline.webhooks.subscriptions import ORDER_TOPICS, points_at

    if not webhooks:
        lines = ["the store has no webhook subscription"]
    else:
        lines = [f"{'id':>10}  {'topic':<26} {'API version':<12} address"]
        for w in sorted(webhooks, key=lambda w: (w.address, w.topic)):
            mark = "  ← " + client if points_at(w.address, client) else ""
            lines.append(f"{w.id:>10}  {w.topic:<26} {w.api_version or '?':<12} {w.address}{mark}")
    if address:
        have = {w.topic for w in webhooks if w.address == address}
        missing = [t for t in ORDER_TOPICS if t not in have]
        if missing:
            lines.append(f"{address} lacks {', '.join(missing)}: run `stokline webhooks subscribe`")
        else:
            lines.append(f"{address} has every order topic")
    return "\n".join(lines)
