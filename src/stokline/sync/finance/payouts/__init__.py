"""Payout reconciliation: SHOPLINE's money beside Stokly's, per gateway, day and currency.

- `reconcile`: `reconcile_payouts`, reading both sides for a period;
- `report`: `PayoutReconciliation`, its rows, CSV and markdown.
"""
