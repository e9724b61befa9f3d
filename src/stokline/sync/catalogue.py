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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from stokline.config import Mapping
from stokline.config.skus import sku_key
from stokline.connectors import (
    ApiError,
    ConnectorError,
    InvalidRecord,
    ShoplineClient,
    StoklyClient,
    is_transient,
)
from stokline.connectors.shopline.models import Product, Variant
from stokline.mapping.catalogue import (
    changed_fields,
    content_hash,
    is_live,
    new_product_payload,
    translate_product,
    translate_variant,
)
from stokline.mapping.translate import SkuMatcher, Untranslatable
from stokline.store import Store
from stokline.store.exceptions import ACTIVE
from stokline.store.records import Link
from stokline.sync.clients import api_calls
from stokline.sync.guards import BAD_DATA, describe_failure, printable, unusable
from stokline.sync.report import SyncReport

__all__ = ["CatalogueReport", "sync_catalogue"]

log = logging.getLogger("stokline.sync.catalogue")

VARIANT_LINK = "variant"
PRODUCT_LINK = "product"
ACTOR = "stokline.sync.catalogue"
SYNC = "catalogue"
# Exception codes and entity kinds this sync resolves when a pass no longer meets them. Entity
# kinds are shared with the stock sync ("variant": a SHOPLINE variant id), so both syncs refresh
# one exception per variant instead of keeping two.
_OWN = {
    ("unknown_shopline_sku", "variant"),
    ("sku_collision", "stokly_sku"),
    ("template_failed", "stokly_item"),
    ("api_rejected", "variant"),
    ("api_rejected", "product"),
    ("api_rejected", "stokly_item"),
    ("poison_message", "stokly_item"),
    ("poison_message", "product"),
}
# A full pass reads every SHOPLINE variant, so it may close these whichever sync raised them.
_SEEN_BY_EVERY_PASS = {("unknown_shopline_sku", "variant")}


@dataclass
class CatalogueReport(SyncReport):
    """The outcome of one catalogue run (dry or real) for one client.

    ``linked`` counts SHOPLINE variants linked to a live Stokly item; ``unchanged`` products and
    variants that needed no write; ``updated`` products and variants written; ``created``
    products created; ``archived`` products archived or unpublished because their Stokly items
    are gone; ``reported_missing`` Stokly items SHOPLINE lacks (not created) and removals that
    ``on_removed: report`` only reports. ``would_write`` lists, in a dry run, every write a live
    run would make.
    """

    items_seen: int = 0
    products_seen: int = 0
    linked: int = 0
    unchanged: int = 0
    updated: int = 0
    created: int = 0
    archived: int = 0
    reported_missing: int = 0
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    would_write: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)

    @property
    def writes(self) -> int:
        """Writes made to SHOPLINE (updates, creates, archives)."""
        return self.updated + self.created + self.archived

    @property
    def ok(self) -> bool:
        """False when a read or a write failed for now: the next run picks it up."""
        return not self.errors

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        return self._rows(
            [
                ("Stokly items seen", self.items_seen),
                ("SHOPLINE products seen", self.products_seen),
                ("variants linked", self.linked),
                ("unchanged (no write)", self.unchanged),
                ("would write" if self.dry_run else "updated", self._shown(self.updated)),
                ("created", self.created),
                ("archived or unpublished", self.archived),
                ("missing in SHOPLINE (reported)", self.reported_missing),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )

    def _shown(self, live_count: int) -> int:
        return len(self.would_write) if self.dry_run else live_count


@dataclass
class _VariantPlan:
    product: Product
    variant: Variant
    item: dict[str, Any]
    live: bool


class _Run:
    """One pass of the catalogue sync; `sync_catalogue` is its public face."""

    def __init__(
        self,
        mapping: Mapping,
        shopline: ShoplineClient,
        stokly: StoklyClient,
        store: Store,
        dry_run: bool,
        trigger: str,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        if mapping.syncs.catalogue is None:
            raise ValueError(
                f"the mapping {mapping.source or mapping.client.name} has no syncs.catalogue"
            )
        self.mapping = mapping
        self.settings = mapping.syncs.catalogue
        self.client = mapping.client.name
        self.match = mapping.skus.match
        self.shopline = shopline
        self.stokly = stokly
        self.store = store
        self.dry = dry_run
        self.trigger = trigger
        self.progress = progress
        self.report = CatalogueReport(client=self.client, trigger=trigger, dry_run=dry_run)
        self.raised: set[tuple[str, str, str]] = set()
        self.writes: list[Coroutine[Any, Any, None]] = []
        self.variant_links: dict[str, Link] = {}
        self.product_links: dict[str, Link] = {}
        self.collided: set[str] = set()
        self.overrides = {
            sku_key(o.shopline_sku, self.match): o.stokly_sku for o in mapping.skus.overrides
        }
        # What malformed records concern, left alone this pass: SKU keys and Stokly item ids.
        self.held_keys: set[str] = set()
        self.held_items: set[str] = set()
        self.no_create = False  # a malformed product whose SKUs are unknown: create nothing

    # -- exceptions -----------------------------------------------------------------------------

    def _raise(
        self,
        code: str,
        kind: str,
        entity_id: str,
        entity: str,
        message: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        team = self.mapping.operating_model.owner_of(code)
        self.raised.add((code, kind, entity_id))
        if self.dry:
            self.report.add_exception(code, team, entity, message)
            return
        record = self.store.exceptions.raise_(
            self.client,
            code,
            kind,
            entity_id,
            message,
            team=team,
            payload={**(extra or {}), "entity": entity, "sync": SYNC},
        )
        if record.attempts == 1:
            self.report.exceptions_opened += 1
        self.report.add_exception(code, team, entity, message, record.status)

    def _resolve_gone(self) -> None:
        """Close this sync's exceptions that the pass no longer met (fixed in Stokly or SHOPLINE)."""
        for record in self.store.exceptions.list(client=self.client, status=ACTIVE):
            key = (record.code, record.entity_kind)
            payload = record.payload if isinstance(record.payload, dict) else {}
            mine = key in _SEEN_BY_EVERY_PASS or (key in _OWN and payload.get("sync") == SYNC)
            if not mine or (*key, record.entity_id) in self.raised:
                continue
            entity = payload.get("entity", record.entity_id)
            note = "no longer seen by the catalogue sync"
            if self.store.exceptions.resolve(record.id, note):
                self.report.exceptions_resolved += 1
                self.report.add_exception(record.code, record.team, str(entity), note, "resolved")

    # -- malformed records ----------------------------------------------------------------------

    def _hold_sku(self, sku: object) -> None:
        """Hold a SKU of either side, with what an override pairs it with on the other."""
        if isinstance(sku, str) and sku.strip():
            key = sku_key(sku, self.match)
            self.held_keys.update({key, sku_key(self.overrides.get(key, sku), self.match)})
            self.held_keys.update(
                shop
                for shop, stokly in self.overrides.items()
                if sku_key(stokly, self.match) == key
            )

    def _bad_item(self, record: InvalidRecord | None, raw: Any = None, why: str = "") -> None:
        raw = record.raw if record is not None else raw
        raw = raw if isinstance(raw, dict) else {}
        if record is not None:
            why = f"Stokly sent it malformed: {record.error}"
        item_id = record.record_id if record is not None else str(raw.get("itemId") or "")
        self._hold_sku(raw.get("sku"))
        if not item_id:
            self.report.add_error(f"Stokly sent an item without a usable id: {why}")
            return
        self.held_items.add(item_id)
        name = printable(raw.get("sku") or item_id)
        message = printable(f"the item cannot be read, so it is left alone: {why}", 600)
        self._raise("poison_message", "stokly_item", printable(item_id), f"item {name}", message)

    def _bad_product(self, record: InvalidRecord | None, raw: Any = None, why: str = "") -> None:
        raw = record.raw if record is not None else raw
        raw = raw if isinstance(raw, dict) else {}
        if record is not None:
            why = f"SHOPLINE sent it malformed: {record.error}"
        variants = raw.get("variants")
        if isinstance(variants, list) and all(
            isinstance(v, dict) and isinstance(v.get("sku"), str | None) for v in variants
        ):
            for variant in variants:
                self._hold_sku(variant.get("sku"))
        else:  # its SKUs are unknown: creating "missing" products could duplicate it
            self.no_create = True
        product_id = record.record_id if record is not None else str(raw.get("id") or "")
        if not product_id:
            self.report.add_error(f"SHOPLINE sent a product without a usable id: {why}")
            return
        message = printable(f"the product cannot be read, so it is left alone: {why}", 600)
        pid = printable(product_id)
        self._raise("poison_message", PRODUCT_LINK, pid, f"product {pid}", message)

    # -- reading --------------------------------------------------------------------------------

    async def _read(self) -> tuple[list[dict[str, Any]], list[Product]] | None:
        try:
            items = [
                i.model_dump() async for i in self.stokly.iter_items(on_invalid=self._bad_item)
            ]
        except ConnectorError as exc:
            self.report.add_error(f"reading Stokly items failed: {exc}")
            return None
        try:
            products = [p async for p in self.shopline.iter_products(on_invalid=self._bad_product)]
        except ConnectorError as exc:
            self.report.add_error(f"reading SHOPLINE products failed: {exc}")
            return None
        readable_items = []
        for item in items:
            if (why := unusable(item)) is not None:
                self._bad_item(None, item, why)
            else:
                readable_items.append(item)
        readable_products = []
        for product in products:
            if (why := unusable(product.model_dump())) is not None:
                self._bad_product(None, product.model_dump(), why)
            else:
                readable_products.append(product)
        return readable_items, readable_products

    # -- planning -------------------------------------------------------------------------------

    def _plan(
        self, items: list[dict[str, Any]], products: list[Product]
    ) -> tuple[dict[str, list[_VariantPlan]], set[str], dict[str, dict[str, Any]]]:
        by_id = {i["itemId"]: i for i in items}
        matcher = SkuMatcher(self.mapping, ())
        simple = [i for i in items if i.get("format") != 2 and not matcher.excluded(i["sku"])]
        live = [i for i in simple if is_live(i)]
        self.report.items_seen = sum(1 for i in items if not matcher.excluded(i["sku"]))
        self.report.products_seen = len(products)
        matcher = SkuMatcher(self.mapping, [i["sku"] for i in live])
        live_by_sku = {i["sku"]: i for i in live}
        live_keys = {sku_key(i["sku"], self.match) for i in live}
        removed_by_key = {
            sku_key(i["sku"], self.match): i
            for i in simple
            if not is_live(i) and sku_key(i["sku"], self.match) not in live_keys
        }
        for key, skus in matcher.collisions.items():
            self._raise(
                "sku_collision",
                "stokly_sku",
                key,
                f"SKU {key}",
                f"Stokly items {', '.join(skus)} are the same SKU under skus.match"
                f" {self.match}; none of them is synced until they differ",
            )
        self.variant_links = links = self.store.links.get_many(
            self.client, VARIANT_LINK, [v.id for p in products for v in p.variants]
        )
        self.product_links = self.store.links.get_many(
            self.client, PRODUCT_LINK, [p.id for p in products]
        )
        self.collided = set(matcher.collisions)
        plans: dict[str, list[_VariantPlan]] = {}
        matched: set[str] = set()
        for product in products:
            for variant in product.variants:
                sku = (variant.sku or "").strip()
                if not sku or matcher.excluded(sku):
                    continue
                plan = self._link(
                    product, variant, matcher, live_by_sku, removed_by_key, links, by_id
                )
                if plan is not None:
                    plans.setdefault(product.id, []).append(plan)
                    matched.add(plan.item["itemId"])
        return plans, matched, by_id

    def _link(
        self,
        product: Product,
        variant: Variant,
        matcher: SkuMatcher,
        live_by_sku: dict[str, dict[str, Any]],
        removed_by_key: dict[str, dict[str, Any]],
        links: dict[str, Link],
        by_id: dict[str, dict[str, Any]],
    ) -> _VariantPlan | None:
        sku = str(variant.sku)
        if sku_key(sku, self.match) in self.held_keys:
            return None  # its Stokly item could not be read: neither unknown nor removed
        try:
            return _VariantPlan(product, variant, live_by_sku[matcher.match(sku)], True)
        except Untranslatable as exc:
            if exc.code == "sku_collision":
                return None  # raised once per SKU above; the variant waits for the fix
        target = self.overrides.get(sku_key(sku, self.match), sku)
        removed = removed_by_key.get(sku_key(target, self.match))
        if removed is None and variant.id in links:
            linked = by_id.get(links[variant.id].stokly_id)
            removed = linked if linked is not None and not is_live(linked) else None
        if removed is not None:
            return _VariantPlan(product, variant, removed, False)
        self._raise(
            "unknown_shopline_sku",
            VARIANT_LINK,
            variant.id,
            f"variant {sku} of {product.title or product.id} ({variant.id})",
            f"SHOPLINE variant SKU {sku} (product {product.title or product.id}) matches no"
            " Stokly item",
            {"sku": sku, "inventory_item_id": variant.inventory_item_id},
        )
        return None

    # -- deciding writes ------------------------------------------------------------------------

    def _product_source(
        self, entries: list[_VariantPlan], by_id: dict[str, dict[str, Any]]
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

    def _consider_product(self, product: Product, entries: list[_VariantPlan], by_id: dict) -> None:
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

    def _consider_variant(self, entry: _VariantPlan) -> None:
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

    # -- writing --------------------------------------------------------------------------------

    def _put_link(self, kind: str, shopline_id: str, stokly_id: str, data: dict[str, Any]) -> None:
        if not self.dry:
            self.store.links.put(self.client, kind, shopline_id, stokly_id, data)

    def _failed(
        self, exc: ConnectorError, kind: str, entity_id: str, entity: str, what: str
    ) -> None:
        if isinstance(exc, ApiError) and not is_transient(exc):
            self._raise(
                "api_rejected",
                kind,
                entity_id,
                entity,
                f"SHOPLINE refused {what}: {exc.api_message or exc}",
            )
        else:
            self.report.add_error(f"{what} of {entity} failed for now: {exc}")

    async def _write_product(
        self,
        product_id: str,
        source: dict[str, Any],
        diff: dict[str, Any],
        data: dict[str, Any],
        *,
        archive: bool,
        entity: str,
    ) -> None:
        try:
            await self.shopline.update_product(product_id, diff)
        except ConnectorError as exc:
            self._failed(exc, PRODUCT_LINK, product_id, entity, "the product update")
            return
        self.store.links.put(self.client, PRODUCT_LINK, product_id, source["itemId"], data)
        action = "archive_product" if archive else "update_product"
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            action,
            f"product:{product_id}",
            source["itemId"],
            {"fields": sorted(diff), "sku": source["sku"], "trigger": self.trigger},
        )
        if archive:
            self.report.archived += 1
        else:
            self.report.updated += 1

    async def _write_variant(
        self,
        variant_id: str,
        item: dict[str, Any],
        diff: dict[str, Any],
        data: dict[str, Any],
        entity: str,
    ) -> None:
        try:
            await self.shopline.update_variant(variant_id, diff)
        except ConnectorError as exc:
            self._failed(exc, VARIANT_LINK, variant_id, entity, "the variant update")
            return
        self.store.links.put(self.client, VARIANT_LINK, variant_id, item["itemId"], data)
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            "update_variant",
            f"variant:{variant_id}",
            item["itemId"],
            {"fields": sorted(diff), "sku": item["sku"], "trigger": self.trigger},
        )
        self.report.updated += 1

    async def _create(
        self,
        source: dict[str, Any],
        pairs: list[tuple[str, dict[str, Any]]],
        body: dict[str, Any],
        entity: str,
    ) -> None:
        try:
            created = await self.shopline.create_product(body)
        except ApiError as exc:
            self._failed(exc, "stokly_item", source["itemId"], entity, "the product create")
            return
        except ConnectorError as exc:
            # Ambiguous: it may exist now. The next pass finds it by SKU, so never resend here.
            self.report.add_error(f"creating {entity} had no clear answer: {exc}")
            return
        product_fields = {k: v for k, v in body.items() if k not in ("variants", "options")}
        self.store.links.put(
            self.client,
            PRODUCT_LINK,
            created.id,
            source["itemId"],
            {"hash": content_hash(product_fields)},
        )
        by_sku = {sku_key(v.sku or "", self.match): v for v in created.variants}
        for sku, item in pairs:
            variant = by_sku.get(sku_key(sku, self.match))
            if variant is None:
                continue  # the next pass links it by SKU
            self.store.links.put(
                self.client,
                VARIANT_LINK,
                variant.id,
                item["itemId"],
                {
                    "product_id": created.id,
                    "inventory_item_id": variant.inventory_item_id,
                    "sku": variant.sku,
                    "hash": content_hash(translate_variant(item)),
                },
            )
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            "create_product",
            f"product:{created.id}",
            source["itemId"],
            {"skus": [s for s, _ in pairs], "trigger": self.trigger},
        )
        self.report.created += 1

    async def _flush(self) -> None:
        total = len(self.writes)
        done = 0

        async def tracked(write: Coroutine[Any, Any, None]) -> None:
            nonlocal done
            await write
            done += 1
            if self.progress is not None:
                self.progress(done, total)

        await asyncio.gather(*(tracked(w) for w in self.writes))
        self.writes = []

    # -- the run --------------------------------------------------------------------------------

    def _consider_all(
        self,
        product: Product,
        entries: list[_VariantPlan],
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
        started = time.monotonic()
        calls_before = api_calls(self.shopline, self.stokly)
        read = await self._read()
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
            self._consider_missing(items, matched, by_id, listed_parents)
            await self._flush()
            if not self.dry and not self.report.errors:
                self._resolve_gone()
        self.report.api_calls = api_calls(self.shopline, self.stokly) - calls_before
        self.report.seconds = time.monotonic() - started
        return self.report


async def sync_catalogue(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    progress: Callable[[int, int], None] | None = None,
) -> CatalogueReport:
    """One pass of the catalogue sync for ``mapping``'s client; returns what it did.

    Never writes to Stokly. Exceptions (unknown SHOPLINE SKUs, SKU collisions, failed
    templates, refused writes) are recorded in the store and listed in the report, never raised;
    transient failures appear in ``report.errors`` (``report.ok`` is False) and are retried by
    the next pass, since their hashes were not stored. ``progress(done, total)`` is called as
    the writes complete.
    """
    run = _Run(mapping, shopline, stokly, store, dry_run, trigger, progress)
    return await run.execute()
