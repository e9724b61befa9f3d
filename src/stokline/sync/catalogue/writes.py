"""The SHOPLINE writes of a catalogue pass: product and variant updates, product creates.

The pass queues its writes (`CatalogueRun.writes`) and flushes them concurrently once every
product was considered, reporting progress as they complete. Every write that lands is followed
at once by its link, with the hash of what was written, and an audit row; a write that fails
keeps the old hash, so the next pass tries again — a refusal becomes an ``api_rejected``
exception, a transient failure an error of the report. A create with no clear answer is never
resent: the next pass finds the product by its SKU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from stokline.config.skus import sku_key
from stokline.connectors import ApiError, ConnectorError, is_transient
from stokline.sync.catalogue.run import ACTOR, PRODUCT_LINK, VARIANT_LINK, CatalogueRun
from stokline.sync.catalogue.translate import content_hash, translate_variant

__all__ = ["CatalogueWrites"]


class CatalogueWrites(CatalogueRun):
    """The writes of a catalogue pass, made once the pass has decided them."""

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
