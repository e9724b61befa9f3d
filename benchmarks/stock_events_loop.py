"""The stock event path in a process of its own, as `flows/stock_events.py` runs it, for a while.

It reads Stokly's change feed every ``--poll`` seconds and pushes the SKUs that moved with one
partial stock pass each (`stokline.sync.stock.sync.sync_stock` with ``skus``), storing the feed
cursor after each pushed batch, exactly as the flow does without Prefect around it. It starts at
the feed's end, as a stack that has been running would (what moved before is the full pass's),
writes ``--ready`` when it polls, and stops when the file ``--stop`` appears.

Writes one JSON object to ``--out``: the batches, SKUs and levels pushed, and the batches that
did not finish (its log lines go to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import use_demo_credentials
from stokline.config import load_mapping
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.stock.events import CURSOR_NAME, CURSOR_SYNC, StockMovements
from stokline.sync.stock.sync import sync_stock


async def run(args: argparse.Namespace) -> dict[str, Any]:
    use_demo_credentials()
    mapping = load_mapping(args.mapping)
    client = mapping.client.name
    store = Store(args.state_db)
    stop, ready = Path(args.stop), Path(args.ready)
    totals: dict[str, Any] = {"batches": 0, "skus": 0, "pushed": 0, "unfinished": 0, "errors": []}
    async with open_clients(mapping, lift_limits=args.limits == "lifted") as (shopline, stokly):
        after = store.cursors.get(client, CURSOR_SYNC, CURSOR_NAME) or "0"
        while True:  # to the feed's end, reading nothing of what moved before
            page = await stokly.get_events(after)
            if not page.has_more or page.cursor in (None, after):
                break
            after = page.cursor
        store.cursors.set(client, CURSOR_SYNC, page.cursor or after, CURSOR_NAME)
        own = mapping.connections.stokly.channel_id
        feed = StockMovements(client, stokly, store, own)
        ready.write_text("polling\n")
        while not stop.exists():
            began = time.monotonic()
            batch = await feed.poll()
            if batch is not None:
                report = await sync_stock(
                    mapping,
                    shopline=shopline,
                    stokly=stokly,
                    store=store,
                    trigger="event",
                    skus=set(batch.skus),
                )
                totals["batches"] += 1
                totals["skus"] += len(batch.skus)
                totals["pushed"] += report.pushed
                if report.ok:
                    feed.done(batch)
                else:
                    totals["unfinished"] += 1
                    totals["errors"].extend(report.errors[:2])
            await asyncio.sleep(max(0.0, args.poll - (time.monotonic() - began)))
    totals["errors"] = totals["errors"][:5]
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mapping", required=True)
    p.add_argument("--state-db", required=True, help="SQLAlchemy URL of the state store")
    p.add_argument("--limits", choices=("real", "lifted"), default="real")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between feed reads")
    p.add_argument("--ready", required=True, help="file written once the loop polls")
    p.add_argument("--stop", required=True, help="the loop stops when this file exists")
    p.add_argument("--out", required=True, help="where the JSON of its totals is written")
    args = p.parse_args()
    Path(args.out).write_text(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
