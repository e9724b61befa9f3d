"""The SHOPLINE writes of a fulfilment pass: create and link, tracking updates, cancellations.

Every write here is followed at once by what makes it happen only once: the link (kind
``shipment``: SHOPLINE fulfillment id ↔ Stokly shipment id) and an audit row. A create or a
cancel that gets no clear answer is never simply sent again: the order's fulfillments are read
first, and one that appeared since is taken for the write that landed (`PushRetry` bounds the
tries within a run). `FulfilmentWrites` is a base of the pass (`stokline.sync.fulfilment.sync`),
which provides the settings, the report and the exception bookkeeping it calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stokline.connectors import ApiError, ConnectorError, is_transient
from stokline.mapping.translate import Untranslatable
from stokline.store.records import Link
from stokline.sync.fulfilment.translate import (
    FulfilmentRequest,
    find_fulfilment,
    tracking_info_list,
    tracking_key,
)
from stokline.sync.run import SyncRun

if TYPE_CHECKING:
    from stokline.config.models import FulfilmentSync
    from stokline.store.exceptions import ExceptionRecord
    from stokline.sync.fulfilment.report import FulfilmentReport

__all__ = [
    "ACTOR",
    "LINK",
    "Entry",
    "FulfilmentWrites",
    "PushRetry",
    "reduce_fulfillable",
    "shipment_source",
]

LINK = "shipment"
ACTOR = "stokline.sync.fulfilment"


@dataclass(frozen=True)
class PushRetry:
    """How often one SHOPLINE write is tried within a run, and the pauses between tries.

    Creates and cancels are not retried by the HTTP client (a 5xx or a lost answer may mean the
    write happened); the sync retries them itself, reading the order's fulfillments before each
    new try. What still fails stays for the next run.
    """

    attempts: int = 3
    delays: tuple[float, ...] = (2.0, 10.0)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("PushRetry.attempts must be at least 1")
        if any(d < 0 for d in self.delays):
            raise ValueError("PushRetry.delays must not be negative")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if not self.delays:
            return 0.0
        return self.delays[min(attempt, len(self.delays)) - 1]


@dataclass
class Entry:
    """One shipment to handle, with the SHOPLINE order it belongs to and its link if any."""

    shipment: dict[str, Any]
    order_id: str
    link: Link | None
    found: dict[str, Any] | None = field(default=None)  # a fulfillment recognised as its own

    @property
    def id(self) -> str:
        return str(self.shipment["shipmentId"])

    @property
    def dispatched(self) -> datetime | None:
        for key in ("dispatchedAt", "createdAt", "updatedAt"):
            value = _moment(self.shipment.get(key))
            if value is not None:
                return value
        return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def shipment_source(shipment: dict[str, Any]) -> dict[str, Any]:
    """What of a shipment reaches SHOPLINE: a change here is worth a look, nothing else is."""
    return {
        "status": shipment.get("status"),
        "numbers": [str(n) for n in shipment.get("trackingNumbers") or []],
        "carrier": shipment.get("carrier"),
        "url": shipment.get("trackingUrl"),
    }


class FulfilmentWrites(SyncRun):
    """The writes of a pass, a base of it; the pass provides what is declared below."""

    if TYPE_CHECKING:
        settings: FulfilmentSync
        retry: PushRetry
        report: FulfilmentReport

        def _raise(
            self,
            entry: Entry,
            order: dict[str, Any] | None,
            code: str,
            message: str,
            payload: dict[str, Any] | None = ...,
        ) -> ExceptionRecord | None: ...

        def _resolve(self, shipment_id: str, note: str) -> None: ...

        def _pending(self, entry: Entry, order: dict[str, Any] | None, why: str) -> None: ...

        def _defer(self, entry: Entry, order: dict[str, Any] | None, error: str) -> None: ...

        async def _fulfillments(self, order_id: str) -> list[dict[str, Any]] | None: ...

    def _change(self, row: dict[str, Any], outcome: str) -> None:
        self.report.changes.append({**row, "outcome": outcome})

    def _link_data(
        self, order: dict[str, Any], e: Entry, tracking: Iterable[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "order": str(order["id"]),
            "order_name": order.get("name"),
            "sale_order": e.shipment.get("saleOrderId"),
            "source": shipment_source(e.shipment),
            "tracking": [dict(t) for t in tracking],
            "cancelled": None,
        }

    def _remember(self, e: Entry, data: dict[str, Any]) -> None:
        if e.link is None:
            return
        e.link = Link(LINK, e.link.shopline_id, e.link.stokly_id, data)
        if not self.dry:
            self.store.links.put(self.client, LINK, e.link.shopline_id, e.id, data)

    def _recovered(
        self, order: dict[str, Any], e: Entry, fulfillment: dict[str, Any], how: str
    ) -> None:
        """Link a fulfillment SHOPLINE already has for the shipment; the tracking check follows."""
        fulfillment_id = str(fulfillment["id"])
        data = self._link_data(order, e, fulfillment.get("tracking_info_list") or [])
        # Its tracking is SHOPLINE's, not necessarily the shipment's: let the check compare.
        data["source"] = None
        e.link = Link(LINK, fulfillment_id, e.id, data)
        row = {
            "order": order.get("name"),
            "shopline_id": str(order["id"]),
            "shipment": e.id,
            "fulfillment": fulfillment.get("name") or fulfillment_id,
        }
        if self.dry:
            self.report.would_write.append({"action": "link existing fulfillment", **row})
            return
        self.store.links.put(self.client, LINK, fulfillment_id, e.id, data)
        self.report.recovered += 1
        self._change(row, f"{how}; linked")
        self._resolve(
            e.id, f"in SHOPLINE as fulfillment {fulfillment.get('name') or fulfillment_id}"
        )

    async def _reread(self, order_id: str) -> list[dict[str, Any]] | None:
        return await self._fulfillments(order_id)

    async def _create(
        self,
        order: dict[str, Any],
        by_id: dict[str, dict[str, Any]],
        taken: set[str],
        e: Entry,
        request: FulfilmentRequest,
    ) -> None:
        order_id = str(order["id"])
        last: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            try:
                created = await self.shopline.create_fulfillment(
                    order_id,
                    request.line_items,
                    request.tracking,
                    notify_customer=self.settings.notify_customer,
                )
            except ValueError as exc:  # a line id SHOPLINE's fulfil endpoint cannot take
                self._raise(e, order, "api_rejected", f"the fulfillment cannot be sent: {exc}")
                self._pending(e, order, str(exc))
                return
            except ConnectorError as exc:
                last = exc
            else:
                self._created(order, by_id, taken, e, request, created.model_dump(mode="json"))
                return
            # No clear yes: did it land anyway? Only a fulfillment that was not there before can
            # be the one just sent.
            current = await self._reread(order_id)
            if current is not None:
                before = set(by_id) | taken
                for by in ("tracking", "lines"):
                    found = find_fulfilment(self.mapping, e.shipment, order, current, before, by=by)
                    if found is not None:
                        self._created(order, by_id, taken, e, request, dict(found), landed=True)
                        return
            if isinstance(last, ApiError) and not is_transient(last):
                message = f"SHOPLINE refused the fulfillment: {last.api_message or last}"
                self._raise(e, order, "api_rejected", message, {"status": last.status})
                self._pending(e, order, message)
                return
            if current is None:
                break  # SHOPLINE cannot even be read: leave it for the next run
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        self._defer(
            e, order, f"fulfilling {order.get('name')} (shipment {e.id}) failed for now: {last}"
        )

    def _created(
        self,
        order: dict[str, Any],
        by_id: dict[str, dict[str, Any]],
        taken: set[str],
        e: Entry,
        request: FulfilmentRequest,
        fulfillment: dict[str, Any],
        *,
        landed: bool = False,
    ) -> None:
        fulfillment_id = str(fulfillment["id"])
        data = self._link_data(order, e, request.tracking)
        self.store.links.put(self.client, LINK, fulfillment_id, e.id, data)
        e.link = Link(LINK, fulfillment_id, e.id, data)
        by_id[fulfillment_id] = fulfillment
        taken.add(fulfillment_id)
        reduce_fulfillable(order, request)
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            "create_fulfillment",
            f"{order['id']}:{e.id}",
            fulfillment_id,
            {
                "order": order.get("name"),
                "trigger": self.trigger,
                "lines": request.line_items,
                "tracking": [t["tracking_number"] for t in request.tracking],
                "notes": list(request.notes),
                "confirmed_by_reread": landed,
            },
        )
        self.report.created += 1
        outcome = f"created {fulfillment.get('name') or fulfillment_id}"
        if landed:
            outcome += " (the answer was lost; found on re-reading)"
        self._change(request.summary(), outcome)
        self._resolve(
            e.id, f"in SHOPLINE as fulfillment {fulfillment.get('name') or fulfillment_id}"
        )

    async def _tracking(
        self, order: dict[str, Any], by_id: dict[str, dict[str, Any]], e: Entry
    ) -> None:
        assert e.link is not None
        fulfillment_id = e.link.shopline_id
        data = dict(e.link.data or {})
        current = by_id.get(fulfillment_id)
        row = {
            "order": order.get("name"),
            "shopline_id": str(order["id"]),
            "shipment": e.id,
            "fulfillment": (current or {}).get("name") or fulfillment_id,
        }
        if current is None or current.get("status") == "cancelled":
            gone = "not in SHOPLINE" if current is None else "cancelled in SHOPLINE"
            self._change(row, f"fulfillment {gone}; tracking left alone")
            self._remember(e, {**data, "source": shipment_source(e.shipment)})
            return
        try:
            wanted = tracking_info_list(self.mapping, e.shipment, order)
        except Untranslatable as exc:
            self._raise(e, order, exc.code, exc.message)
            return
        if tracking_key(wanted) == tracking_key(current.get("tracking_info_list") or []):
            self.report.unchanged += 1
            self._remember(e, {**data, "source": shipment_source(e.shipment), "tracking": wanted})
            return
        row["tracking"] = ", ".join(t["tracking_number"] for t in wanted)
        if self.dry:
            self.report.would_write.append({"action": "update tracking", **row})
            return
        try:
            await self.shopline.update_fulfillment_tracking(
                str(order["id"]),
                fulfillment_id,
                wanted,
                notify_customer=self.settings.notify_customer,
            )
        except ConnectorError as exc:
            if is_transient(exc):
                self._defer(e, order, f"updating the tracking of {order.get('name')}: {exc}")
            else:
                message = f"SHOPLINE refused the tracking update: {exc}"
                self._raise(e, order, "api_rejected", message)
            return
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            "update_fulfillment_tracking",
            f"{order['id']}:{e.id}",
            fulfillment_id,
            {
                "order": order.get("name"),
                "trigger": self.trigger,
                "from": [t.get("tracking_number") for t in current.get("tracking_info_list") or []],
                "to": [t["tracking_number"] for t in wanted],
            },
        )
        self.report.tracking_updated += 1
        self._change(row, "tracking updated")
        self._remember(e, {**data, "source": shipment_source(e.shipment), "tracking": wanted})
        self._resolve(e.id, "tracking updated in SHOPLINE")

    async def _cancelled(
        self, order: dict[str, Any], by_id: dict[str, dict[str, Any]], e: Entry
    ) -> None:
        assert e.link is not None
        fulfillment_id = e.link.shopline_id
        data = dict(e.link.data or {})
        current = by_id.get(fulfillment_id)
        name = (current or {}).get("name") or fulfillment_id
        row = {
            "order": order.get("name"),
            "shopline_id": str(order["id"]),
            "shipment": e.id,
            "fulfillment": name,
        }
        if current is None or current.get("status") == "cancelled":
            self._change(row, "shipment cancelled; the fulfillment is already gone in SHOPLINE")
            self._remember(e, {**data, "cancelled": "applied"})
            self._resolve(e.id, "the shipment was cancelled")
            return
        if self.settings.on_shipment_cancelled == "exception":
            message = (
                f"shipment {e.id} was cancelled in Stokly after it reached SHOPLINE as fulfillment"
                f" {name} of {order.get('name')}; on_shipment_cancelled is 'exception': cancel the"
                " fulfillment in SHOPLINE if the parcel is not coming, then resolve"
            )
            self._raise(e, order, "order_changed", message)
            self._change(row, "shipment cancelled: reported")
            self._remember(e, {**data, "cancelled": "reported"})
            return
        if self.dry:
            self.report.would_write.append({"action": "cancel fulfillment", **row})
            return
        last: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self.shopline.cancel_fulfillment(str(order["id"]), fulfillment_id)
            except ConnectorError as exc:
                last = exc
            else:
                break
            current_list = await self._reread(str(order["id"]))
            if current_list is not None and any(
                str(f["id"]) == fulfillment_id and f.get("status") == "cancelled"
                for f in current_list
            ):
                break  # the cancel landed; its answer did not
            if isinstance(last, ApiError) and not is_transient(last):
                message = (
                    f"SHOPLINE refused to cancel fulfillment {name}: {last.api_message or last}"
                )
                self._raise(e, order, "api_rejected", message, {"status": last.status})
                return
            if current_list is None:
                self._defer(e, order, f"cancelling {name} of {order.get('name')}: {last}")
                return
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        else:
            self._defer(e, order, f"cancelling {name} of {order.get('name')}: {last}")
            return
        self.store.audit.record(
            self.client,
            ACTOR,
            "shopline",
            "cancel_fulfillment",
            f"{order['id']}:{e.id}",
            fulfillment_id,
            {"order": order.get("name"), "trigger": self.trigger},
        )
        self.report.cancelled += 1
        self._change(row, "shipment cancelled: fulfillment cancelled")
        self._remember(e, {**data, "cancelled": "applied"})
        self._resolve(e.id, "the shipment was cancelled")


def reduce_fulfillable(order: dict[str, Any], request: FulfilmentRequest) -> None:
    """Lower the order's fulfillable quantities as SHOPLINE just did, for its next shipments."""
    lines = {str(li.get("id")): li for li in order.get("line_items") or []}
    for line in request.lines:
        item = lines.get(line.line_item_id)
        if item is not None:
            left = item.get("fulfillable_quantity")
            left = int(item.get("quantity") or 0) if left is None else int(left)
            item["fulfillable_quantity"] = max(left - line.quantity, 0)
