"""What becomes of an imported order that SHOPLINE later cancels or edits.

An order linked to a Stokly sale order is compared with what was imported: a cancellation removes
the sale order while none of its lines has been worked on (``on_cancelled: apply``), else it is
reported as an ``order_changed`` exception for a person; an edit is compared by its fingerprint
(lines, delivery, notes), and only a change of the notes can be applied (``on_edited: apply``) —
Stokly's API cannot change the lines or the delivery of an existing sale order, so those are
reported. A refund after import (seen as a change of the fingerprint's ``refunds``) is checked
against the sale order's lines in Stokly: units it has yet to ship that SHOPLINE no longer sells
are never shipped silently — Stokly's API cannot change or cancel a sale order's lines, so they
are an ``order_changed`` exception naming the units to cancel, except that a refund of everything
before any line was worked on removes the sale order (as ``on_cancelled: apply`` does); a refund
of what was already dispatched is a return, the payments sync's credit note, and changes nothing
here. Each outcome is a row of ``report.changes`` and is remembered on the link, so it is
handled once.
"""

from __future__ import annotations

from typing import Any

from stokline.connectors import ConnectorError, is_transient
from stokline.connectors.stokly.models import SaleOrder, SaleOrderItem
from stokline.mapping.translate import SkuMatcher, Untranslatable, render_sale_order_fields
from stokline.store.records import Link
from stokline.sync.orders.run import ACTOR, LINK, OrdersRun
from stokline.sync.orders.translate import (
    NO_REFUNDS,
    is_cancelled,
    order_fingerprint,
    refunded_but_dispatched,
    refunded_still_to_ship,
    shippable_quantities,
)

__all__ = ["OrderChanges"]

# Stokly line statuses under which a sale order can still be removed without undoing work.
_UNTOUCHED = frozenset({"unprocessed", "cancelled"})


class OrderChanges(OrdersRun):
    """Cancellations and edits of orders already imported, checked as a run meets them."""

    async def _check_change(
        self, order: dict[str, Any], link: Link, sale: SaleOrder | None
    ) -> None:
        data = dict(link.data or {})
        if is_cancelled(order):
            if data.get("cancelled"):
                self.report.duplicates += 1
                return
            await self._cancel(order, link, data, sale)
            return
        old = data.get("fingerprint") or {}
        new = order_fingerprint(order)
        parts = [k for k in ("lines", "delivery", "notes") if old.get(k) and old[k] != new[k]]
        # A link recorded before refunds were fingerprinted was imported with nothing refunded.
        refunded = bool(old) and old.get("refunds", NO_REFUNDS) != new["refunds"]
        if refunded:
            if not await self._refunded(order, link, data, new):
                return  # held back by a transient failure: the next run looks again
            if not parts:
                return
        if not parts:
            self.report.duplicates += 1
            if not old:  # linked without a fingerprint (recorded by hand): remember it from now
                self._remember(link, {**data, "fingerprint": new})
            return
        await self._edited(order, link, data, new, parts)

    def _remember(self, link: Link, data: dict[str, Any]) -> None:
        if not self.dry:
            self.store.links.put(self.client, LINK, link.shopline_id, link.stokly_id, data)

    def _change_row(self, order: dict[str, Any], link: Link, change: str, outcome: str) -> None:
        self.report.changes.append(
            {
                "order": order.get("name"),
                "shopline_id": str(order["id"]),
                "sale_order": link.stokly_id,
                "change": change,
                "outcome": outcome,
            }
        )

    async def _cancel(
        self, order: dict[str, Any], link: Link, data: dict[str, Any], sale: SaleOrder | None
    ) -> None:
        reason = order.get("cancel_reason") or "no reason given"
        if self.settings.on_cancelled == "exception":
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE ({reason}) after it was imported"
                    f" as Stokly sale order {link.stokly_id}; on_cancelled is 'exception'",
                ),
            )
            self._change_row(order, link, "cancelled", "reported")
            self._remember(link, {**data, "cancelled": "reported"})
            return
        if sale is not None and sale.stage == "removed":
            self._change_row(order, link, "cancelled", "already removed in Stokly")
            self._remember(link, {**data, "cancelled": "applied"})
            return
        started = sorted(set(sale.itemStatuses) - _UNTOUCHED) if sale is not None else []
        if started:
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE ({reason}) but Stokly sale order"
                    f" {link.stokly_id} is already {', '.join(started)}: stop or return the goods",
                ),
            )
            self._change_row(order, link, "cancelled", "reported: fulfilment under way")
            self._remember(link, {**data, "cancelled": "reported"})
            return
        if self.dry:
            self._change_row(order, link, "cancelled", "would remove the sale order")
            return
        try:
            await self.stokly.patch_sale_order(link.stokly_id, {"stage": "removed"})
        except ConnectorError as exc:
            if is_transient(exc):
                self.deferred[str(order["id"])] = order
                self.report.add_error(f"removing the sale order of {order.get('name')}: {exc}")
                return
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was cancelled in SHOPLINE; Stokly refused to remove sale"
                    f" order {link.stokly_id}: {exc}",
                ),
            )
            self._remember(link, {**data, "cancelled": "reported"})
            return
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "remove_sale_order",
            f"{self.channel}:{order['id']}",
            link.stokly_id,
            {"order": order.get("name"), "reason": reason, "trigger": self.trigger},
        )
        self._change_row(order, link, "cancelled", "sale order removed")
        self._remember(link, {**data, "cancelled": "applied"})

    async def _edited(
        self,
        order: dict[str, Any],
        link: Link,
        data: dict[str, Any],
        fingerprint: dict[str, str],
        parts: list[str],
    ) -> None:
        what = " and ".join(
            {"lines": "its lines", "delivery": "its delivery", "notes": "its notes"}[p]
            for p in parts
        )
        applied = False
        if self.settings.on_edited == "apply" and parts == ["notes"]:
            try:
                fields = render_sale_order_fields(self.mapping, order, order.get("customer"))
            except Untranslatable as exc:
                self._raise(order, exc)
                return
            if not self.dry:
                try:
                    await self.stokly.patch_sale_order(link.stokly_id, fields)
                except ConnectorError as exc:
                    if is_transient(exc):
                        self.deferred[str(order["id"])] = order
                        return
                    parts = [*parts, f"refused: {exc}"]
                else:
                    applied = True
                    self.store.audit.record(
                        self.client,
                        ACTOR,
                        "stokly",
                        "update_sale_order",
                        f"{self.channel}:{order['id']}",
                        link.stokly_id,
                        {"order": order.get("name"), "fields": sorted(fields)},
                    )
            else:
                applied = True
        if applied:
            outcome = "would apply" if self.dry else "applied"
            self._change_row(order, link, f"edited ({what})", outcome)
        else:
            hint = (
                "Stokly's API cannot change the lines or the delivery of an existing sale order"
                if self.settings.on_edited == "apply"
                else "on_edited is 'exception'"
            )
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was edited in SHOPLINE ({what}) after it was imported as"
                    f" Stokly sale order {link.stokly_id}; {hint}",
                ),
            )
            self._change_row(order, link, f"edited ({what})", "reported")
        self._remember(link, {**data, "fingerprint": fingerprint})

    async def _refunded(
        self, order: dict[str, Any], link: Link, data: dict[str, Any], fingerprint: dict[str, str]
    ) -> bool:
        """A refund after import; False when it must be looked at again by the next run."""
        name = order.get("name")
        try:
            lines = await self.stokly.get_sale_order_items(link.stokly_id)
        except ConnectorError as exc:
            if is_transient(exc):
                self.deferred[str(order["id"])] = order
                self.report.add_error(f"reading the lines of {name} in Stokly failed: {exc}")
                return False
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{name} was edited in SHOPLINE (refunded) after it was imported as Stokly"
                    f" sale order {link.stokly_id}, whose lines could not be read ({exc}): check"
                    " that no refunded unit ships, then resolve",
                ),
            )
            self._change_row(order, link, "refunded", "reported")
            self._remember(link, {**data, "fingerprint": fingerprint})
            return True
        live = [li for li in lines if not li.parentId and li.status != "cancelled"]
        matcher = SkuMatcher(self.mapping, [li.itemSku for li in live if li.itemSku])

        def stokly_sku(sku: str) -> str | None:
            try:
                return matcher.match(sku)
            except Untranslatable:
                return None

        on_order = [(li.itemSku or "", int(li.quantity), _dispatched(li)) for li in live]
        stop = refunded_still_to_ship(order, on_order, stokly_sku)
        gone = refunded_but_dispatched(order, on_order, stokly_sku)
        data = {**data, "fingerprint": fingerprint}
        if gone:
            return self._refunded_and_shipped(order, link, data, stop, gone)
        if not stop:
            self._change_row(order, link, "refunded", "nothing refunded is left to ship")
            self._remember(link, data)
            return True
        kept = [
            n
            for line_id, n in shippable_quantities(order).items()
            if not self.never_sync(_sku_of(order, line_id))
        ]
        untouched = all((li.status or "unprocessed") in _UNTOUCHED for li in live)
        if not any(kept) and untouched and self.settings.on_cancelled == "apply":
            return await self._remove_refunded(order, link, data)
        units = ", ".join(f"{sku} x{n}" for sku, n in sorted(stop.items()))
        self._raise(
            order,
            Untranslatable(
                "order_changed",
                f"{name} was edited in SHOPLINE (refunded: {units} still to ship) after it was"
                f" imported as Stokly sale order {link.stokly_id}; Stokly's API cannot change the"
                " lines of a sale order: cancel these units in Stokly before they are picked (or"
                " stop the parcel), then resolve",
            ),
            {"refunded": stop},
        )
        self._change_row(order, link, f"refunded ({units})", "reported")
        self._remember(link, data)
        return True

    def _refunded_and_shipped(
        self,
        order: dict[str, Any],
        link: Link,
        data: dict[str, Any],
        stop: dict[str, int],
        gone: dict[str, int],
    ) -> bool:
        """Units refunded as not shipped that Stokly dispatched anyway (the refund landed while
        the parcel was packed): never silent, an ``order_changed`` for a person, naming them
        and any refunded units still to ship."""
        name = order.get("name")
        shipped = ", ".join(f"{sku} x{n}" for sku, n in sorted(gone.items()))
        message = (
            f"{name} was refunded in SHOPLINE as not shipped ({shipped}) but Stokly dispatched"
            f" those units (sale order {link.stokly_id}): the buyer has both the goods and the"
            " refund; stop the parcel or arrange its return (or charge the buyer)"
        )
        if stop:
            waiting = ", ".join(f"{sku} x{n}" for sku, n in sorted(stop.items()))
            message += f"; also cancel {waiting} in Stokly before they are picked"
        named = dict(stop)
        for sku, n in gone.items():
            named[sku] = named.get(sku, 0) + n
        self._raise(
            order, Untranslatable("order_changed", message + ", then resolve"), {"refunded": named}
        )
        self._change_row(order, link, f"refunded after dispatch ({shipped})", "reported")
        self._remember(link, data)
        return True

    async def _remove_refunded(
        self, order: dict[str, Any], link: Link, data: dict[str, Any]
    ) -> bool:
        """Everything refunded before any line was worked on: the sale order is removed."""
        if self.dry:
            self._change_row(order, link, "refunded in full", "would remove the sale order")
            return True
        try:
            await self.stokly.patch_sale_order(link.stokly_id, {"stage": "removed"})
        except ConnectorError as exc:
            if is_transient(exc):
                self.deferred[str(order["id"])] = order
                self.report.add_error(f"removing the sale order of {order.get('name')}: {exc}")
                return False
            self._raise(
                order,
                Untranslatable(
                    "order_changed",
                    f"{order.get('name')} was edited in SHOPLINE (refunded in full) after it was"
                    f" imported; Stokly refused to remove sale order {link.stokly_id}: {exc}."
                    " Remove it by hand before it is picked, then resolve",
                ),
            )
            self._change_row(order, link, "refunded in full", "reported")
            self._remember(link, data)
            return True
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "remove_sale_order",
            f"{self.channel}:{order['id']}",
            link.stokly_id,
            {"order": order.get("name"), "reason": "refunded in full", "trigger": self.trigger},
        )
        self._change_row(order, link, "refunded in full", "sale order removed")
        self._remember(link, {**data, "cancelled": "applied"})
        return True


def _dispatched(line: SaleOrderItem) -> int:
    """Units of a Stokly line already dispatched: its ``quantityDispatched`` when Stokly gives it
    ([I]: the sandbox's field), else all of them once the line's status says dispatched."""
    dispatched = (line.model_extra or {}).get("quantityDispatched")
    if dispatched is not None:
        return int(dispatched)
    return int(line.quantity) if line.status == "dispatched" else 0


def _sku_of(order: dict[str, Any], line_id: str) -> str:
    for li in order.get("line_items") or []:
        if str(li.get("id")) == line_id:
            return str(li.get("sku") or "")
    return ""
