"""What an audit reads from both systems: only reads, paced by the clients' own limits.

SHOPLINE: its products (variants and SKUs), locations and the orders placed in the window (any
status). Stokly: its items, locations, customers and the channel's sale orders of the window. The
stock comparison reads both as a stock pass would (`stokline.sync.stock.reconcile`). The two
systems are read at the same time, each at its own pace; nothing here writes to either, and the
state store is only read (the stock comparison's links).

A record either API sends malformed is counted in ``problems`` and left out, never a failure
of the whole audit: an audit exists to find what is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stokline.config import Mapping
from stokline.connectors import InvalidRecord, ShoplineClient, StoklyClient
from stokline.connectors.shopline.models import Location, Product
from stokline.connectors.stokly.filters import and_, eq, gte
from stokline.connectors.stokly.models import Customer, Item, SaleOrder
from stokline.store import Store
from stokline.sync.orders.importer import stokly_location_index
from stokline.sync.stock.reconcile import StockReconciliation, reconcile_stock

__all__ = ["AuditData", "read_both"]

Progress = Callable[[str], None]


@dataclass
class AuditData:
    """Both systems as the audit saw them."""

    products: list[Product] = field(default_factory=list)
    shopline_locations: list[Location] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)  # placed in the window
    items: list[Item] = field(default_factory=list)
    stokly_locations: dict[str, str] = field(default_factory=dict)  # name → id
    customers: list[Customer] = field(default_factory=list)
    sale_orders: list[SaleOrder] = field(default_factory=list)  # the channel's, in the window
    stock: StockReconciliation | None = None
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "SHOPLINE products": len(self.products),
            "SHOPLINE variants": sum(len(p.variants) for p in self.products),
            "SHOPLINE locations": len(self.shopline_locations),
            "SHOPLINE orders in the window": len(self.orders),
            "Stokly items": len(self.items),
            "Stokly locations": len(self.stokly_locations),
            "Stokly customers": len(self.customers),
            "Stokly sale orders of the channel in the window": len(self.sale_orders),
            "stock levels compared": self.stock.compared if self.stock else 0,
        }


async def read_both(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    since: datetime,
    progress: Progress | None = None,
) -> AuditData:
    """Read what the audit needs (see the module docstring); writes nothing anywhere."""
    data = AuditData()
    say = progress or (lambda _step: None)

    def skipped(what: str) -> Callable[[InvalidRecord], None]:
        def note(record: InvalidRecord) -> None:
            data.problems.append(f"a malformed {what} was left out: {record.error}")

        return note

    async def shopline_side() -> None:
        data.shopline_locations = await shopline.list_locations()
        say("SHOPLINE locations")
        data.products = [p async for p in shopline.iter_products(on_invalid=skipped("product"))]
        say("SHOPLINE products")
        orders = shopline.iter_orders(created_at_min=since, on_invalid=skipped("order"))
        data.orders = [o.model_dump() async for o in orders]
        say("SHOPLINE orders")

    async def stokly_side() -> None:
        data.stokly_locations = await stokly_location_index(stokly)
        say("Stokly locations")
        data.items = [i async for i in stokly.iter_items(on_invalid=skipped("Stokly item"))]
        say("Stokly items")
        data.customers = [c async for c in stokly.iter_customers()]
        say("Stokly customers")
        channel = mapping.connections.stokly.channel_id
        if channel:
            expression = and_(eq("sourceId", channel), gte("createdAt", since.isoformat()))
            data.sale_orders = [o async for o in stokly.iter_sale_orders(expression)]
        say("Stokly sale orders")

    await asyncio.gather(shopline_side(), stokly_side())
    data.stock = await reconcile_stock(
        mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        locations=data.stokly_locations,
    )
    say("stock levels")
    return data
