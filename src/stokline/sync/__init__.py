"""Use cases of the integration, one module per sync: plain Python that takes a mapping, the two
API clients and the state store, and returns a report. No Prefect here: flows call these."""

from stokline.sync.catalogue import CatalogueReport, sync_catalogue
from stokline.sync.clients import CountingPacer, api_calls, open_clients
from stokline.sync.fulfilment import FulfilmentReport, PushRetry, sync_fulfilment
from stokline.sync.ledger import LedgerError, LedgerReport, PeriodError, post_ledger
from stokline.sync.orders import OrdersReport, stokly_location_index, sync_orders
from stokline.sync.payments import PaymentsReport, sync_payments
from stokline.sync.payouts import PayoutReconciliation, reconcile_payouts
from stokline.sync.stock import StockReport, changed_skus_since, sync_stock
from stokline.sync.stock_events import MovementBatch, StockMovements
from stokline.sync.stock_reconcile import StockReconciliation, reconcile_stock

__all__ = [
    "CatalogueReport",
    "CountingPacer",
    "FulfilmentReport",
    "LedgerError",
    "LedgerReport",
    "MovementBatch",
    "OrdersReport",
    "PaymentsReport",
    "PayoutReconciliation",
    "PeriodError",
    "PushRetry",
    "StockMovements",
    "StockReconciliation",
    "StockReport",
    "api_calls",
    "changed_skus_since",
    "open_clients",
    "post_ledger",
    "reconcile_payouts",
    "reconcile_stock",
    "stokly_location_index",
    "sync_catalogue",
    "sync_fulfilment",
    "sync_orders",
    "sync_payments",
    "sync_stock",
]
