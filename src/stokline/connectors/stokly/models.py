"""Typed Stokly records (the fields the syncs read; all others are kept in ``model_extra``).

Ids are strings (UUIDs); money and quantities are :class:`~decimal.Decimal` — Stokly sends JSON
numbers, which the client decodes straight to Decimal, never through float. Quantities are
Decimal too because Stokly items can be stocked in fractional units of measure.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from .._models import ApiModel, Money

__all__ = [
    "Bin",
    "Channel",
    "Created",
    "Customer",
    "InventoryRecord",
    "Invoice",
    "Item",
    "Listing",
    "Location",
    "SaleOrder",
    "SaleOrderItem",
]

UNASSIGNED_BIN = "UNASSIGNED"
"""``binId`` of the location-level inventory row."""


class Created(ApiModel):
    """What a create returns: ``{"data": {"id": …}}`` (sometimes ``ids`` for several)."""

    id: str
    ids: list[str] = Field(default_factory=list)


class Price(ApiModel):
    """``{amount, currency}``."""

    amount: Money
    currency: str | None = None


class Item(ApiModel):
    """A Stokly item (the product master). ``status`` 0 active, 1 deleted."""

    itemId: str
    sku: str
    name: str | None = None
    format: int | None = None
    status: int | None = None
    barcodes: list[str] = Field(default_factory=list)
    description: str | None = None
    salePrice: Price | None = None
    tags: list[str] = Field(default_factory=list)
    updatedAt: datetime | None = None

    @property
    def active(self) -> bool:
        """Not deleted."""
        return self.status != 1


class Location(ApiModel):
    """A stock location. ``status`` 0 active."""

    locationId: str
    name: str
    status: int | None = None


class Bin(ApiModel):
    """A bin inside a location."""

    binId: str
    name: str | None = None
    locationId: str | None = None
    default: bool | int | None = None


class InventoryRecord(ApiModel):
    """Stock of one item at one location and bin (``binId`` UNASSIGNED: location level)."""

    itemId: str
    locationId: str
    binId: str | None = None
    itemSku: str | None = None
    locationName: str | None = None
    onHand: Money
    quarantined: Money = Decimal(0)
    onOrder: Money | None = None


class Channel(ApiModel):
    """A sales channel (type 7 is SHOPLINE)."""

    channelId: str
    name: str | None = None
    type: int | None = None
    status: int | None = None


class Listing(ApiModel):
    """An item listed on a channel; ``referenceId`` is the remote product/variant id."""

    listingId: str
    channelId: str | None = None
    itemId: str
    referenceId: str | None = None
    sku: str | None = None


class CustomerName(ApiModel):
    """``{forename, surname}``."""

    forename: str | None = None
    surname: str | None = None


class Customer(ApiModel):
    """A Stokly customer (keyed by e-mail in practice)."""

    customerId: str
    email: str | None = None
    phone: str | None = None
    fullName: str | None = None
    name: CustomerName | None = None


class SaleOrder(ApiModel):
    """A sale order as read back (shipping flattened into ``shipping*`` fields)."""

    saleOrderId: str
    niceId: int | str | None = None
    stage: str | None = None
    sourceId: str | None = None
    sourceReferenceId: str | None = None
    customerReference: str | None = None
    currency: str | None = None
    createdAt: datetime | None = None
    itemStatuses: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    carrierReference: str | None = None


class SaleOrderItem(ApiModel):
    """A sale order line; ``referenceId`` is the itemId."""

    lineId: str
    referenceId: str | None = None
    itemSku: str | None = None
    itemName: str | None = None
    quantity: Money
    status: str | None = None
    parentId: str | None = None
    displayPrice: Money | None = None
    displayTax: Money | None = None


class Invoice(ApiModel):
    """A sale invoice."""

    saleInvoiceId: str
    invoiceNumber: str | None = None
    niceId: int | str | None = None
    saleOrderId: str | None = None
    issueDate: datetime | None = None
    dueDate: datetime | None = None
    currency: str | None = None
    status: str | None = None
    total: Money | None = None
    payments: list[dict[str, Any]] = Field(default_factory=list)
