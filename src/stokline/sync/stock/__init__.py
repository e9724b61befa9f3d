"""The stock sync: sellable stock per SHOPLINE location from Stokly, pushing only what changed.

- `translate`: the stock arithmetic, the sellable level of each variant at each location (pure);
- `read`: what a pass reads from both systems;
- `sync`: `sync_stock`, one full pass, or the levels of the SKUs that moved;
- `events`: the event path's reading of Stokly's change feed (`StockMovements`);
- `reconcile`: Stokly's sellable beside SHOPLINE's available (`reconcile_stock`);
- `report`: `StockReport`.
"""
