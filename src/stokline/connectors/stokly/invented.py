"""Invented [I] Stokly contracts — every path and field here is an assumption to confirm with Stokly.

No public Stokly client shows these resources, yet the syncs need them. They live in this one
module (paths in :data:`INVENTED_PATHS`, records, and the :class:`InventedContracts` methods that
``StoklyClient`` inherits) so that renaming a path or a field when Stokly answers touches one file
here and one in the sandbox (``stokline.sandbox.stokly.invented``), which serves the same shapes.
All follow Stokly's confirmed conventions: bearer auth, ``{"message"}`` errors, the list envelope
``{"metadata":{"count"},"data"}`` with ``page``/``size``/``filter``, ``{"data":{"id"}}`` on create.

Assumptions to confirm with Stokly:

1. **Stock allocated to open orders** — ``GET /v0/allocations``: ``itemId, locationId, allocated``.
   Stokly shows no "available" figure; sellable stock needs this.
2. **Shipments with tracking** — ``POST/GET /v2/saleorders/{id}/shipments``,
   ``GET /v0/shipments`` (all, filterable, e.g. ``[updatedAt]>={…}``), ``PATCH /v0/shipments/{id}``
   (tracking change or ``status: cancelled``). Record: ``shipmentId, saleOrderId,
   sourceReferenceId, carrier, service, trackingNumbers[], trackingUrl, status, items[{lineId,
   itemId, itemSku, quantity}], dispatchedAt, updatedAt``.
3. **Refunds / credit notes per sale order** — ``POST/GET /v2/saleorders/{id}/refunds``,
   ``GET /v0/refunds``; ``sourceReferenceId`` (the channel's refund id) is unique per order (409).
4. **Payments with the gateway transaction id** — ``POST/GET /v2/saleorders/{id}/payments``,
   ``GET /v0/payments``; (``transactionId``, ``kind``) is unique (409).
5. **Ledger journals** — ``POST/GET /v0/journals``: ``{reference, date, currency, description,
   lines[{account, debit, credit}]}``, balanced to the penny (422), ``reference`` unique (409).
6. **Change feed** — ``GET /v0/events?after=<cursor>&size=&type=``: events oldest first
   ``{cursor, eventId, type, occurredAt, data}``; ``metadata`` carries ``cursor`` (pass it back as
   ``after``) and ``hasMore``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from .._http import OnInvalid, segment
from .._models import ApiModel, Money
from ..errors import PaginationLoopError
from .filters import Filter
from .models import Created

if TYPE_CHECKING:
    from .._http import HttpCore

__all__ = [
    "INVENTED_PATHS",
    "Allocation",
    "Event",
    "EventPage",
    "InventedContracts",
    "Journal",
    "JournalLine",
    "Payment",
    "Refund",
    "Shipment",
]

INVENTED_PATHS = {
    "allocations": "/v0/allocations",
    "order_shipments": "/v2/saleorders/{sale_order_id}/shipments",
    "shipments": "/v0/shipments",
    "shipment": "/v0/shipments/{shipment_id}",
    "order_refunds": "/v2/saleorders/{sale_order_id}/refunds",
    "refunds": "/v0/refunds",
    "order_payments": "/v2/saleorders/{sale_order_id}/payments",
    "payments": "/v0/payments",
    "journals": "/v0/journals",
    "journal": "/v0/journals/{journal_id}",
    "events": "/v0/events",
}
"""Every invented path, by purpose (assumptions to confirm with Stokly)."""

MAX_EMPTY_ANSWERS = 3
"""Times the change feed may come back empty, cursor unmoved, while it says more events follow."""


class Allocation(ApiModel):
    """[I] Quantity of an item reserved by open sale orders at a location (None: no location)."""

    itemId: str
    locationId: str | None = None
    allocated: Money
    itemSku: str | None = None


class ShipmentLine(ApiModel):
    """[I] A dispatched quantity of one sale order line."""

    lineId: str
    quantity: int
    itemId: str | None = None
    itemSku: str | None = None


class Shipment(ApiModel):
    """[I] A dispatch with tracking."""

    shipmentId: str
    saleOrderId: str
    sourceId: str | None = None
    sourceReferenceId: str | None = None
    locationId: str | None = None
    carrier: str | None = None
    service: str | None = None
    trackingNumbers: list[str] = Field(default_factory=list)
    trackingUrl: str | None = None
    status: str
    items: list[ShipmentLine] = Field(default_factory=list)
    dispatchedAt: datetime | None = None
    updatedAt: datetime | None = None


class Refund(ApiModel):
    """[I] A refund (credit note) on a sale order."""

    refundId: str
    saleOrderId: str
    sourceReferenceId: str | None = None
    creditNoteNumber: str | None = None
    reason: str | None = None
    currency: str | None = None
    amount: Money
    shippingAmount: Money | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)
    payments: list[dict[str, Any]] = Field(default_factory=list)
    createdAt: datetime | None = None


class Payment(ApiModel):
    """[I] A payment or refund record carrying the gateway's transaction id."""

    paymentId: str
    saleOrderId: str
    kind: str
    method: int | None = None
    gateway: str | None = None
    transactionId: str
    amount: Money
    fee: Money | None = None
    currency: str | None = None
    paidAt: datetime | None = None


class JournalLine(ApiModel):
    """[I] One ledger line: exactly one of debit or credit above zero."""

    account: str
    debit: Money = Decimal(0)
    credit: Money = Decimal(0)
    description: str | None = None


class Journal(ApiModel):
    """[I] A posted ledger journal."""

    journalId: str
    reference: str
    date: str
    currency: str
    description: str | None = None
    status: str | None = None
    total: Money | None = None
    lines: list[JournalLine] = Field(default_factory=list)


class Event(ApiModel):
    """[I] One change-feed event."""

    cursor: str
    type: str
    eventId: str | None = None
    occurredAt: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventPage(ApiModel):
    """[I] A page of the change feed: pass ``cursor`` back as ``after``; ``has_more`` to go on."""

    events: list[Event]
    cursor: str
    has_more: bool


class InventedContracts:
    """The [I] endpoints, mixed into ``StoklyClient`` (which provides the request plumbing)."""

    if TYPE_CHECKING:
        _core: HttpCore
        _page_size: int

        def _paginate(
            self,
            path: str,
            model: type[Any],
            *,
            filter: Filter | None = ...,
            on_invalid: OnInvalid | None = ...,
        ) -> AsyncIterator[Any]: ...

        async def _create(self, path: str, body: Any, *, idempotent: bool = ...) -> Created: ...

        async def _get(self, path: str, model: type[Any]) -> Any: ...

    # -- allocations --------------------------------------------------------------------------

    def iter_allocations(
        self, filter: Filter | None = None, *, on_invalid: OnInvalid | None = None
    ) -> AsyncIterator[Allocation]:
        """[I] Stock allocated to open sale orders (``GET /v0/allocations``).

        ``on_invalid`` receives each malformed record instead of its page failing.
        """
        return self._paginate(
            INVENTED_PATHS["allocations"], Allocation, filter=filter, on_invalid=on_invalid
        )

    # -- shipments ----------------------------------------------------------------------------

    def iter_sale_order_shipments(self, sale_order_id: str) -> AsyncIterator[Shipment]:
        """[I] Shipments of one sale order (``GET /v2/saleorders/{id}/shipments``)."""
        path = INVENTED_PATHS["order_shipments"].format(sale_order_id=segment(sale_order_id))
        return self._paginate(path, Shipment)

    def iter_shipments(
        self, filter: Filter | None = None, *, on_invalid: OnInvalid | None = None
    ) -> AsyncIterator[Shipment]:
        """[I] All shipments, e.g. ``gte("updatedAt", since)`` (``GET /v0/shipments``).

        ``on_invalid`` receives each malformed shipment instead of its page failing.
        """
        return self._paginate(
            INVENTED_PATHS["shipments"], Shipment, filter=filter, on_invalid=on_invalid
        )

    async def get_shipment(self, shipment_id: str) -> Shipment:
        """[I] One shipment (``GET /v0/shipments/{id}``)."""
        return await self._get(
            INVENTED_PATHS["shipment"].format(shipment_id=segment(shipment_id)), Shipment
        )

    async def create_shipment(self, sale_order_id: str, shipment: Mapping[str, Any]) -> Created:
        """[I] Dispatch lines with tracking (``POST /v2/saleorders/{id}/shipments``)."""
        path = INVENTED_PATHS["order_shipments"].format(sale_order_id=segment(sale_order_id))
        return await self._create(path, dict(shipment))

    async def update_shipment(self, shipment_id: str, changes: Mapping[str, Any]) -> Created:
        """[I] Change tracking or cancel (``PATCH /v0/shipments/{id}``)."""
        path = INVENTED_PATHS["shipment"].format(shipment_id=segment(shipment_id))
        data, response = await self._core.request_json(
            "PATCH", path, json_body=dict(changes), idempotent=True
        )
        return self._core.model(Created, self._core.field(data, "data", dict, response), response)

    # -- refunds ------------------------------------------------------------------------------

    async def create_refund(self, sale_order_id: str, refund: Mapping[str, Any]) -> Created:
        """[I] Record a refund / credit note (``POST /v2/saleorders/{id}/refunds``).

        Give it ``sourceReferenceId`` (the SHOPLINE refund id): a repeat is then a 409, not a
        second credit note.
        """
        path = INVENTED_PATHS["order_refunds"].format(sale_order_id=segment(sale_order_id))
        return await self._create(path, dict(refund))

    def iter_sale_order_refunds(self, sale_order_id: str) -> AsyncIterator[Refund]:
        """[I] Refunds of one sale order (``GET /v2/saleorders/{id}/refunds``)."""
        path = INVENTED_PATHS["order_refunds"].format(sale_order_id=segment(sale_order_id))
        return self._paginate(path, Refund)

    def iter_refunds(self, filter: Filter | None = None) -> AsyncIterator[Refund]:
        """[I] All refunds (``GET /v0/refunds``)."""
        return self._paginate(INVENTED_PATHS["refunds"], Refund, filter=filter)

    # -- payments -----------------------------------------------------------------------------

    async def create_payment(self, sale_order_id: str, payment: Mapping[str, Any]) -> Created:
        """[I] Record a gateway payment (``POST /v2/saleorders/{id}/payments``)."""
        path = INVENTED_PATHS["order_payments"].format(sale_order_id=segment(sale_order_id))
        return await self._create(path, dict(payment))

    def iter_sale_order_payments(self, sale_order_id: str) -> AsyncIterator[Payment]:
        """[I] Payments of one sale order (``GET /v2/saleorders/{id}/payments``)."""
        path = INVENTED_PATHS["order_payments"].format(sale_order_id=segment(sale_order_id))
        return self._paginate(path, Payment)

    def iter_payments(self, filter: Filter | None = None) -> AsyncIterator[Payment]:
        """[I] All payments (``GET /v0/payments``)."""
        return self._paginate(INVENTED_PATHS["payments"], Payment, filter=filter)

    # -- journals -----------------------------------------------------------------------------

    async def create_journal(self, journal: Mapping[str, Any]) -> Created:
        """[I] Post a balanced ledger journal (``POST /v0/journals``); ``reference`` is unique."""
        return await self._create(INVENTED_PATHS["journals"], dict(journal))

    def iter_journals(self, filter: Filter | None = None) -> AsyncIterator[Journal]:
        """[I] Posted journals, e.g. ``eq("reference", ref)`` (``GET /v0/journals``)."""
        return self._paginate(INVENTED_PATHS["journals"], Journal, filter=filter)

    async def get_journal(self, journal_id: str) -> Journal:
        """[I] One journal (``GET /v0/journals/{id}``)."""
        return await self._get(
            INVENTED_PATHS["journal"].format(journal_id=segment(journal_id)), Journal
        )

    # -- change feed --------------------------------------------------------------------------

    async def get_events(
        self, after: str = "0", *, size: int | None = None, types: Iterable[str] | None = None
    ) -> EventPage:
        """[I] One page of the change feed after ``after`` (``GET /v0/events``).

        The cursor is returned rather than iterated past, so the caller can store it only
        after the page's events are handled. A page without events whose cursor did not move
        yet says more follow is asked for again, then raises
        :class:`~stokline.connectors.errors.PaginationLoopError`.
        """
        params = {
            "after": after,
            "size": size or self._page_size,
            "type": ",".join(types) if types else None,
        }
        empty_answers = 0
        while True:
            data, response = await self._core.request_json(
                "GET", INVENTED_PATHS["events"], params=params
            )
            rows = self._core.field(data, "data", list, response)
            metadata = self._core.field(data, "metadata", dict, response)
            cursor = self._core.field(metadata, "cursor", str, response, where="metadata")
            has_more = self._core.field(metadata, "hasMore", bool, response, where="metadata")
            if rows or not has_more or cursor != after:
                break
            # "More follow", yet nothing came and the cursor did not move: asked again, then an
            # error, so that no reader of the feed spins on it or takes it for the end.
            empty_answers += 1
            if empty_answers >= MAX_EMPTY_ANSWERS:
                shown = self._core.redact(after)[:40]
                raise self._core.masked(
                    PaginationLoopError(
                        f"Stokly GET {response.request.url.path}: the change feed came back empty"
                        f" {empty_answers} times after cursor {shown!r} though it says more"
                        " events follow; stopping",
                        service="Stokly",
                    )
                )
            await self._core.clock.sleep(self._core.retry.backoff(empty_answers))
        events = [
            self._core.model(Event, row, response, where=f"data[{i}]") for i, row in enumerate(rows)
        ]
        return EventPage(events=events, cursor=cursor, has_more=has_more)
