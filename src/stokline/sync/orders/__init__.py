"""The orders sync: SHOPLINE orders into Stokly sale orders, exactly once.

- `translate`: one SHOPLINE order → one Stokly sale order payload (pure);
- `identity`: customer identity and the link/create/conflict decision (pure);
- `cases`: a mapping's data-driven cases (input order → expected payload), run by the suite;
- `sync`: `sync_orders`, one run: intake, import, changes;
- `intake`: the work of a run read in (webhook inbox, sweep, replays) and handed back;
- `importer`: a batch into Stokly (recover what is there, create the rest);
- `customers`: the Stokly customer of each order of a batch, found or created once;
- `changes`: imported orders that SHOPLINE later cancels or edits;
- `run`: the state one run keeps and the exceptions it raises and resolves;
- `report`: `OrdersReport`.
"""
