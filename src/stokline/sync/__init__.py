"""Use cases of the integration, one module per sync: plain Python that takes a mapping, the two
API clients and the state store, and returns a report. No Prefect here: flows call these."""

from stokline.sync.catalogue import CatalogueReport, sync_catalogue
from stokline.sync.clients import CountingPacer, api_calls, open_clients
from stokline.sync.orders import OrdersReport, stokly_location_index, sync_orders
from stokline.sync.stock import StockReport, changed_skus_since, sync_stock

__all__ = [
    "CatalogueReport",
    "CountingPacer",
    "OrdersReport",
    "StockReport",
    "api_calls",
    "changed_skus_since",
    "open_clients",
    "stokly_location_index",
    "sync_catalogue",
    "sync_orders",
    "sync_stock",
]
