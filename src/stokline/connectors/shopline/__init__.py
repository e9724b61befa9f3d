"""The SHOPLINE Admin REST API client and its models."""

from .client import DEFAULT_API_VERSION, SHOPLINE_RATE_LIMIT, ShoplineClient
from .models import (
    Customer,
    Fulfillment,
    FulfillmentLineItem,
    InventoryLevel,
    Location,
    Order,
    Product,
    Refund,
    TrackingInfo,
    Transaction,
    Variant,
    Webhook,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "SHOPLINE_RATE_LIMIT",
    "Customer",
    "Fulfillment",
    "FulfillmentLineItem",
    "InventoryLevel",
    "Location",
    "Order",
    "Product",
    "Refund",
    "ShoplineClient",
    "TrackingInfo",
    "Transaction",
    "Variant",
    "Webhook",
]
