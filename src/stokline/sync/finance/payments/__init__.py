"""Payments and refunds: SHOPLINE's money on each imported order, recorded in Stokly once.

- `translate`: periods, money movements, Stokly payment records and credit notes (pure);
- `sync`: `sync_payments`, one run over a period;
- `report`: `PaymentsReport`.
"""
