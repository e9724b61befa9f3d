"""One stock pass in a process of its own, so that its time and peak memory are its own.

``--mode delta`` is stokline's pass (`stokline.sync.stock.sync.sync_stock`); ``--mode naive`` is the
baseline: the same reads and the same arithmetic (`stokline.sync.stock.translate.plan_levels`), then
every level pushed with the same `ShoplineClient`, as an integration without a memory of what it
pushed would do. ``--limits real`` paces both clients at the APIs' documented limits,
``lifted`` lifts the client-side pacing (the sandboxes' limits must be lifted too).

``--drift all`` forgets the drift rotation's cursor before the pass, so the pass reads every
SHOPLINE level as a first pass does (and as every full pass did before the rotating drift read);
``--last-pass-ago S`` moves the cursor's time S seconds back before the pass, so its drift slice
is the one a pass S seconds after the last reads (e.g. 300: the demo's 5-minute schedule).

Prints one JSON object: seconds (from opening the clients to the end of the pass, imports
excluded), the report's figures, the requests counted at the wire (``level_writes``: SHOPLINE's
level writes by kind — stokline's pass adjusts by difference, sets only levels it could not
read; the baseline sets every level; ``level_reads``: SHOPLINE's level-read requests), and the
peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import current_rss_mb, peak_rss_mb, use_demo_credentials
from benchmarks.recording import RecordingTransport
from stokline.config import Mapping, load_mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.orders.importer import stokly_location_index
from stokline.sync.stock.drift import CURSOR_NAME, CURSOR_SYNC
from stokline.sync.stock.sync import sync_stock
from stokline.sync.stock.translate import StockRecord, UnimportedLine, VariantRef, plan_levels

UNIMPORTED_WINDOW = timedelta(days=14)
BATCH = 250  # levels pushed concurrently per batch, as the demo mapping's stock batch_size


async def naive_pass(
    mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient, store: Store
) -> dict[str, Any]:
    """Read both sides, compute every level, push every level: no memory, no comparison."""
    names = await stokly_location_index(stokly)
    folded = {name.strip().casefold(): lid for name, lid in names.items()}
    location_ids = sorted(
        {
            folded[n.strip().casefold()]
            for loc in mapping.locations
            if loc.stock.sync
            for n in loc.stokly_locations
            if n.strip().casefold() in folded
        }
    )

    async def variants() -> list[VariantRef]:
        return [
            VariantRef(v.id, v.inventory_item_id, v.sku)
            async for p in shopline.iter_products(fields="id,variants")
            for v in p.variants
            if v.inventory_item_id and v.sku and v.sku.strip()
        ]

    async def items() -> dict[str, str]:
        return {i.sku: i.itemId async for i in stokly.iter_items() if i.active and i.format != 2}

    async def records() -> list[StockRecord]:
        return [
            StockRecord(r.itemId, r.locationId, r.onHand, r.quarantined)
            async for r in stokly.iter_inventory_records(location_ids=location_ids)
        ]

    async def allocations() -> list[tuple[str, str | None, Any]]:
        return [(a.itemId, a.locationId, a.allocated) async for a in stokly.iter_allocations()]

    async def unimported() -> list[UnimportedLine]:
        since = datetime.now(UTC) - UNIMPORTED_WINDOW
        orders = [
            o
            async for o in shopline.iter_orders(
                status="open", financial_status="paid", created_at_min=since
            )
        ]
        linked = store.links.get_many(mapping.client.name, "order", [o.id for o in orders])
        return [
            UnimportedLine(line.sku, line.quantity, line.location_id and str(line.location_id))
            for o in orders
            if o.id not in linked and o.cancelled_at is None
            for line in o.line_items
            if line.sku and line.quantity > 0
        ]

    got = await asyncio.gather(variants(), items(), records(), allocations(), unimported())
    plan = plan_levels(mapping, got[0], got[1], names, got[2], got[3], got[4])
    pushed = failed = 0
    for start in range(0, len(plan.levels), BATCH):
        batch = plan.levels[start : start + BATCH]
        results = await asyncio.gather(
            *(
                shopline.set_inventory_level(lv.inventory_item_id, lv.location_id, lv.available)
                for lv in batch
            ),
            return_exceptions=True,
        )
        failed += sum(1 for r in results if isinstance(r, BaseException))
        pushed += sum(1 for r in results if not isinstance(r, BaseException))
    return {"levels_computed": len(plan.levels), "pushed": pushed, "failed": failed}


def place_rotation(store: Store, client: str, drift: str, last_pass_ago: float | None) -> None:
    """Forget the drift cursor (``all``), or date it ``last_pass_ago`` seconds back."""
    if drift == "all":
        store.cursors.set(client, CURSOR_SYNC, "", CURSOR_NAME)
        return
    stored = store.cursors.get(client, CURSOR_SYNC, CURSOR_NAME)
    if last_pass_ago is None or not stored:
        return
    cursor = json.loads(stored)
    cursor["at"] = (datetime.now(UTC) - timedelta(seconds=last_pass_ago)).isoformat()
    store.cursors.set(client, CURSOR_SYNC, json.dumps(cursor), CURSOR_NAME)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    use_demo_credentials()
    mapping = load_mapping(args.mapping)
    store = Store(args.state_db)
    if args.mode == "delta":
        place_rotation(store, mapping.client.name, args.drift, args.last_pass_ago)
    shop_wire, stok_wire = RecordingTransport(), RecordingTransport()
    rss_before = current_rss_mb()
    started = time.monotonic()
    async with open_clients(
        mapping,
        lift_limits=args.limits == "lifted",
        shopline_transport=shop_wire,
        stokly_transport=stok_wire,
    ) as (shopline, stokly):
        if args.mode == "delta":
            report = await sync_stock(mapping, shopline=shopline, stokly=stokly, store=store)
            figures = {
                "levels_computed": report.levels_computed,
                "levels_changed": report.levels_changed,
                "pushed": report.pushed,
                "pushed_absolute": report.pushed_absolute,
                "failed": report.failed,
                "drift_corrected": report.drift_corrected,
                "levels_read": report.levels_read,
                "drift_items_read": report.drift_items_read,
                "changed_items_read": report.changed_items_read,
                "api_calls": report.api_calls,
                "errors": report.errors[:5],
            }
        else:
            figures = await naive_pass(mapping, shopline, stokly, store)
    seconds = time.monotonic() - started
    accepted = [s for s in shop_wire.sent if s.method == "POST" and s.status == 200]
    level_writes = {
        kind: sum(1 for s in accepted if s.endpoint == f"{kind}.json") for kind in ("adjust", "set")
    }
    level_reads = sum(
        1 for s in shop_wire.sent if s.method == "GET" and s.endpoint == "inventory_levels.json"
    )
    return {
        "mode": args.mode,
        "limits": args.limits,
        "seconds": round(seconds, 3),
        "report": figures,
        "shopline": shop_wire.summary(started),
        "stokly": stok_wire.summary(started),
        "level_writes": level_writes,
        "level_reads": level_reads,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_pass_mb": round(rss_before, 1) if rss_before is not None else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mapping", required=True)
    p.add_argument("--state-db", required=True, help="SQLAlchemy URL of the state store")
    p.add_argument("--mode", choices=("delta", "naive"), default="delta")
    p.add_argument("--limits", choices=("real", "lifted"), default="lifted")
    p.add_argument(
        "--drift",
        choices=("rotate", "all"),
        default="rotate",
        help="all: forget the drift cursor first, so the pass reads every SHOPLINE level",
    )
    p.add_argument(
        "--last-pass-ago",
        type=float,
        default=None,
        metavar="S",
        help="date the drift cursor S seconds back: the slice of a pass S seconds after the last",
    )
    print(json.dumps(asyncio.run(run(p.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
