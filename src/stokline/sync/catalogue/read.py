"""What a catalogue pass reads, and how SHOPLINE's variants are matched to Stokly's items.

Every Stokly item and every SHOPLINE product are read (two paginated reads). A record either API
sends malformed (or with text that is not valid Unicode) becomes one ``poison_message`` and is
held back with everything it concerns (`stokline.sync.guards`). Each SHOPLINE variant is then
matched to the live Stokly item its SKU names under the mapping's SKU rules (a `VariantPlan`),
or to the removed item it was linked to; a SKU Stokly does not know becomes
``unknown_shopline_sku``, and Stokly SKUs that collide under the match rule one ``sku_collision``
each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stokline.config.skus import sku_key
from stokline.connectors import ConnectorError, InvalidRecord, NotFoundError
from stokline.connectors.shopline.models import Product, Variant
from stokline.mapping.translate import SkuMatcher, Untranslatable
from stokline.store.exceptions import ACTIVE
from stokline.store.records import Link
from stokline.sync.catalogue.run import PRODUCT_LINK, VARIANT_LINK, CatalogueRun
from stokline.sync.catalogue.translate import is_live
from stokline.sync.guards import printable, unusable

__all__ = ["CatalogueRead", "VariantPlan"]


@dataclass
class VariantPlan:
    """A SHOPLINE variant of a product, with the Stokly item it stands for and whether it lives."""

    product: Product
    variant: Variant
    item: dict[str, Any]
    live: bool


class CatalogueRead(CatalogueRun):
    """The reading side of a pass: both catalogues, malformed records, variants matched."""

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
        return self._readable(items, products)

    def _readable(
        self, items: list[dict[str, Any]], products: list[Product]
    ) -> tuple[list[dict[str, Any]], list[Product]]:
        """The records either API sent in a usable shape; the others are held back."""
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

    async def _read_changed(
        self, item_ids: frozenset[str]
    ) -> tuple[list[dict[str, Any]], list[Product]] | None:
        """What an event pass reads: the SHOPLINE products linked to the changed Stokly items,
        and the Stokly items all their linked variants stand for (with their variable items),
        each read by id. Only linked variants are kept: a variant the full pass has not linked
        yet (new, unknown or collided) is the full pass's, so no exception is raised about it
        from a partial view. A changed item with no linked variant is left to the full pass."""
        links = self.store.links.by_stokly_many(self.client, VARIANT_LINK, item_ids)
        self.report.deferred_items = len(item_ids - {link.stokly_id for link in links})
        product_ids = sorted({str((link.data or {}).get("product_id") or "") for link in links})
        products: list[Product] = []
        try:
            for product_id in filter(None, product_ids):
                try:
                    products.append(await self.shopline.get_product(product_id))
                except NotFoundError:
                    continue  # gone from SHOPLINE: the full pass sees it
            linked = self.store.links.get_many(
                self.client, VARIANT_LINK, [v.id for p in products for v in p.variants]
            )
            products = [
                p.model_copy(update={"variants": [v for v in p.variants if v.id in linked]})
                for p in products
            ]
            wanted = set(item_ids) | {link.stokly_id for link in linked.values()}
            items = await self._items_by_id(wanted)
            parents = {str(i["variableItemId"]) for i in items if i.get("variableItemId")}
            items += await self._items_by_id(parents - {i["itemId"] for i in items})
        except ConnectorError as exc:
            self.report.add_error(f"reading the changed items failed: {exc}")
            return None
        # A SKU that collides in Stokly stays unsynced until it is fixed, whatever this pass
        # sees of it (it reads only some items).
        self.collided |= {
            r.entity_id
            for r in self.store.exceptions.list(
                client=self.client, code="sku_collision", status=ACTIVE
            )
        }
        return self._readable(items, products)

    async def _items_by_id(self, item_ids: set[str]) -> list[dict[str, Any]]:
        found = []
        for item_id in sorted(item_ids):
            try:
                found.append((await self.stokly.get_item(item_id)).model_dump())
            except NotFoundError:
                continue
        return found

    # -- planning -------------------------------------------------------------------------------

    def _plan(
        self, items: list[dict[str, Any]], products: list[Product]
    ) -> tuple[dict[str, list[VariantPlan]], set[str], dict[str, dict[str, Any]]]:
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
        self.collided |= set(matcher.collisions)
        plans: dict[str, list[VariantPlan]] = {}
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
    ) -> VariantPlan | None:
        sku = str(variant.sku)
        if sku_key(sku, self.match) in self.held_keys:
            return None  # its Stokly item could not be read: neither unknown nor removed
        if sku_key(self.overrides.get(sku_key(sku, self.match), sku), self.match) in self.collided:
            return None  # a SKU that collides in Stokly waits for the fix (one exception says so)
        try:
            return VariantPlan(product, variant, live_by_sku[matcher.match(sku)], True)
        except Untranslatable as exc:
            if exc.code == "sku_collision":
                return None  # raised once per SKU above; the variant waits for the fix
        target = self.overrides.get(sku_key(sku, self.match), sku)
        removed = removed_by_key.get(sku_key(target, self.match))
        if removed is None and variant.id in links:
            linked = by_id.get(links[variant.id].stokly_id)
            removed = linked if linked is not None and not is_live(linked) else None
        if removed is not None:
            return VariantPlan(product, variant, removed, False)
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
