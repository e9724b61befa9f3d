"""The orders benchmark's baseline: a naive flow with one Prefect task and one search per order.

It is what a first integration would look like: sweep the paid orders, then for each order a task
run that searches Stokly for it, looks up its items and its buyer, creates the customer when
needed and the sale order, and records the link. Same clients, same mapping, same translation
(`stokline.sync.orders.translate.translate_order`) as stokline's orders flow — only the shape differs:
per-order task runs and per-order API calls instead of batches.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from stokline.config import Mapping, load_mapping
from stokline.config.skus import sku_key
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.clients import api_calls, open_clients
from stokline.sync.orders.customers import create_customers, plan_customers
from stokline.sync.orders.importer import stokly_location_index
from stokline.sync.orders.translate import OrderUntranslatable, StoklyCatalogue, translate_order


class Context:
    """What every task run needs; a plain object, so Prefect passes it through untouched."""

    def __init__(
        self,
        mapping: Mapping,
        shopline: ShoplineClient,
        stokly: StoklyClient,
        store: Store,
        locations: dict[str, str],
    ) -> None:
        self.mapping = mapping
        self.shopline = shopline
        self.stokly = stokly
        self.store = store
        self.locations = locations


async def _catalogue(ctx: Context, order: dict[str, Any]) -> StoklyCatalogue:
    """Stokly's items for this one order's SKUs (one look-up per order)."""
    match = ctx.mapping.skus.match
    overrides = {sku_key(o.shopline_sku, match): o.stokly_sku for o in ctx.mapping.skus.overrides}
    skus: set[str] = set()
    for line in order.get("line_items") or []:
        sku = str(line.get("sku") or "").strip()
        if sku:
            target = overrides.get(sku_key(sku, match), sku)
            skus |= {target, target.upper(), target.lower()}
    items = {
        i.sku: i.itemId
        async for i in ctx.stokly.iter_items(skus=sorted(skus))
        if i.active and i.format != 2
    }
    return StoklyCatalogue.build(ctx.mapping, items.items(), ctx.locations.items())


@task(name="import-one-order", cache_policy=NO_CACHE, persist_result=False)
async def import_one(order: dict[str, Any], ctx: Context) -> str:
    """Search, translate, find or create the buyer, create the sale order: one order."""
    order_id = str(order["id"])
    client = ctx.mapping.client.name
    channel = ctx.mapping.connections.stokly.channel_id
    found = await ctx.stokly.find_sale_orders_by_source(channel, [order_id])
    if found:
        ctx.store.links.put(client, "order", order_id, found[0].saleOrderId, {"recovered": True})
        return "duplicate"
    catalogue = await _catalogue(ctx, order)
    try:
        draft = translate_order(ctx.mapping, order, catalogue)
    except OrderUntranslatable:
        return "exception"
    if not draft.importable:
        return "skipped"
    plan = await plan_customers(ctx.mapping, ctx.stokly, [order])
    if order_id in plan.problems:
        return "exception"
    customer = plan.existing.get(order_id)
    group = plan.new.get(order_id)
    if group is not None:
        await create_customers(ctx.stokly, [group])
        if group.customer_id is None:
            return "exception"
        customer = group.customer_id
    created = await ctx.stokly.create_sale_order(draft.payload_for(customer))
    ctx.store.links.put(client, "order", order_id, created.id, {"name": draft.name})
    return "imported"


@flow(name="orders-baseline", log_prints=False)
async def baseline_orders_flow(mapping: str) -> dict[str, int]:
    """Import every paid order of the look-back window, one task run per order."""
    loaded = load_mapping(mapping)
    settings = loaded.syncs.orders
    store = Store()
    async with open_clients(loaded, lift_limits=True) as (shopline, stokly):
        since = datetime.now(UTC) - settings.lookback
        orders = [o.model_dump() async for o in shopline.iter_orders(updated_at_min=since)]
        due = [
            o
            for o in orders
            if o.get("financial_status") in settings.import_when
            and o.get("status") != "cancelled"
            and not o.get("cancelled_at")
        ]
        ctx = Context(loaded, shopline, stokly, store, await stokly_location_index(stokly))
        outcomes: Counter[str] = Counter()
        for order in due:
            outcomes[await import_one(order, ctx)] += 1
        calls = api_calls(shopline, stokly)
    return {"seen": len(orders), **outcomes, "api_calls": calls}
