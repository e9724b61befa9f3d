"""Taking the `Snapshot` the invariants check: the systems' own records, read directly.

The sandboxes keep every document in SQLite (`stokline.sandbox.common.DocStore`); the snapshot
reads them there — from the live store in this process, or read-only from the files a stopped
stack left — so what is checked is what SHOPLINE and Stokly hold, not what an API page or a
sync report says. Two things are read through stokline's code on purpose, against the running
sandboxes with faults off: the stock reconciliation (the arithmetic that defines "sellable") and a
dry run of the ledger (which says whether anything of SHOPLINE's money is left unposted).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from benchmarks.chaos.invariants import InboxRow, LocationRule, Snapshot, StockRules
from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.store.exceptions import ACTIVE
from stokline.store.tables import inbox as inbox_table
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.stock.reconcile import StockReconciliation, reconcile_stock

__all__ = ["Docs", "ReadOnlyDocs", "read_through_stokline", "take_snapshot"]


class Docs(Protocol):
    """What the snapshot needs of a sandbox's document store."""

    def list(self, kind: str) -> list[dict[str, Any]]: ...


class ReadOnlyDocs:
    """A sandbox's SQLite file, opened read-only (a running sandbox may still write to it)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no sandbox database at {path}")
        self.path = path

    def list(self, kind: str) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT body FROM docs WHERE kind = ? ORDER BY seq", (kind,))
            return [json.loads(body) for (body,) in rows]


def known_skus(mapping: Mapping, stokly_items: Iterable[dict[str, Any]]) -> frozenset[str]:
    """SHOPLINE SKUs (case-folded) that name an active Stokly item, directly or by override."""
    active = {
        str(i["sku"]).casefold()
        for i in stokly_items
        if i.get("sku") and i.get("status") in (0, None)
    }
    overrides = {
        o.shopline_sku.casefold()
        for o in mapping.skus.overrides
        if o.stokly_sku.casefold() in active
    }
    return frozenset(active | overrides)


def stock_rules(mapping: Mapping) -> StockRules:
    """The mapping's SKU rules and locations, as the stock invariant applies them."""
    return StockRules(
        match=mapping.skus.match,
        overrides={o.shopline_sku: o.stokly_sku for o in mapping.skus.overrides},
        never_sync=tuple(mapping.skus.never_sync),
        locations=tuple(
            LocationRule(
                shopline_location=str(loc.shopline_location),
                stokly_locations=tuple(loc.stokly_locations),
                buffer=loc.stock.buffer,
                synced=loc.stock.sync,
                default=bool(loc.default),
            )
            for loc in mapping.locations
        ),
    )


def _inbox(store: Store, client: str) -> list[InboxRow]:
    query = select(inbox_table).where(inbox_table.c.client == client).order_by(inbox_table.c.id)
    rows = []
    with store.engine.connect() as conn:
        for r in conn.execute(query):
            try:
                order_id = json.loads(bytes(r.body)).get("id")
            except (ValueError, AttributeError):
                order_id = None
            rows.append(InboxRow(r.webhook_id, r.topic, r.status, order_id and str(order_id)))
    return rows


async def read_through_stokline(
    mapping: Mapping,
    store: Store,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    days: tuple[date, date],
) -> tuple[StockReconciliation | None, list[str]]:
    """The stock reconciliation, and the batch keys a dry run of the ledger would still post."""
    stock = await reconcile_stock(mapping, shopline=shopline, stokly=stokly, store=store)
    ledger = await post_ledger(
        mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        start=days[0],
        end=days[1],
        dry_run=True,
    )
    unposted = [journal.batch_key for journal in ledger.journals]
    unposted += [f"(the dry run did not finish: {error})" for error in ledger.errors]
    return stock, unposted


def take_snapshot(
    mapping: Mapping,
    *,
    shopline_docs: Docs,
    stokly_docs: Docs,
    store: Store,
    baseline_orders: Iterable[str],
    stock: StockReconciliation | None,
    unposted: list[str],
) -> Snapshot:
    client = mapping.client.name
    orders_settings = mapping.syncs.orders
    return Snapshot(
        client=client,
        channel_id=str(mapping.connections.stokly.channel_id),
        import_when=frozenset(orders_settings.import_when if orders_settings else ("paid",)),
        known_skus=known_skus(mapping, stokly_docs.list("item")),
        baseline_orders=frozenset(str(o) for o in baseline_orders),
        shopline_orders=shopline_docs.list("order"),
        deliveries=shopline_docs.list("delivery"),
        stokly_saleorders=stokly_docs.list("saleorder"),
        stokly_shipments=stokly_docs.list("shipment"),
        stokly_journals=stokly_docs.list("journal"),
        inbox=_inbox(store, client),
        order_links={link.shopline_id: link.stokly_id for link in store.links.all(client, "order")},
        exceptions=store.exceptions.list(client=client, status=ACTIVE),
        batches=store.batches.list(client),
        stock=stock,
        unposted=unposted,
        sku_overrides={
            o.shopline_sku.strip().casefold(): o.stokly_sku.strip().casefold()
            for o in mapping.skus.overrides
        },
        saleorders_created={
            str(e["data"]["saleOrderId"]): str(e["occurredAt"])
            for e in stokly_docs.list("event")
            if e.get("type") == "saleorder.created" and (e.get("data") or {}).get("saleOrderId")
        },
        stock_rules=stock_rules(mapping),
        shopline_products=shopline_docs.list("product"),
        shopline_levels=shopline_docs.list("inventory_level"),
        stokly_items=stokly_docs.list("item"),
        stokly_inventory=stokly_docs.list("inventory"),
        stokly_locations=stokly_docs.list("location"),
    )
