"""The Stokly API client, its filter builder, models and the invented [I] contracts."""

from . import filters
from .auth import AccessToken, StoklyTokenAuth, grant_signature
from .client import STOKLY_RATE_LIMIT, StoklyClient
from .filters import Filter
from .invented import (
    INVENTED_PATHS,
    Allocation,
    Event,
    EventPage,
    Journal,
    JournalLine,
    Payment,
    Refund,
    Shipment,
)
from .models import (
    Bin,
    Channel,
    Created,
    Customer,
    InventoryRecord,
    Invoice,
    Item,
    Listing,
    Location,
    SaleOrder,
    SaleOrderItem,
)

__all__ = [
    "INVENTED_PATHS",
    "STOKLY_RATE_LIMIT",
    "AccessToken",
    "Allocation",
    "Bin",
    "Channel",
    "Created",
    "Customer",
    "Event",
    "EventPage",
    "Filter",
    "InventoryRecord",
    "Invoice",
    "Item",
    "Journal",
    "JournalLine",
    "Listing",
    "Location",
    "Payment",
    "Refund",
    "SaleOrder",
    "SaleOrderItem",
    "Shipment",
    "StoklyClient",
    "StoklyTokenAuth",
    "filters",
    "grant_signature",
]
