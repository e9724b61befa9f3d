"""The state one catalogue run keeps, and the exceptions it raises and resolves.

The steps of a pass — reading and matching (`stokline.sync.catalogue.read`), deciding what to
write (`stokline.sync.catalogue.sync`) and writing it (`stokline.sync.catalogue.writes`) — are
subclasses of `CatalogueRun` and share what is here: the links read for the pass, the writes
queued, the SKUs and items held back by malformed records, and this sync's exceptions — raised
once per entity, and resolved at the end of a full pass when the pass no longer meets them.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from stokline.config.skus import sku_key
from stokline.store.exceptions import ACTIVE
from stokline.store.records import Link
from stokline.sync.catalogue.report import CatalogueReport
from stokline.sync.run import SyncRun

__all__ = ["ACTOR", "PRODUCT_LINK", "SYNC", "VARIANT_LINK", "CatalogueRun"]

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


class CatalogueRun(SyncRun):
    """One pass of the catalogue sync: its state, and its exceptions."""

    def __post_init__(self) -> None:
        mapping = self.mapping
        if mapping.syncs.catalogue is None:
            raise ValueError(
                f"the mapping {mapping.source or mapping.client.name} has no syncs.catalogue"
            )
        self.settings = mapping.syncs.catalogue
        self.match = mapping.skus.match
        self.report = CatalogueReport(client=self.client, trigger=self.trigger, dry_run=self.dry)
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
        # An event pass: only these Stokly items (their linked products), nothing created or
        # resolved; None for a full pass.
        self.only_items: frozenset[str] | None = None

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
