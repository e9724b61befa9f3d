"""The finance sync: SHOPLINE's money recorded in Stokly, posted to its ledger, and reconciled.

- `read`: SHOPLINE's money for a period, read once the same way for all three steps;
- `payments`: payments and refunds on each imported Stokly order, exactly once;
- `ledger`: a period's money as balanced journals, one per (day, gateway, currency), posted once;
- `payouts`: the payout reconciliation, SHOPLINE's money beside Stokly's.
"""
