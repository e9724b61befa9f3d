"""The syncs: one package per sync, and what every sync shares.

Each sync's package holds its pure translation (`translate`: no I/O, testable without clients),
its use case (`sync`: read, decide, write; plain Python that takes a mapping, the two API clients
and the state store and returns a report), the steps the use case is split into, and its report:

- `stokline.sync.stock`: sellable stock from Stokly onto SHOPLINE's inventory levels;
- `stokline.sync.catalogue`: Stokly items onto SHOPLINE products and variants;
- `stokline.sync.orders`: SHOPLINE orders into Stokly sale orders, exactly once;
- `stokline.sync.fulfilment`: Stokly shipments back to SHOPLINE as fulfillments with tracking;
- `stokline.sync.finance`: payments and refunds, ledger journals, the payout reconciliation.

The modules beside them are shared by every sync and know none of them: `run` (the run context
and its API-call cost), `report` (what every report holds; masking), `guards` (malformed records
set aside), `clients` (both API clients opened and counted), `followers` (a watcher run handing
over to the next). No Prefect here: the flows call these.
"""
