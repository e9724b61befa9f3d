"""Importing a batch of orders into Stokly: recover what is there already, create the rest.

For one batch: orders already linked go to `stokline.sync.orders.changes`; the others are
searched in Stokly by (channel id, SHOPLINE order id), one call per batch, and a sale order found
there is linked, never created again (this is how a run that crashed between create and link
recovers). What remains is translated through the mapping (items validated by one look-up per
batch), its customers found or created, and its sale orders created concurrently; each create is
followed at once by its link and an audit row. An order that cannot be translated becomes one
exception and the batch goes on; one held back by a transient failure is deferred.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stokline.config.skus import sku_key
from stokline.connectors import ApiError, ConnectorError, StoklyClient, is_transient
from stokline.connectors.stokly.models import SaleOrder
from stokline.mapping.translate import Untranslatable
from stokline.store.records import Link
from stokline.sync.guards import BAD_DATA, describe_failure
from stokline.sync.orders.changes import OrderChanges
from stokline.sync.orders.customers import create_customers, plan_customers
from stokline.sync.orders.run import ACTOR, LINK
from stokline.sync.orders.translate import (
    NO_REFUNDS,
    OrderUntranslatable,
    SaleOrderDraft,
    StoklyCatalogue,
    before_go_live,
    is_cancelled,
    is_importable,
    order_fingerprint,
    refunded_before_import,
    translate_order,
)

__all__ = ["OrderImport", "stokly_location_index"]


class OrderImport(OrderChanges):
    """The handling of a batch of orders: changes of linked ones, imports of the others."""

    async def _batch(self, orders: list[dict[str, Any]]) -> None:
        ids = [str(o["id"]) for o in orders]
        links = {} if not ids else self.store.links.get_many(self.client, LINK, ids)
        search: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for order in orders:
            order_id = str(order["id"])
            if order_id in links:
                changed.append(order)
            elif before_go_live(order, self.settings.import_from):
                self.report.skipped += 1
                self.report.before_import_from += 1
                if self.active.get(order_id):
                    self._resolve(order_id, "placed before syncs.orders.import_from")
            elif is_cancelled(order):
                # A crashed run may have created it before it was cancelled; never if unpaid.
                if order.get("financial_status") in (None, "unpaid", "voided"):
                    self.report.skipped += 1
                else:
                    search.append(order)
            elif refunded_before_import(order.get("financial_status"), self.settings.import_when):
                # Money all given back before import: nothing to fulfil, so never created; but a
                # crashed run may have created it, and then it is linked (like a cancellation).
                search.append(order)
            elif not is_importable(order.get("financial_status"), self.settings.import_when):
                self.report.skipped += 1
                if self.active.get(order_id):
                    status = order.get("financial_status")
                    self._resolve(order_id, f"no longer to be imported (financial status {status})")
            else:
                search.append(order)
        cancels = [
            o
            for o in changed
            if is_cancelled(o) and not (links[o["id"]].data or {}).get("cancelled")
        ]
        look_up = [str(o["id"]) for o in search] + [
            str(o["id"]) for o in cancels if self.settings.on_cancelled == "apply"
        ]
        found: dict[str, SaleOrder] = {}
        if look_up:
            try:
                for sale in await self.stokly.find_sale_orders_by_source(self.channel, look_up):
                    if sale.sourceReferenceId:
                        found.setdefault(sale.sourceReferenceId, sale)
            except ConnectorError as exc:
                self.report.add_error(f"searching Stokly for {len(look_up)} orders failed: {exc}")
                for order in search + cancels:
                    self.deferred[str(order["id"])] = order
                search, cancels = [], []
                changed = [o for o in changed if not is_cancelled(o)]
        to_create: list[dict[str, Any]] = []
        for order in search:
            order_id = str(order["id"])
            sale = found.get(order_id)
            if sale is not None:
                self._recovered(order, sale)
            elif is_cancelled(order):
                self.report.skipped += 1
                if self.active.get(order_id):
                    self._resolve(order_id, "cancelled in SHOPLINE before it was imported")
            elif refunded_before_import(order.get("financial_status"), self.settings.import_when):
                self.report.skipped += 1
                if self.active.get(order_id):
                    self._resolve(order_id, "refunded in full in SHOPLINE before it was imported")
            else:
                to_create.append(order)
        for order in changed:
            await self._check_change(order, links[str(order["id"])], found.get(str(order["id"])))
        if to_create:
            await self._create_all(to_create)

    def _recovered(self, order: dict[str, Any], sale: SaleOrder) -> None:
        """Stokly has it already (a crash between create and link, or another installation)."""
        order_id = str(order["id"])
        self.report.duplicates += 1
        if self.dry:
            return
        # What the sale order was created with is not known (a run killed before recording it,
        # or another installation): its lines are checked against the refunds made since.
        fingerprint = order_fingerprint(order)
        data = {"fingerprint": {**fingerprint, "refunds": NO_REFUNDS}, "recovered": True}
        self.store.links.put(self.client, LINK, order_id, sale.saleOrderId, data)
        self._resolve(order_id, f"already in Stokly as sale order {sale.saleOrderId}")
        if is_cancelled(order) or fingerprint["refunds"] != NO_REFUNDS:
            link = Link(LINK, order_id, sale.saleOrderId, data)
            self._pending_changes.append((order, link, sale))

    async def _create_all(self, orders: list[dict[str, Any]]) -> None:
        try:
            catalogue = await self._catalogue(orders)
        except ConnectorError as exc:
            self.report.add_error(f"reading Stokly items and locations failed: {exc}")
            for order in orders:
                self.deferred[str(order["id"])] = order
            return
        drafts: list[tuple[dict[str, Any], SaleOrderDraft]] = []
        for order in orders:
            try:
                draft = translate_order(self.mapping, order, catalogue)
            except OrderUntranslatable as exc:
                problems = [{"code": p.code, "message": p.message} for p in exc.problems]
                self._raise(order, exc, {"problems": problems})
                continue
            except BAD_DATA as exc:  # data no check foresaw: this order, not the batch, fails
                message = f"the order could not be translated: {describe_failure(exc)}"
                self._raise(order, Untranslatable("poison_message", message))
                continue
            if not draft.importable:
                self.report.skipped += 1
                if self.active.get(draft.order_id):
                    left_out = ", ".join([*draft.excluded, *draft.refunded])
                    self._resolve(draft.order_id, f"nothing left to ship ({left_out})")
                continue
            drafts.append((order, draft))
        if not drafts:
            return
        try:
            plan = await plan_customers(self.mapping, self.stokly, [o for o, _ in drafts])
        except ConnectorError as exc:
            self.report.add_error(f"looking up Stokly customers failed: {exc}")
            for order, _ in drafts:
                self.deferred[str(order["id"])] = order
            return
        groups = plan.groups()
        if groups and not self.dry:
            await create_customers(self.stokly, groups)
            for group in groups:
                if group.customer_id:
                    self.report.customers_created += 1
                    self.store.audit.record(
                        self.client,
                        ACTOR,
                        "stokly",
                        "create_customer",
                        f"{self.channel}:customer-for:{group.orders[0]}",
                        group.customer_id,
                        {"orders": group.orders, "keys": sorted(k for k, _ in group.keys)},
                    )
        ready: list[tuple[dict[str, Any], SaleOrderDraft, str | None]] = []
        for order, draft in drafts:
            order_id = draft.order_id
            if order_id in plan.problems:
                self._raise(order, plan.problems[order_id])
                continue
            group = plan.new.get(order_id)
            if group is None:
                ready.append((order, draft, plan.existing.get(order_id)))
            elif self.dry:
                ready.append((order, draft, "(new)"))
            elif group.customer_id:
                ready.append((order, draft, group.customer_id))
            elif group.error is not None and is_transient(group.error):
                self.deferred[order_id] = order
            else:
                self._raise(
                    order,
                    Untranslatable(
                        "api_rejected", f"Stokly refused the new customer: {group.error}"
                    ),
                )
        if not self.dry and ready:
            # Confirm the leases right before writing: an order whose lease was lost (a stalled
            # heartbeat) may be another run's by now; it is left to that run.
            held = self.store.leases.acquire(
                self.client, LINK, [d.order_id for _, d, _ in ready], self.holder
            )
            for order, draft, _ in ready:
                if draft.order_id not in held:
                    self.busy[draft.order_id] = order
                    for event in self.events.pop(draft.order_id, []):
                        self.store.inbox.release(event.id, "the order was taken by another run")
            ready = [(o, d, c) for o, d, c in ready if d.order_id in held]
        if self.dry:
            for _order, draft, customer in ready:
                row = draft.summary()
                row["customer"] = (
                    "new" if customer == "(new)" else "existing" if customer else "none"
                )
                self.report.would_create.append(row)
            return
        results = await asyncio.gather(
            *(self._create(order, draft, customer) for order, draft, customer in ready),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and self.crash is None:
                self.crash = result

    async def _catalogue(self, orders: list[dict[str, Any]]) -> StoklyCatalogue:
        """Stokly's items for the SKUs of ``orders`` (one filtered look-up), and its locations."""
        match = self.mapping.skus.match
        overrides = {
            sku_key(o.shopline_sku, match): o.stokly_sku for o in self.mapping.skus.overrides
        }
        skus: set[str] = set()
        for order in orders:
            for line in order.get("line_items") or []:
                sku = str(line.get("sku") or "").strip()
                if not sku or self.never_sync(sku):
                    continue
                target = overrides.get(sku_key(sku, match), sku)
                skus.add(target)
                if match != "exact":
                    skus.update({target.upper(), target.lower()})
        items = await self._items(skus)
        if match != "exact" and self.full_index is None:
            keys = {sku_key(s, match) for s in items}
            if any(sku_key(s, match) not in keys for s in skus):
                # Spellings a filter cannot guess (separators, mixed case): read the whole index.
                self.full_index = await self._items(None)
        if self.full_index is not None:
            items = self.full_index
        if self.locations is None:
            self.locations = await stokly_location_index(self.stokly)
        return StoklyCatalogue.build(self.mapping, items.items(), self.locations.items())

    async def _items(self, skus: set[str] | None) -> dict[str, str]:
        if skus is not None and not skus:
            return {}
        return {
            item.sku: item.itemId
            async for item in self.stokly.iter_items(skus=sorted(skus) if skus else None)
            if item.active and item.format != 2
        }

    async def _create(
        self, order: dict[str, Any], draft: SaleOrderDraft, customer: str | None
    ) -> None:
        order_id = draft.order_id
        try:
            created = await self.stokly.create_sale_order(draft.payload_for(customer))
        except ApiError as exc:
            if is_transient(exc):
                self.deferred[order_id] = order
                self.report.add_error(f"creating {draft.name} failed for now: {exc}")
            else:
                self._raise(
                    order,
                    Untranslatable(
                        "api_rejected", f"Stokly refused the sale order: {exc.api_message or exc}"
                    ),
                    {"status": exc.status},
                )
            return
        except ConnectorError as exc:
            # Ambiguous: the order may exist. Never resent now; the next run searches first.
            self.deferred[order_id] = order
            self.report.add_error(f"creating {draft.name} had no clear answer: {exc}")
            return
        data = {
            "fingerprint": draft.fingerprint,
            "name": draft.name,
            "customer": customer,
        }
        self.store.links.put(self.client, LINK, order_id, created.id, data)
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "create_sale_order",
            f"{self.channel}:{order_id}",
            created.id,
            {
                "order": draft.name,
                "trigger": self.trigger,
                "lines": len(draft.lines),
                "total": str(draft.total),
                "excluded": list(draft.excluded),
                "refunded": list(draft.refunded),
            },
        )
        self.report.imported += 1
        self._resolve(order_id, f"imported as sale order {created.id}")


async def stokly_location_index(stokly: StoklyClient) -> dict[str, str]:
    """Active Stokly locations, name → id: how mapping files name them, and what Stokly needs."""
    return {
        loc.name: loc.locationId async for loc in stokly.iter_locations() if loc.status in (None, 0)
    }
