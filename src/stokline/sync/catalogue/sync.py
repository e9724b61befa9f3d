"""The catalogue sync: Stokly items onto SHOPLINE products and variants; nothing goes back.

One pass reads every Stokly item and every SHOPLINE product (two paginated reads), then:

1. links each SHOPLINE variant to the live Stokly item its SKU names under the mapping's SKU
   rules; a SKU Stokly does not know becomes ``unknown_shopline_sku``, Stokly SKUs that collide
   under the match rule become one ``sku_collision`` each and are left alone;
2. translates each linked variant (price, compare-at price, barcode, weight) and each product
   (title, body_html, vendor, tags, status — from the variable item, or the simple item a
   one-variant product stands for) and hashes exactly what would be written;
3. writes only what changed since the last write: an entity whose hash equals the one stored
   with its link costs nothing; otherwise only the fields SHOPLINE does not already hold are
   sent (a first pass over an already-matching store writes nothing either);
4. products whose Stokly items are all deleted or deactivated get the status ``on_removed``
   asks for (archived or draft), never a delete; under ``report`` they are only reported;
5. live Stokly items SHOPLINE lacks are created (one product per variable item, or per simple
   item) when ``create_missing`` is on, else reported.

Links (store kinds ``variant`` and ``product``): SHOPLINE variant id → Stokly item id with
``{"product_id", "inventory_item_id", "sku", "hash"}``; SHOPLINE product id → the Stokly item it
stands for with ``{"hash"}``. A write that fails keeps the old hash, so the next pass tries
again; a create with no clear answer is found by its SKU on the next pass, never created twice.
Exceptions this sync raised and that no longer occur are resolved at the end of a full pass.
A record either API sends malformed (or with text that is not valid Unicode) is one
``poison_message`` and is left alone with everything it concerns: a Stokly item's SKU is not
taken for unknown, a SHOPLINE product's SKUs are never created again as missing (if they cannot
be read, nothing is created this pass) — the rest of the pass goes on (`stokline.sync.guards`).
A dry run reads both APIs and the store and writes nothing anywhere.

This module decides what to write; the pass is put together from `stokline.sync.catalogue.read`
(reading and matching), `stokline.sync.catalogue.writes` (writing) and
`stokline.sync.catalogue.run` (the state and exceptions they share).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from stokline.config import Mapping
from stokline.config.skus import sku_key
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.connectors.shopline.models import Product
from stokline.mapping.translate import SkuMatcher, Untranslatable
from stokline.store import Store
from stokline.sync.catalogue.read import CatalogueRead, VariantPlan
from stokline.sync.catalogue.report import CatalogueReport
from stokline.sync.catalogue.run import PRODUCT_LINK, VARIANT_LINK
from stokline.sync.catalogue.translate import (
    changed_fields,
    content_hash,
    is_live,
    new_product_payload,
    translate_product,
    translate_variant,
)
from stokline.sync.catalogue.writes import CatalogueWrites
from stokline.sync.guards import BAD_DATA, describe_failure
from stokline.sync.run import RunCost

__all__ = ["CatalogueReport", "sync_catalogue"]


class _Run(CatalogueRead, CatalogueWrites):
    """One pass of the catalogue sync; `sync_catalogue` is its public face."""

    # -- deciding writes ------------------------------------------------------------------------

    def _product_source(
        self, entries: list[VariantPlan], by_id: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any] | None, bool]:
        """The Stokly item a SHOPLINE product stands for, and whether it is live."""
        alive = [e for e in entries if e.live]
        chosen = alive or entries
        parents = {e.item.get("variableItemId") for e in chosen}
        if len(parents) == 1 and None not in parents:
            parent = by_id.get(str(next(iter(parents))))
            if parent is not None:
                return parent, bool(alive) and is_live(parent)
        if parents == {None} and len(chosen) == 1:
            return chosen[0].item, bool(alive)
        # Variants of several Stokly products in one SHOPLINE product: whose title would it be?
        return None, bool(alive)

    def _consider_product(self, product: Product, entries: list[VariantPlan], by_id: dict) -> None:
        source, live = self._product_source(entries, by_id)
        if source is None:
            return
        if not live and self.settings.on_removed == "report":
            self.report.reported_missing += 1
            self.report.missing.append(
                {
                    "sku": source["sku"],
                    "stokly_item": source["itemId"],
                    "shopline_product": product.id,
                    "state": "removed in Stokly (on_removed: report)",
                }
            )
            return
        try:
            desired = translate_product(self.mapping, source, live=live)
        except Untranslatable as exc:
            self._raise(
                exc.code, "stokly_item", source["itemId"], f"item {source['sku']}", exc.message
            )
            return
        digest = content_hash(desired)
        link = self.product_links.get(product.id)
        data = {"hash": digest}
        if (
            link is not None
            and link.stokly_id == source["itemId"]
            and (link.data or {}).get("hash") == digest
        ):
            self.report.unchanged += 1
            return
        diff = changed_fields(desired, product.model_dump())
        if not diff:
            self.report.unchanged += 1
            self._put_link(PRODUCT_LINK, product.id, source["itemId"], data)
            return
        action = "archive_product" if not live else "update_product"
        entity = f"product {product.title or product.id} ({product.id})"
        if self.dry:
            self._would(action, entity, source["sku"], diff)
            return
        self.writes.append(
            self._write_product(product.id, source, diff, data, archive=not live, entity=entity)
        )

    def _consider_variant(self, entry: VariantPlan) -> None:
        item, variant = entry.item, entry.variant
        desired = translate_variant(item) if entry.live else {}
        digest = content_hash(desired)
        data = {
            "product_id": entry.product.id,
            "inventory_item_id": variant.inventory_item_id,
            "sku": variant.sku,
            "hash": digest,
        }
        if entry.live:
            self.report.linked += 1
        link = self.variant_links.get(variant.id)
        old = (link.data or {}) if link is not None else {}
        if link is not None and link.stokly_id == item["itemId"] and old.get("hash") == digest:
            if old != data:  # moved product or a new inventory item: keep the ids current
                self._put_link(VARIANT_LINK, variant.id, item["itemId"], data)
            self.report.unchanged += 1
            return
        diff = changed_fields(desired, variant.model_dump())
        if not diff:
            self.report.unchanged += 1
            self._put_link(VARIANT_LINK, variant.id, item["itemId"], data)
            return
        entity = f"variant {variant.sku} ({variant.id})"
        if self.dry:
            self._would("update_variant", entity, item["sku"], diff)
            return
        self.writes.append(self._write_variant(variant.id, item, diff, data, entity))

    def _consider_missing(
        self,
        items: list[dict[str, Any]],
        matched: set[str],
        by_id: dict[str, dict[str, Any]],
        listed_parents: set[str],
    ) -> None:
        matcher = SkuMatcher(self.mapping, ())
        live = [
            i
            for i in items
            if i.get("format") != 2 and is_live(i) and not matcher.excluded(i["sku"])
        ]
        collided = self.collided
        groups: dict[str, list[dict[str, Any]]] = {}
        if self.no_create:
            self.report.add_error(
                "no missing product is created this pass: a malformed SHOPLINE product's SKUs"
                " cannot be read, so any of them might exist already"
            )
            return
        for item in live:
            if item["itemId"] in matched or sku_key(item["sku"], self.match) in collided:
                continue
            if sku_key(item["sku"], self.match) in self.held_keys:
                continue  # a malformed SHOPLINE product may hold it: never created twice
            if str(item.get("variableItemId") or "") in self.held_items:
                continue  # its variable item could not be read
            parent = item.get("variableItemId")
            if parent and parent in listed_parents:
                self._missing(item, "a new variant of a product already in SHOPLINE: add it there")
                continue
            groups.setdefault(str(parent or item["itemId"]), []).append(item)
        reverse = {
            sku_key(stokly, self.match): shop
            for shop, stokly in (
                (o.shopline_sku, o.stokly_sku) for o in self.mapping.skus.overrides
            )
        }
        for key, children in groups.items():
            source = by_id.get(key, children[0])
            if not is_live(source):
                for child in children:
                    self._missing(child, "its variable item is deleted in Stokly")
                continue
            if not self.settings.create_missing:
                for child in children:
                    self._missing(child, "not in SHOPLINE (create_missing: false)")
                continue
            pairs = [(reverse.get(sku_key(c["sku"], self.match), c["sku"]), c) for c in children]
            try:
                body = new_product_payload(self.mapping, source, pairs)
            except Untranslatable as exc:
                self._raise(
                    exc.code, "stokly_item", source["itemId"], f"item {source['sku']}", exc.message
                )
                continue
            entity = f"new product {body['title']} ({len(pairs)} variant(s))"
            if self.dry:
                self._would(
                    "create_product",
                    entity,
                    source["sku"],
                    {"skus": ", ".join(s for s, _ in pairs)},
                )
                continue
            self.writes.append(self._create(source, pairs, body, entity))

    def _missing(self, item: dict[str, Any], state: str) -> None:
        self.report.reported_missing += 1
        self.report.missing.append(
            {
                "sku": item["sku"],
                "stokly_item": item["itemId"],
                "shopline_product": None,
                "state": state,
            }
        )

    def _would(self, action: str, entity: str, sku: str, fields: dict[str, Any]) -> None:
        self.report.would_write.append(
            {
                "action": action,
                "entity": entity,
                "stokly_sku": sku,
                "fields": ", ".join(sorted(fields)),
                "values": {k: str(v) for k, v in fields.items()},
            }
        )

    def _put_link(self, kind: str, shopline_id: str, stokly_id: str, data: dict[str, Any]) -> None:
        """Record a link that needs no write to SHOPLINE (nothing, in a dry run)."""
        if not self.dry:
            self.store.links.put(self.client, kind, shopline_id, stokly_id, data)

    # -- the run --------------------------------------------------------------------------------

    def _consider_all(
        self,
        product: Product,
        entries: list[VariantPlan],
        by_id: dict[str, dict[str, Any]],
        listed_parents: set[str],
    ) -> None:
        alive = any(e.live for e in entries)
        for entry in entries:
            self._consider_variant(entry)
            if alive and not entry.live:
                self._missing(
                    entry.item,
                    "removed in Stokly; SHOPLINE cannot archive one variant of a product"
                    f" with live ones: remove variant {entry.variant.id} there",
                )
            if entry.item.get("variableItemId"):
                listed_parents.add(str(entry.item["variableItemId"]))
        self._consider_product(product, entries, by_id)

    async def execute(self) -> CatalogueReport:
        cost = RunCost(self.shopline, self.stokly)
        targeted = self.only_items is not None
        read = await (self._read_changed(self.only_items) if targeted else self._read())
        if read is not None:
            items, products = read
            plans, matched, by_id = self._plan(items, products)
            listed_parents: set[str] = set()
            for product in products:
                entries = plans.get(product.id, [])
                if not entries:
                    continue
                try:
                    self._consider_all(product, entries, by_id, listed_parents)
                except BAD_DATA as exc:  # data no check foresaw: this product, not the pass
                    why = f"handling it failed: {describe_failure(exc)}"
                    self._bad_product(None, product.model_dump(), why)
            if not targeted:  # creating and resolving need the whole of both catalogues
                self._consider_missing(items, matched, by_id, listed_parents)
            await self._flush()
            if not targeted and not self.dry and not self.report.errors:
                self._resolve_gone()
        return cost.charge(self.report)


async def sync_catalogue(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    progress: Callable[[int, int], None] | None = None,
    items: Collection[str] | None = None,
) -> CatalogueReport:
    """One pass of the catalogue sync for ``mapping``'s client; returns what it did.

    Never writes to Stokly. Exceptions (unknown SHOPLINE SKUs, SKU collisions, failed
    templates, refused writes) are recorded in the store and listed in the report, never raised;
    transient failures appear in ``report.errors`` (``report.ok`` is False) and are retried by
    the next pass, since their hashes were not stored. ``progress(done, total)`` is called as
    the writes complete.

    ``items`` (Stokly item ids) makes it an event pass, for items that changed: only the
    SHOPLINE products linked to them are read and brought in line, by id; nothing is created
    and no exception is closed (both need the whole of both catalogues, the full pass's job).
    """
    run = _Run(mapping, shopline, stokly, store, dry_run, trigger, progress)
    if items is not None:
        run.only_items = frozenset(str(i) for i in items)
    return await run.execute()
