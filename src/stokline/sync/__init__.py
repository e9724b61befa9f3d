"""Use cases of the integration, one module per sync: plain Python that takes a mapping, the two
API clients and the state store, and returns a report. No Prefect here: flows call these."""

from stokline.sync.clients import CountingPacer, api_calls, open_clients
from stokline.sync.orders import OrdersReport, stokly_location_index, sync_orders

__all__ = [
    "CountingPacer",
    "OrdersReport",
    "api_calls",
    "open_clients",
    "stokly_location_index",
    "sync_orders",
]
